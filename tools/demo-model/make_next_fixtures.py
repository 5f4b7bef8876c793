#!/usr/bin/env python3
"""LLaVA-NeXT reference fixtures from PyTorch + transformers + PIL, for the engine's parity tests (which run without Python).

Makes two tiny random LLaVA-NeXT checkpoints with transformers' own classes (LlavaNextForConditionalGeneration,
LlavaNextProcessor with the PIL image processor): a Vicuna-style one (Llama decoder) and a Mistral-style one
(Mistral decoder, rope_theta 1e6, its [INST] chat template, a sliding window shorter than the prompts). The
weights come from a seeded mulberry32 stream per tensor, uniform with a given mean and std, so the TypeScript
tests rebuild the very same checkpoint from the recipe in the fixture (and check each tensor's sha256) instead
of committing weights. Images of four aspect ratios (wide, tall, near-square, smaller than a tile) go through
AnyRes; an image is redrawn (new seed) until no top-k decision of either model is a near-tie (score gap below
MIN_MARGIN), so float32 rounding cannot decide a kept set. For every (model, image) the fixture records:
  - the processor: image_sizes, the views' pixel values (statistics and sampled values), the prompt ids with
    the <image> placeholder expanded (how many, where);
  - the model: the packed visual tokens (statistics, sampled rows, which rows are image_newline), per-layer
    outputs (statistics, sampled rows), the prefill logits of the last token and the greedy answer;
  - transprune-high's kept visual tokens at every stage from a PyTorch implementation of the released code's
    semantics (method spec sections 2-5: 1 - cos, softmax over the whole sequence, accumulation, next-layer IGA
    over the tokens after the visual block, L1 normalisation, sorted top-k, compact positions), on the
    variable, tiled token set: N = base + unpadded tiles + newlines, every one of them prunable.
Everything runs in float32 on the CPU, as the engine does.

  tools/demo-model/.venv/bin/python tools/demo-model/make_next_fixtures.py [--out tests/fixtures/reference-next]
"""
import argparse
import hashlib
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import PIL
import torch
import transformers
from PIL import Image, ImageDraw
from safetensors import safe_open
from tokenizers import Tokenizer
from transformers import (CLIPVisionConfig, LlamaConfig, LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextProcessor,
                          MistralConfig, PreTrainedTokenizerFast)
from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

from common import CLIP_MEAN, CLIP_STD
from make_fixtures import Decoder, check, floats, kept_hex, summary

ROOT = Path(__file__).resolve().parents[2]
SCHEDULES = json.loads((Path(__file__).with_name("schedules.json")).read_text())
EPS = 1e-8  # the released code's normalisation epsilon
TILE, PATCH = 48, 8  # 6 x 6 patches per view
PINPOINTS = [[TILE, 2 * TILE], [2 * TILE, TILE], [2 * TILE, 2 * TILE], [3 * TILE, TILE], [TILE, 3 * TILE]]  # [height, width]
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, image_size=TILE, patch_size=PATCH,
              hidden_act="quick_gelu", projection_dim=32, layer_norm_eps=1e-5)
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
            hidden_act="silu", max_position_embeddings=4096, tie_word_embeddings=False)

# Chat templates in the style the llava-hf NeXT checkpoints ship (content lists, images rendered first).
VICUNA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' ' }}{% endfor %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
MISTRAL_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ '<<SYS>>\\n' + message['content'][0]['text'] + '\\n<</SYS>>\\n\\n' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}{{ ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'][0]['text'] + '</s> ' }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
MODELS = {
    "vicuna": dict(text=LlamaConfig, extra=dict(rope_theta=10000.0), template=VICUNA_TEMPLATE, seed=11),
    "mistral": dict(text=MistralConfig, extra=dict(rope_theta=1e6, sliding_window=96), template=MISTRAL_TEMPLATE, seed=23),
}
IMAGES = {  # name: (width, height, question)
    "wide": (160, 60, "What color is the square?"),
    "tall": (50, 130, "Where is the circle?"),
    "square": (100, 90, "How many shapes are there?"),
    "small": (40, 30, "Describe the image."),
}
WORDS = ["USER", "ASSISTANT", "INST", "What", "color", "is", "the", "square", "Where", "circle", "How", "many", "shapes", "are", "there",
         "Describe", "image", "red", "green", "blue", "left", "right", "top", "bottom", "one", "two", "three", "yes", "no"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "tests/fixtures/reference-next"))
    return p.parse_args()


# ---------------------------------------------------------------------------------------------
# Deterministic weights: the same integers in Python and TypeScript


def mulberry32(seed):
    a = seed & 0xFFFFFFFF
    while True:
        a = (a + 0x6D2B79F5) & 0xFFFFFFFF
        t = a
        t = ((t ^ (t >> 15)) * (t | 1)) & 0xFFFFFFFF
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & 0xFFFFFFFF)) & 0xFFFFFFFF
        yield ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296


