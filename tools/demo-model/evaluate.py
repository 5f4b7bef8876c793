#!/usr/bin/env python3
"""Scores the shipped pair (resources/demo-model: the language GGUF and the mmproj GGUF) in PyTorch, from the files
themselves: the mmproj read back with the gguf package into a CLIP tower + projector, the language GGUF dequantized
by transformers; SmolLM2's chat template with its system prompt, the image placeholder expanded to the 576 projected
tokens, greedy decoding until <|im_end|>; exact match per family.

  tools/demo-model/.venv/bin/python tools/demo-model/evaluate.py --model resources/demo-model --split resources/vqa-test/test.jsonl [--limit N]
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from gguf import GGUFReader
from transformers import CLIPVisionConfig, CLIPVisionModel

from common import load_image_uint8, normalize
from export_gguf import MMPROJ, language_gguf
from eyes import Projector
from smol import ChatFormat, expand, load, splice
from vision import VISION


def read_mmproj(path):
    """(tower, projector) from an mmproj GGUF written by export_gguf (MMPROJ.md): the blocks up to the feature layer."""
    reader = GGUFReader(str(path))
    field = lambda k: reader.fields[k].contents()
    blocks = field("clip.vision.block_count")
    config = CLIPVisionConfig(**{**VISION, "num_hidden_layers": blocks, "hidden_size": field("clip.vision.embedding_length"),
                                 "intermediate_size": field("clip.vision.feed_forward_length")})
    tower = CLIPVisionModel(config).eval()
    renames = [("v.blk.", "encoder.layers."), ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
               ("attn_out", "self_attn.out_proj"), ("ln1", "layer_norm1"), ("ln2", "layer_norm2"), ("ffn_down", "mlp.fc1"), ("ffn_up", "mlp.fc2"),
               ("v.class_embd", "embeddings.class_embedding"), ("v.patch_embd.weight", "embeddings.patch_embedding.weight"),
               ("v.position_embd.weight", "embeddings.position_embedding.weight"), ("v.pre_ln", "pre_layrnorm")]
    state, mm = {}, {}
    for t in reader.tensors:
        data = torch.from_numpy(np.array(t.data).astype(np.float32))
        if t.name.startswith("mm."):
            mm[t.name] = data
            continue
        name = t.name
        for old, new in renames:
            name = name.replace(old, new)
        state[name] = data
    vm = getattr(tower, "vision_model", tower)
    missing = vm.load_state_dict({k: v.reshape(vm.state_dict()[k].shape) for k, v in state.items()}, strict=False)
    assert not [k for k in missing.missing_keys if not k.startswith("post_layernorm")], missing
    projector = Projector(mm["mm.0.weight"].shape[1], mm["mm.2.weight"].shape[0])
    projector.load_state_dict({"linear_1.weight": mm["mm.0.weight"], "linear_1.bias": mm["mm.0.bias"], "linear_2.weight": mm["mm.2.weight"],
                               "linear_2.bias": mm["mm.2.bias"]})
    return tower, projector.eval()


def features_of(tower, pixels):
    """Embeddings, pre-LN, every block in the file (they end at the feature layer), CLS dropped; no post-LN."""
    vm = getattr(tower, "vision_model", tower)
    h = vm.pre_layrnorm(vm.embeddings(pixels))
    for layer in vm.encoder.layers:
        h = layer(h, None)
        h = h[0] if isinstance(h, tuple) else h
    return h[:, 1:]


@torch.no_grad()
def answer(model, chat, tower, projector, image, question, max_new=8):
    """Greedy decoding until <|im_end|> from the inference prompt (system prompt, image placeholder, question)."""
    visual = projector(features_of(tower, normalize(image[None])))[0]
    ids, labels = chat.encode([(question, "")], system=True, with_answers=False)
    row = expand(ids, labels)
    embeds, mask, positions, _ = splice(model, visual, [row], chat.end_id)
    out = model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True)
    tokens, cache, position = [], out.past_key_values, positions[0, -1].item()
    for _ in range(max_new):
        token = int(out.logits[0, -1].argmax())
        if token == chat.end_id:
            break
        tokens.append(token)
        position += 1
        mask = torch.cat([mask, torch.ones((1, 1), dtype=mask.dtype)], dim=1)
        out = model(input_ids=torch.tensor([[token]]), attention_mask=mask, position_ids=torch.tensor([[position]]), past_key_values=cache,
                    use_cache=True)
        cache = out.past_key_values
    return chat.tok.decode(tokens).strip()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resources/demo-model")
    p.add_argument("--split", required=True, help="a jsonl of {image, question, answer, family} (image relative to the file)")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--out", help="write the per-item answers and the summary here (json)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(args.model)
    language = language_gguf(folder)
    model, tok = load(language)
    chat = ChatFormat(tok)
    tower, projector = read_mmproj(folder / MMPROJ)
    split = Path(args.split)
    items = [json.loads(line) for line in split.read_text().splitlines() if line.strip()][: args.limit]
    results, start = [], time.time()
    for n, item in enumerate(items, 1):
        said = answer(model, chat, tower, projector, load_image_uint8(split.parent / item["image"]), item["question"])
        results.append({**item, "said": said, "correct": said == item["answer"]})
        if n % 25 == 0:
            print(f"{n}/{len(items)} {sum(r['correct'] for r in results) / n:.3f} ({(time.time() - start) / n:.2f} s/item)", flush=True)
    families = sorted({r["family"] for r in results})
    summary = {"model": str(folder), "split": str(split), "items": len(results), "accuracy": sum(r["correct"] for r in results) / len(results),
               "per_family": {f: float(np.mean([r["correct"] for r in results if r["family"] == f])) for f in families}}
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "items": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
