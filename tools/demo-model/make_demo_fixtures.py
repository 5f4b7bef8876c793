#!/usr/bin/env python3
"""transformers parity fixtures for the shipped demo model (resources/demo-model: language GGUF + mmproj GGUF).

Builds `LlavaForConditionalGeneration` with SmolLM2's text config and the trained tower (5 CLIP layers, the 4 in
the mmproj plus an unused last one, vision_feature_layer -2), loads both halves from the shipped files (the language
GGUF dequantized by transformers, the mmproj read with the gguf package) and writes, in fp32,
tests/fixtures/demo/parity.json:
  - model: the two files' names and sha256; image_token_id (SmolLM2 has no <image>: a special token that never
    occurs in prompts stands for it, id 0 "<|endoftext|>"); the rendered prompt format;
  - detailed[]: for the first test item, the prompt ids (the placeholder once), pixel statistics, the layer -2
    features and projected tokens (statistics and rows), every decoder layer's raw output, before the final norm (statistics and rows: first
    and last visual token, last token), the last token's prefill logits (statistics and the top 20);
  - greedy[]: for the first 20 test items, transformers' greedy answer (ids and text, max 8 new tokens);
  - pruning[]: for the same items, the kept visual tokens (hex bitmask over the grid) at every stage of
    transprune-high, transprune-low, ttv, iga, fastv and pdrop from make_fixtures.py's PyTorch reference (the
    released code's semantics), run over this LlavaForConditionalGeneration's decoder.
It first checks transformers against evaluate.py's own forward (the engine's semantics): prefill logits within 1e-4
relative and the same greedy answers.

  tools/demo-model/.venv/bin/python tools/demo-model/make_demo_fixtures.py [--model resources/demo-model] [--out tests/fixtures/demo]
"""
import argparse
import json
from pathlib import Path

import torch
from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration

from common import NUM_VISUAL, load_image_uint8, normalize
from evaluate import answer, features_of, read_mmproj
from export_gguf import MMPROJ, language_gguf, sha256
from make_fixtures import PRUNING_METHODS, Decoder, check_nesting, kept_hex, resolved
from smol import ChatFormat, expand, load, splice
from vision import VISION

ROOT = Path(__file__).resolve().parents[2]
TEST_SPLIT = ROOT / "resources/vqa-test/test.jsonl"
IMAGE_TOKEN_ID = 0


def floats(t):
    return [float(f"{v:.7g}") for v in t.flatten().tolist()]


def summary(t, rows):
    return {"shape": list(t.shape), "mean": float(t.mean()), "std": float(t.std()), "abs_max": float(t.abs().max()),
            "rows": {str(r): floats(t[r]) for r in rows}}


def build_llava(smol, tower, projector):
    config = LlavaConfig(vision_config=CLIPVisionConfig(**VISION).to_dict(), text_config=smol.config.to_dict(), projector_hidden_act="gelu",
                         vision_feature_layer=-2, vision_feature_select_strategy="default", image_seq_length=NUM_VISUAL,
                         image_token_id=IMAGE_TOKEN_ID, tie_word_embeddings=True)
    llava = LlavaForConditionalGeneration(config).eval()
    core = llava.model
    vm = getattr(core.vision_tower, "vision_model", core.vision_tower)
    src = getattr(tower, "vision_model", tower)
    result = vm.load_state_dict(src.state_dict(), strict=False)
    assert all(k.startswith(("encoder.layers.4.", "post_layernorm")) for k in result.missing_keys), result.missing_keys
    core.multi_modal_projector.load_state_dict(projector.state_dict())
    core.language_model.load_state_dict(smol.model.state_dict())
    llava.lm_head.weight = core.language_model.embed_tokens.weight
    return llava


def prompt_ids(chat, question):
    ids, labels = chat.encode([(question, "")], system=True, with_answers=False)
    return ids, labels


def pruning_case(decoder, embeds, start, item):
    """Every method's stages on one item's prefill (the unpruned sequence's embeddings), as make_fixtures.py writes them."""
    methods = {}
    for name, spec in PRUNING_METHODS.items():
        method = resolved(spec, len(decoder.layers))
        logits, _, stages, _ = decoder.prefill(embeds, start, NUM_VISUAL, method)
        check_nesting(stages, NUM_VISUAL)
        methods[name] = {
            "method": {k: v for k, v in method.items() if k != "preset"},
            "stages": [{"after_layer": s["after_layer"], "keep": s["keep"], "kept_hex": kept_hex(s["kept"], NUM_VISUAL),
                        "score_margin": s["score_margin"]} for s in stages],
            "answer_token": int(logits.argmax()),
        }
    return {"id": item["id"], "image": f"resources/vqa-test/{item['image']}", "question": item["question"], "methods": methods}


