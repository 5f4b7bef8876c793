"""Dense per-patch targets for pretraining the vision tower, computed from the generator's scene graphs
(`npm run cli -- data ... --scenes` writes them beside the images).

Every patch of the 24 x 24 grid learns, linearly decodable from its feature at vision_feature_layer -2:
what object covers it (shape, colour, size, label), where that object's centre is, how many objects
share its shape and its colour, whether it holds an object's centre, and how many objects the image has.
That is what the question families ask; the language stage then only has to look it up.
"""
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common import IMAGE_SIZE, PATCH

SHAPES = ["circle", "square", "triangle", "star", "diamond", "hexagon"]
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "cyan"]
SIZES = {"small": 19, "medium": 29, "large": 41}  # circumradius in pixels (src/engine/data/scene.ts)
LABELS = "0123456789ACEFHKLPTX"
MAX_OBJECTS = 8
GRID = IMAGE_SIZE // PATCH
# The fraction of an object's circumradius within which a patch centre counts as the object's.
COVER = 0.8

# Output width of each head; classification heads use index 0 for "background" or "none".
DENSE_HEADS = {"shape": 1 + len(SHAPES), "colour": 1 + len(COLOURS), "size": len(SIZES), "label": 1 + len(LABELS),
               "same_shape": MAX_OBJECTS, "same_colour": MAX_OBJECTS, "total": MAX_OBJECTS + 1, "centre": 2, "xy": 2}


def read_scenes(folder, split):
    """{image path relative to folder: [objects]} from every scenes-<split>*.jsonl shard."""
    scenes = {}
    for shard in sorted(Path(folder).glob(f"scenes-{split}*.jsonl")):
        for line in shard.read_text().splitlines():
            if line.strip():
                item = json.loads(line)
                scenes[item["image"]] = item["objects"]
    if not scenes:
        raise SystemExit(f"no scenes-{split}*.jsonl in {folder}: generate the data with --scenes")
    return scenes


_centres = (np.arange(GRID) * PATCH + PATCH / 2).astype(np.float32)
_px, _py = np.meshgrid(_centres, _centres)  # [row, col] patch centres, x along columns


def scene_targets(objects):
    """{head: [576] targets} for one scene; -100 (or NaN for xy) where a head does not apply."""
    n = GRID * GRID
    t = {k: np.full(n, -100, dtype=np.int64) for k in DENSE_HEADS if k != "xy"}
    t["shape"][:] = 0
    t["colour"][:] = 0
    t["centre"][:] = 0
    t["total"][:] = min(len(objects), MAX_OBJECTS)
    xy = np.full((n, 2), np.nan, dtype=np.float32)
    for o in objects:
        cover = near_object(o, COVER)
        t["shape"][cover] = 1 + SHAPES.index(o["shape"])
        t["colour"][cover] = 1 + COLOURS.index(o["colour"])
        t["size"][cover] = list(SIZES).index(o["size"])
        t["label"][cover] = 1 + LABELS.index(o["label"]) if "label" in o else 0
        t["same_shape"][cover] = sum(p["shape"] == o["shape"] for p in objects) - 1
        t["same_colour"][cover] = sum(p["colour"] == o["colour"] for p in objects) - 1
        xy[cover] = (o["x"] / IMAGE_SIZE, o["y"] / IMAGE_SIZE)
        row, col = min(GRID - 1, int(o["y"] // PATCH)), min(GRID - 1, int(o["x"] // PATCH))
        t["centre"][row * GRID + col] = 1
    t["xy"] = xy
    return t


# The eyes' words: every patch an object covers reads one of its words as a SmolLM2 word embedding, by diagonal
# stripes of the grid ((row + col) % 3: colour, shape, label; "." where an unlabelled object's label would be), every
# other patch ".". Raster order then reads like text ("... . red square k red . ... square k red square ..."). The
# stripes need no object-relative position (an earlier layout put the three words left of, on and right of the
# centre patch: the tower did not learn to find that patch in 500 steps), and a block of 2 x 2 patches holds all three.
PHRASE_WORDS = [".", *COLOURS, *SHAPES, *(c.lower() for c in LABELS)]
_stripe = (np.add.outer(np.arange(GRID), np.arange(GRID)) % 3).reshape(-1)


def phrase_slots(objects):
    """[576] index into PHRASE_WORDS of each patch's word (0: background), from the same cover as scene_targets."""
    t = np.zeros(GRID * GRID, dtype=np.int64)
    for o in objects:
        words = np.array([PHRASE_WORDS.index(o["colour"]), PHRASE_WORDS.index(o["shape"]),
                          PHRASE_WORDS.index(o["label"].lower()) if "label" in o else 0])
        cover = near_object(o, COVER)
        t[cover] = words[_stripe[cover]]
    return t


def near_object(o, scale):
    """[576] bool: the patches whose centre lies within scale x the object's circumradius."""
    return (np.hypot(_px - o["x"], _py - o["y"]) <= scale * SIZES[o["size"]]).reshape(-1)


def dense_targets(scenes):
    """Batched targets: {head: [B, 576] (xy: [B, 576, 2])} tensors."""
    per_scene = [scene_targets(objects) for objects in scenes]
    return {k: torch.from_numpy(np.stack([s[k] for s in per_scene])) for k in DENSE_HEADS}


def _split(outputs):
    return dict(zip(DENSE_HEADS, outputs.split(list(DENSE_HEADS.values()), dim=-1)))


def dense_loss(outputs, targets):
    """Sum of the heads' cross-entropies and the centre regression (x10, so it weighs like one head)."""
    heads = _split(outputs)
    loss = sum(F.cross_entropy(heads[k].flatten(0, 1), targets[k].flatten(), ignore_index=-100) for k in DENSE_HEADS if k != "xy")
    valid = ~torch.isnan(targets["xy"][..., 0])
    return loss + 10 * F.mse_loss(heads["xy"][valid], targets["xy"][valid])


def dense_metrics(outputs, targets):
    """Per-head accuracy over the patches an object covers (shape, colour and label would otherwise be scored mostly
    on background, where "none" is right: 93% shape accuracy over all patches was 7% on the objects), the centre
    head over all patches; xy as mean absolute error in patches."""
    heads = _split(outputs)
    on = targets["shape"] > 0
    metrics = {}
    for k in DENSE_HEADS:
        if k == "xy":
            valid = ~torch.isnan(targets["xy"][..., 0])
            metrics["xy_err_patches"] = ((heads["xy"][valid] - targets["xy"][valid]).abs().mean() * GRID).item()
        else:
            valid = (targets[k] != -100) & (on if k != "centre" else True)
            metrics[k] = (heads[k].argmax(-1)[valid] == targets[k][valid]).float().mean().item()
    return metrics