def uniform_tensor(shape, mean, std, seed):
    """mean + std * sqrt(3) * (2u - 1) in float64, then float32: uniform with that mean and std."""
    stream = mulberry32(seed)
    count = int(np.prod(shape))
    u = np.fromiter((next(stream) for _ in range(count)), dtype=np.float64, count=count)
    return torch.from_numpy((mean + std * math.sqrt(3) * (2 * u - 1)).astype(np.float32).reshape(shape))


def init_of(name, shape, hidden):
    """(mean, std) per tensor: linear weights 1/sqrt(fan_in), norm gains around 1, small biases, O(1) embeddings."""
    if name.endswith("image_newline") or "class_embedding" in name or "embed_tokens" in name:
        return 0.0, 1.0
    if "position_embedding" in name:
        return 0.0, 0.5
    if "lm_head" in name:
        return 0.0, 3 / math.sqrt(hidden)  # spread logits so greedy decoding is no flat tie-break
    if ("norm" in name or "layrnorm" in name) and name.endswith("weight"):
        return 1.0, 0.2
    if len(shape) == 1:
        return 0.0, 0.1
    return 0.0, 1 / math.sqrt(int(np.prod(shape[1:])))


# ---------------------------------------------------------------------------------------------
# The checkpoint


def build_tokenizer():
    """A Llama-style BPE tokenizer (byte fallback, Metaspace, <s> post-processor): known words whole, the rest by character."""
    vocab, merges = {}, []
    add = lambda tok: vocab.setdefault(tok, len(vocab))
    for tok in ["<unk>", "<s>", "</s>"]:
        add(tok)
    for b in range(256):
        add(f"<0x{b:02X}>")
    add("\u2581")
    for c in range(0x21, 0x7F):
        add(chr(c))
    for word in WORDS:
        piece = "\u2581"
        for ch in word:
            if piece + ch not in vocab:
                merges.append(f"{piece} {ch}")
                add(piece + ch)
            piece += ch
    image_id, pad_id = len(vocab), len(vocab) + 1
    added = lambda i, c: dict(id=i, content=c, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)
    spec = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>"), added(image_id, "<image>"), added(pad_id, "<pad>")],
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
        "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
                                                      {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False, "vocab": vocab, "merges": merges},
    }
    return Tokenizer.from_str(json.dumps(spec)), image_id, pad_id


