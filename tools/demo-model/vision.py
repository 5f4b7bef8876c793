"""The vision tower: a small CLIP at 336 px trained here with dense per-patch targets, and its feature cache."""
import random
import time
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPVisionConfig, CLIPVisionModel

from common import IMAGE_SIZE, NUM_VISUAL, PATCH, load_image_uint8, normalize
from dense import DENSE_HEADS, dense_loss, dense_metrics, dense_targets
from stages import Run, timed_steps

# About 3.2 M parameters; LLaVA reads layer -2, so the file carries 4 of its 5 blocks.
VISION = dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=5, num_attention_heads=4, image_size=IMAGE_SIZE,
              patch_size=PATCH, hidden_act="quick_gelu", projection_dim=256, layer_norm_eps=1e-5)


def build_tower(seed=0):
    torch.manual_seed(seed)
    return CLIPVisionModel(CLIPVisionConfig(**VISION))


def vision_features(tower, pixels):
    """The tower's hidden states at vision_feature_layer -2 without the CLS token, as LLaVA selects them.
    Runs only the layers those states depend on (the last layer's output is never used)."""
    vm = getattr(tower, "vision_model", tower)
    h = vm.pre_layrnorm(vm.embeddings(pixels))
    for layer in vm.encoder.layers[:-1]:
        h = layer(h, None)
    h = h[0] if isinstance(h, tuple) else h
    return h[:, 1:]


def dense_head():
    return torch.nn.Linear(VISION["hidden_size"], sum(DENSE_HEADS.values()))


def train_vision(tower, head, args, scenes, val_scenes):
    """Tower + linear dense heads on the training scenes; returns per-patch validation accuracy per head."""
    params = list(tower.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.vision_lr, betas=(0.9, 0.98), weight_decay=0.05)
    run = Run(args.work, "vision")
    modules = {"tower": tower, "head": head}
    meta = run.load(modules, optimizer)
    steps = args.vision_samples // args.vision_batch
    images = sorted(scenes)
    rng = random.Random(args.seed + meta["step"])

    def make_batch():
        chosen = rng.sample(images, args.vision_batch)
        pixels = torch.stack([load_image_uint8(Path(args.data) / p) for p in chosen])
        return normalize(pixels), dense_targets([scenes[p] for p in chosen])

    def step_loss(batch):
        pixels, targets = batch
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = head(vision_features(tower, pixels))
        return dense_loss(out.float(), targets)

    tower.train()
    if meta["step"] < steps:
        meta = timed_steps("vision", run, modules, optimizer, meta, steps, args.vision_batch, args.vision_lr, make_batch, step_loss)
    tower.eval()
    with torch.no_grad():
        chosen = sorted(val_scenes)[:192]
        outs, targets = [], []
        for i in range(0, len(chosen), 32):
            part = chosen[i:i + 32]
            pixels = normalize(torch.stack([load_image_uint8(Path(args.data) / p) for p in part]))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                outs.append(head(vision_features(tower, pixels)).float())
            targets.append(dense_targets([val_scenes[p] for p in part]))
        metrics = dense_metrics(torch.cat(outs), {k: torch.cat([t[k] for t in targets]) for k in targets[0]})
    print("vision val (per-patch accuracy): " + " ".join(f"{k} {v:.3f}" for k, v in metrics.items()), flush=True)
    return {"seconds": meta["seconds"], "steps": meta["step"], "val": metrics}


def cache_features(tower, args, paths, name):
    """features[i] = the tower's [576, hidden] features of paths[i], bf16 (stored as int16) in a memmap."""
    file = Path(args.work) / f"features-{name}.bin"
    done_file = file.with_suffix(".done")
    shape = (len(paths), NUM_VISUAL, VISION["hidden_size"])
    done = int(done_file.read_text()) if done_file.exists() else 0
    store = np.memmap(file, dtype=np.int16, mode="r+" if file.exists() else "w+", shape=shape)
    tower.eval()
    start, chunk = time.time(), 32
    with torch.no_grad():
        for i in range(done, len(paths), chunk):
            pixels = normalize(torch.stack([load_image_uint8(Path(args.data) / p) for p in paths[i:i + chunk]]))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                feats = vision_features(tower, pixels).to(torch.bfloat16)
            store[i:i + len(feats)] = feats.view(torch.int16).numpy()
            if (i // chunk) % 20 == 19 or i + chunk >= len(paths):
                store.flush()
                done_file.write_text(str(i + len(feats)))
                rate = (i + len(feats) - done) / (time.time() - start)
                print(f"cache {name} {i + len(feats)}/{len(paths)} {rate:.1f} images/s eta {(len(paths) - i - len(feats)) / rate / 60:.1f} min",
                      flush=True)
    return store


def cached(store, index):
    return torch.from_numpy(np.array(store[index])).view(torch.bfloat16)
