#!/usr/bin/env python3
"""Text-only ability of a SmolLM2 GGUF (the package's, or the demo's with merged adapters): 50 general-knowledge and
instruction questions (data/text-questions.jsonl), SmolLM2's chat template with its default system prompt, greedy
decoding (at most 48 new tokens); an answer counts as right when it contains one of the accepted words.

  tools/demo-model/.venv/bin/python tools/demo-model/evaluate_text.py --gguf FILE [--gguf FILE2 ...] [--out report.json]
"""
import argparse
import json
import re
from pathlib import Path

import torch

from smol import load
from text import eval_questions



@torch.no_grad()
def score(gguf, questions):
    model, tok = load(gguf)
    rows = []
    for q in questions:
        ids = tok.apply_chat_template([{"role": "user", "content": q["question"]}], add_generation_prompt=True, return_tensors="pt")
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        out = model.generate(ids, max_new_tokens=48, do_sample=False)[0, ids.shape[1]:]
        text = tok.decode(out, skip_special_tokens=True).strip()
        words = re.findall(r"[\w₂'-]+", text.lower())
        right = any((a in words) if " " not in a and len(a) <= 3 else (a in text.lower()) for a in q["accept"])
        rows.append({"question": q["question"], "answer": text, "right": right})
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gguf", action="append", required=True)
    p.add_argument("--out")
    args = p.parse_args()
    questions = eval_questions()
    report = {}
    for gguf in args.gguf:
        rows = score(gguf, questions)
        report[Path(gguf).name] = {"right": sum(r["right"] for r in rows), "total": len(rows), "answers": rows}
        print(f"{Path(gguf).name}: {sum(r['right'] for r in rows)} of {len(rows)} right", flush=True)
        for r in rows:
            if not r["right"]:
                print(f"  wrong: {r['question']} -> {r['answer'][:80]!r}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
