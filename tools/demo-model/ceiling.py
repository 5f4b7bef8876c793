#!/usr/bin/env python3
"""Where a pair's wrong answers come from: its eyes or its language half.

score  the pair in the inference format (SmolLM2's template with its system prompt, all 576 visual tokens), once with
       the eyes' own tokens and once with the tokens the eyes are trained to write (dense.phrase_slots as SmolLM2's
       word embeddings, "." on the background): the gap is the eyes' share of the errors, what stays wrong with
       perfect tokens the language half's.
probe  whether the language half learns one family from perfect tokens, and in which layout: fresh rank-16 adapters
       on the pair's language model, trained on that family's questions in the words form (bare ChatML, only the
       object tokens at their grid positions, as language.Batches' words phase), validated every 20 steps. Layouts:
       stripes  the eyes' target (every patch an object covers, its words by diagonal stripes);
       centre   one colour, shape and label token per object, on its centre patch and the two after it.

Exact match is teacher-forced (equal to greedy decoding), in bf16 autocast as the language stage validates.

  tools/demo-model/.venv/bin/python tools/demo-model/ceiling.py score --data .cache/demo-model/vqa --items 240
  tools/demo-model/.venv/bin/python tools/demo-model/ceiling.py probe --data .cache/demo-model/vqa --family count --layout centre
"""
import argparse
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common import NUM_VISUAL, PATCH, load_image_uint8, normalize, read_split
from dense import GRID, PHRASE_WORDS, phrase_slots, read_scenes
from evaluate import features_of, read_mmproj
from export_gguf import MMPROJ, language_gguf
from eyes import word_ids
from language import balanced, chat_hits, family_line, tally
from smol import ChatFormat, add_lora, answer_logits, expand, load, splice


def centre_slots(objects):
    """[576] PHRASE_WORDS indices: each object's colour, shape and label on its centre patch and the two after it."""
    slots = np.zeros(NUM_VISUAL, dtype=np.int64)
    for o in objects:
        at = min(GRID - 1, int(o["y"] // PATCH)) * GRID + min(GRID - 1, int(o["x"] // PATCH))
        said = [o["colour"], o["shape"], *([o["label"].lower()] if "label" in o else [])]
        for k, word in enumerate(said[: NUM_VISUAL - at]):
            slots[at + k] = PHRASE_WORDS.index(word)
    return slots


LAYOUTS = {"stripes": phrase_slots, "centre": centre_slots}


def items_of(data, split, family=None):
    """[(image path, scene objects, question, answer, family)] of a generated split with its scene graphs."""
    scenes = read_scenes(data, split)
    return [(path, scenes[str(Path(path).relative_to(data))], q, a, f) for path, qs in sorted(read_split(data, split).items())
            for q, a, f in qs if family in (None, f)]


def hits(model, batch):
    """Per chat of the batch: whether every answer token (and <|im_end|>) is the argmax."""
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        return chat_hits(*answer_logits(model, *batch))


def score(args, model, chat, words):
    tower, projector = read_mmproj(Path(args.model) / MMPROJ)
    items = balanced(items_of(args.data, args.split), args.items, args.seed)
    results = {"eyes": [], "perfect": []}
    for i in range(0, len(items), 8):
        part = items[i:i + 8]
        rows = [expand(*chat.encode([(q, a)], system=True)) for _, _, q, a, _ in part]
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            eyes = projector(features_of(tower, normalize(torch.stack([load_image_uint8(p) for p, *_ in part])))).float()
        perfect = words[torch.from_numpy(np.stack([phrase_slots(objects) for _, objects, *_ in part]))]
        for name, visual in (("eyes", eyes), ("perfect", perfect)):
            results[name] += zip([f for *_, f in part], hits(model, splice(model, visual.flatten(0, 1), rows, chat.end_id)))
    for name, result in results.items():
        print(f"{name + ' tokens:':16s}{family_line(*tally(result))} over {len(result)} {args.split} items", flush=True)


def probe(args, model, chat, words):
    layout = LAYOUTS[args.layout]

    def batch(part):
        rows, visual = [], []
        for _, objects, q, a, _ in part:
            slots = layout(objects)
            kept = np.flatnonzero(slots).tolist()
            rows.append(expand(*chat.encode([(q, a)], system=False), kept))
            visual.append(words[torch.from_numpy(slots[kept])])
        return splice(model, torch.cat(visual), rows, chat.end_id)

    train, val = items_of(args.data, "train", args.family), items_of(args.data, args.split, args.family)[: args.items]
    adapters = add_lora(model, range(len(model.model.layers)), 16, 32)
    optimizer = torch.optim.AdamW([p for a in adapters.values() for p in (a.a, a.b)], lr=args.lr, weight_decay=0.0)
    rng = random.Random(args.seed)
    for step in range(args.steps + 1):
        if step % 20 == 0 or step == args.steps:
            right = sum(sum(hits(model, batch(val[i:i + 16]))) for i in range(0, len(val), 16))
            print(f"{args.layout} {args.family} step {step}: {right / len(val):.3f} of {len(val)} {args.split} items", flush=True)
        if step == args.steps:
            break
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 10)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, target, _ = answer_logits(model, *batch(rng.sample(train, args.batch)))
        loss = F.cross_entropy(logits.float(), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["score", "probe"])
    p.add_argument("--model", default="resources/demo-model")
    p.add_argument("--data", required=True, help="train.sh's data folder: the splits with their scene graphs and images")
    p.add_argument("--split", default="val", help="the split scored")
    p.add_argument("--items", type=int, default=240, help="score: items, families interleaved; probe: the family's first items")
    p.add_argument("--family", default="count", help="probe: the family trained and scored")
    p.add_argument("--layout", choices=list(LAYOUTS), default="stripes", help="probe: where the words sit")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, tok = load(language_gguf(Path(args.model)))
    words = model.model.embed_tokens.weight.detach()[word_ids(tok)]
    (score if args.what == "score" else probe)(args, model, ChatFormat(tok), words)


if __name__ == "__main__":
    main()