@torch.no_grad()
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "resources/demo-model"))
    p.add_argument("--out", default=str(ROOT / "tests/fixtures/demo"))
    p.add_argument("--items", type=int, default=20)
    args = p.parse_args()
    folder, out = Path(args.model), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    language = language_gguf(folder)
    smol, tok = load(language)
    chat = ChatFormat(tok)
    tower, projector = read_mmproj(folder / MMPROJ)
    llava = build_llava(smol, tower, projector)
    items = [json.loads(line) for line in TEST_SPLIT.read_text().splitlines() if line.strip()][: args.items]
    fixture = {"model": {"language": language.name, "language_sha256": sha256(language), "mmproj": MMPROJ, "mmproj_sha256": sha256(folder / MMPROJ),
                         "image_token_id": IMAGE_TOKEN_ID, "dtype": "float32"},
               "format": "".join(t for t, _ in chat.pieces([("{question}", "")], system=True, with_answers=False)),
               "detailed": [], "greedy": [], "pruning": []}
    decoder = Decoder(llava)
    for n, item in enumerate(items):
        image = load_image_uint8(TEST_SPLIT.parent / item["image"])
        pixels = normalize(image[None])
        ids, labels = prompt_ids(chat, item["question"])
        start = ids.index(-1)
        full = torch.tensor([ids[:start] + [IMAGE_TOKEN_ID] * NUM_VISUAL + ids[start + 1:]])
        captured = []
        hooks = [layer.register_forward_hook(lambda _m, _i, o: captured.append((o[0] if isinstance(o, tuple) else o)[0]))
                 for layer in llava.model.language_model.layers]
        out_hf = llava(input_ids=full, pixel_values=pixels)
        for h in hooks:
            h.remove()
        # The engine's semantics (evaluate.py): own splice and forward, same weights.
        visual = projector(features_of(tower, pixels))[0]
        embeds, mask, positions, _ = splice(smol, visual, [expand(ids, labels)], chat.end_id)
        own = smol(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).logits[0, -1]
        hf = out_hf.logits[0, -1]
        rel = float((own - hf).abs().max() / hf.abs().max())
        assert rel < 1e-4, f"{item['id']}: prefill logits differ by {rel:.2e} (relative)"
        generated = llava.generate(input_ids=full, pixel_values=pixels, max_new_tokens=8, do_sample=False)[0, full.shape[1]:].tolist()
        if chat.end_id in generated:
            generated = generated[: generated.index(chat.end_id)]
        text = tok.decode(generated).strip()
        ours = answer(smol, chat, tower, projector, image, item["question"])
        assert ours == text, f"{item['id']}: greedy answers differ: {ours!r} vs {text!r}"
        fixture["greedy"].append({"id": item["id"], "image": str(Path("resources/vqa-test") / item["image"]), "question": item["question"],
                                  "answer": item["answer"], "greedy_ids": generated, "greedy_text": text, "prefill_logits_rel_diff": rel})
        fixture["pruning"].append(pruning_case(decoder, embeds, start, item))
        if n == 0:
            rows = [start, start + NUM_VISUAL - 1, full.shape[1] - 1]
            selected = features_of(tower, pixels)[0]
            top = hf.topk(20)
            fixture["detailed"].append({
                "id": item["id"], "prompt_ids": ids, "visual_start": start, "num_visual": NUM_VISUAL,
                "pixel_values": {"mean_per_channel": floats(pixels[0].mean(dim=(1, 2))), "std_per_channel": floats(pixels[0].std(dim=(1, 2)))},
                "vision_features": summary(selected, [0, 1, NUM_VISUAL // 2, NUM_VISUAL - 1]),
                "image_features": summary(visual, [0, 1, NUM_VISUAL // 2, NUM_VISUAL - 1]),
                "layer_outputs": [summary(h, rows) for h in captured],
                "prefill_logits_last": {**summary(hf[None], []), "top20_ids": top.indices.tolist(), "top20_values": floats(top.values)},
            })
        print(f"{item['id']}: {text!r} (expected {item['answer']!r}), logits rel diff {rel:.1e}", flush=True)
    (out / "parity.json").write_text(json.dumps(fixture) + "\n")
    print(f"wrote {out / 'parity.json'}: {len(fixture['greedy'])} greedy answers, {len(fixture['detailed'])} detailed cases")


if __name__ == "__main__":
    main()