def make_checkpoint(name, spec, folder):
    tok, image_id, pad_id = build_tokenizer()
    vocab_size = pad_id + 1
    text = spec["text"](**TEXT, **spec["extra"], vocab_size=vocab_size, bos_token_id=1, eos_token_id=2, pad_token_id=pad_id)
    config = LlavaNextConfig(text_config=text.to_dict(), vision_config=CLIPVisionConfig(**VISION).to_dict(), image_grid_pinpoints=PINPOINTS,
                             image_token_index=image_id, vision_feature_layer=-2, vision_feature_select_strategy="default",
                             tie_word_embeddings=False, pad_token_id=pad_id)
    model = LlavaNextForConditionalGeneration(config).eval()
    recipe = []
    with torch.no_grad():
        for i, (param_name, p) in enumerate(model.named_parameters()):
            mean, std = init_of(param_name, p.shape, TEXT["hidden_size"])
            seed = (spec["seed"] * 1000003 + i * 7919) & 0xFFFFFFFF
            p.copy_(uniform_tensor(tuple(p.shape), mean, std, seed))
            recipe.append({"param": param_name, "shape": list(p.shape), "mean": mean, "std": std, "seed": seed})
    model.save_pretrained(folder, safe_serialization=True)
    # The names as saved (transformers maps its module names back to the checkpoint layout on save).
    by_value = {}
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        for key in f.keys():
            by_value.setdefault(hashlib.sha256(f.get_tensor(key).numpy().tobytes()).hexdigest(), []).append(key)
    params = dict(model.named_parameters())
    for entry in recipe:
        digest = hashlib.sha256(params[entry["param"]].detach().numpy().tobytes()).hexdigest()
        names = by_value[digest]
        assert len(names) == 1, f"{entry['param']}: {len(names)} saved tensors with its values"
        entry.update(name=names[0], sha256=digest)
        del entry["param"]

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                                   extra_special_tokens={"image_token": "<image>"}, model_max_length=4096)
    images = LlavaNextImageProcessorPil(size={"shortest_edge": TILE}, crop_size={"height": TILE, "width": TILE}, image_grid_pinpoints=PINPOINTS,
                                        resample=3, image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD), do_convert_rgb=True, do_pad=True)
    processor = LlavaNextProcessor(image_processor=images, tokenizer=fast, patch_size=PATCH, vision_feature_select_strategy="default",
                                   num_additional_image_tokens=1, image_token="<image>", chat_template=spec["template"])
    processor.save_pretrained(folder)
    return recipe


# ---------------------------------------------------------------------------------------------
# Images: shapes on a background, of several aspect ratios


def make_image(path, width, height, seed):
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(40, 200, 3)))
    draw = ImageDraw.Draw(image)
    for i in range(3):
        x0, y0 = int(rng.integers(0, width * 3 // 4)), int(rng.integers(0, height * 3 // 4))
        w, h = int(rng.integers(width // 8 + 2, width // 3 + 3)), int(rng.integers(height // 8 + 2, height // 3 + 3))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if i % 2 else draw.rectangle)([x0, y0, x0 + w, y0 + h], fill=color)
    image.save(path)


# ---------------------------------------------------------------------------------------------
# A decoder forward over the HF modules, layer by layer, with TransPrune between layers


@torch.no_grad()
def case(model, processor, image_path, question, schedule):
    image = Image.open(image_path).convert("RGB")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(images=image, text=prompt, return_tensors="pt")
    ids = inputs["input_ids"][0]
    where = (ids == model.config.image_token_id).nonzero().flatten()
    start, n = int(where[0]), len(where)
    assert int(where[-1]) == start + n - 1, "expected one contiguous block of image tokens"

    core = model.model
    packed = core.get_image_features(inputs["pixel_values"], inputs["image_sizes"], vision_feature_layer=-2,
                                     vision_feature_select_strategy="default").pooler_output[0]
    assert packed.shape[0] == n, f"processor counted {n} image tokens, the model packed {packed.shape[0]}"
    newline_rows = [i for i in range(n) if torch.equal(packed[i], core.image_newline)]
    embeds = core.get_input_embeddings()(ids.unsqueeze(0))
    embeds[:, start:start + n] = packed

    captured = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: captured.append((out[0] if isinstance(out, tuple) else out)[0]))
             for layer in core.language_model.layers]
    hf_logits = model(**inputs).logits[0, -1]
    for h in hooks:
        h.remove()
    greedy = model.generate(**inputs, max_new_tokens=8, do_sample=False)[0, len(ids):]

    decoder = Decoder(model)
    own_logits, own_outputs, _, _ = decoder.prefill(embeds, start, n)
    check("own unpruned prefill vs transformers (logits)", own_logits, hf_logits)
    for layer, (own, hf) in enumerate(zip(own_outputs, captured)):
        check(f"own vs transformers (layer {layer + 1} output)", own, hf)
    method = {"kind": "transprune", "schedule": schedule, "alpha": 0.5, "positions": "compact"}
    no_op = {**method, "schedule": {**schedule, "ratios": [1.0] * len(schedule["ratios"])}}
    assert torch.equal(decoder.prefill(embeds, start, n, no_op)[0], own_logits), "keeping every token must change nothing (spec 8.1)"
    pruned_logits, _, stages, _ = decoder.prefill(embeds, start, n, method)

    pixels = inputs["pixel_values"][0]  # [views, 3, TILE, TILE]
    sample = np.random.default_rng(7).integers(0, pixels.numel(), 64).tolist()
    rows = [start + n - 1, len(ids) - 1]
    visual_rows = sorted({0, 35, 36, 37, n // 2, n - 2, n - 1, *newline_rows[:2]})
    return {
        "image": f"images/{Path(image_path).name}", "question": question, "prompt": prompt,
        "image_size": [int(v) for v in inputs["image_sizes"][0]],
        "prompt_ids": ids[:start + 1].tolist() + ids[start + n:].tolist(), "visual_start": start, "num_visual": n,
        "pixel_values": {"shape": list(pixels.shape), "mean_per_view_channel": [floats(v.mean(dim=(1, 2))) for v in pixels],
                         "std_per_view_channel": [floats(v.std(dim=(1, 2))) for v in pixels],
                         "samples": {"flat_index": sample, "value": floats(pixels.flatten()[sample])}},
        "visual_tokens": {**summary(packed, visual_rows), "newline_rows": newline_rows},
        "layer_outputs": [summary(h, rows) for h in captured],
        "prefill_logits_last": floats(hf_logits),
        "greedy": {"ids": greedy.tolist(), "text": processor.tokenizer.decode(greedy, skip_special_tokens=True).strip()},
        "transprune_high": {"schedule": schedule, "answer_token": int(pruned_logits.argmax()),
                            "stages": [{"after_layer": s["after_layer"], "keep": s["keep"], "kept_hex": kept_hex(s["kept"], n),
                                        "score_margin": s["score_margin"]} for s in stages]},
    }


MIN_MARGIN = 5e-7  # top-k score gaps below this could be decided by float32 rounding, in PyTorch or in the engine


def main():
    args = parse_args()
    torch.set_grad_enabled(False)
    out = Path(args.out).resolve()
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    schedule = SCHEDULES[str(TEXT["num_hidden_layers"])]["transprune-high"]
    work = Path(tempfile.mkdtemp(prefix="next-fixtures-"))
    try:
        models = {}
        for name, spec in MODELS.items():
            folder = work / name
            recipe = make_checkpoint(name, spec, folder)
            # Everything but the weights is committed: the tests write model.safetensors from the recipe.
            files = {f.name: f.read_text() for f in sorted(folder.iterdir()) if f.suffix in (".json", ".jinja")}
            processor = LlavaNextProcessor.from_pretrained(folder)
            assert type(processor.image_processor).__name__ == "LlavaNextImageProcessorPil", type(processor.image_processor).__name__
            model = LlavaNextForConditionalGeneration.from_pretrained(folder).float().eval()
            models[name] = (model, processor, recipe, files)
        cases = {name: {} for name in MODELS}
        for i, (image_name, (w, h, question)) in enumerate(IMAGES.items()):
            # Redrawn until no top-k decision of either model is a near-tie.
            for attempt in range(20):
                path = image_dir / f"{image_name}.png"
                make_image(path, w, h, seed=100 + i + 1000 * attempt)
                found = {name: case(m, p, path, question, schedule) for name, (m, p, _, _) in models.items()}
                margins = [s["score_margin"] for c in found.values() for s in c["transprune_high"]["stages"] if s["score_margin"] is not None]
                if min(margins) >= MIN_MARGIN:
                    break
            else:
                raise SystemExit(f"{image_name}: no image without near-ties in 20 attempts")
            for name, c in found.items():
                cases[name][image_name] = c
        for name, (model, processor, recipe, files) in models.items():
            fixture = {"model": name, "transformers": transformers.__version__, "torch": torch.__version__, "pillow": PIL.__version__,
                       "image_processor": type(processor.image_processor).__name__, "min_score_margin": MIN_MARGIN,
                       "files": files, "weights": recipe, "cases": cases[name]}
            path = out / f"{name}.json"
            path.write_text(json.dumps(fixture) + "\n")
            summary_line = "; ".join(f"{k}: N={c['num_visual']} {c['image_size']} -> {c['greedy']['text']!r}" for k, c in cases[name].items())
            print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB): {summary_line}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
