#!/usr/bin/env python3
"""Qwen2.5-VL reference fixtures from PyTorch + transformers + PIL, for the engine's parity tests (which run without Python).

Makes two tiny random Qwen2.5-VL checkpoints with transformers' own classes (Qwen2_5_VLForConditionalGeneration,
the PIL image processor Qwen2VLImageProcessorPil and the processor's token expansion):
  - "untied": untied embeddings, mrope_section [2, 3, 3], a 56 px vision window (2 x 2 merged cells: divides
    some grids and not others), full attention in vision blocks 1 and 3;
  - "tied": tied embeddings, mrope_section [4, 2, 2], an 84 px window (3 x 3 merged cells), full attention in block 2.
The weights come from a seeded mulberry32 stream per tensor (make_next_fixtures.py's recipe), so the TypeScript
tests rebuild the very same checkpoint (and check each tensor's sha256) instead of committing weights. Four images
(square, wide above max_pixels, tall, smaller than min_pixels) each go through smart_resize and patchify. For every
(model, image) the fixture records:
  - the processor: the prompt, its ids with <|image_pad|> once (transformers expands it to N copies), image_grid_thw,
    the patches' shape, each patch row's sum and sampled values;
  - the model: the merged visual tokens (statistics, sampled rows), the 3D position ids (get_rope_index), per-layer
    outputs (sampled rows), the prefill logits of the last token and the greedy answer;
  - transprune-high's kept visual tokens at every stage, with each kept token keeping its own 3D position (the engine's
    default for Qwen) and with compacted positions, from make_fixtures.py's PyTorch TransPrune on Qwen's modules
    (QwenDecoder: IGA's queries after <|vision_end|>); an image is redrawn until no top-k decision is a near-tie.
Everything runs in float32 on the CPU, as the engine does.

  tools/demo-model/.venv/bin/python tools/demo-model/make_qwen_fixtures.py [--out tests/fixtures/reference-qwen]
"""
import argparse
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import PIL
import torch
import transformers
from PIL import Image
from safetensors import safe_open
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from common import CLIP_MEAN, CLIP_STD
from make_fixtures import Decoder, check, floats, kept_hex, summary
from make_next_fixtures import init_of, make_image, uniform_tensor

ROOT = Path(__file__).resolve().parents[2]
SCHEDULES = json.loads((Path(__file__).with_name("schedules.json")).read_text())
MIN_MARGIN = 5e-7  # top-k score gaps below this could be decided by float32 rounding, in PyTorch or in the engine
MERGE, PATCH = 2, 14
MIN_PIXELS, MAX_PIXELS = 4 * 28 * 28, 24 * 28 * 28  # 4 to 24 merged cells
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
            hidden_act="silu", max_position_embeddings=4096)
VISION = dict(depth=4, hidden_size=32, intermediate_size=48, num_heads=2, in_channels=3, patch_size=PATCH, spatial_merge_size=MERGE,
              temporal_patch_size=2, hidden_act="silu", out_hidden_size=TEXT["hidden_size"])
MODELS = {
    "untied": dict(tied=False, mrope=[2, 3, 3], theta=1e6, window=56, full=[1, 3], seed=31),
    "tied": dict(tied=True, mrope=[4, 2, 2], theta=1e4, window=84, full=[2], seed=47),
}
IMAGES = {  # name: (width, height, question)
    "square": (120, 110, "What color is the square?"),
    "wide": (420, 150, "Where is the circle?"),  # above max_pixels: smart_resize scales it down
    "tall": (60, 150, "How many shapes are there?"),
    "small": (30, 20, "Describe the image."),  # below min_pixels: scaled up
}
WORDS = ["system", "user", "assistant", "You", "are", "a", "helpful", "What", "color", "is", "the", "square", "Where", "circle", "How",
         "many", "shapes", "there", "Describe", "image", "red", "green", "blue", "left", "right", "top", "bottom", "one", "two", "yes", "no"]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
# Qwen2.5-VL-Instruct's chat template (as the checkpoints ship it in chat_template.json).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "tests/fixtures/reference-qwen"))
    return p.parse_args()


def byte_chars():
    """GPT-2's bytes_to_unicode: the printable character that stands for each byte in a byte-level BPE vocabulary."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def build_tokenizer():
    """A Qwen-style byte-level BPE tokenizer (no BOS): known words whole (with and without a leading space), the rest by byte."""
    chars = byte_chars()
    vocab, merges = {}, []
    add = lambda tok: vocab.setdefault(tok, len(vocab))
    for b in range(256):
        add(chars[b])
    for word in WORDS:
        for text in (word, " " + word):
            piece = "".join(chars[b] for b in text.encode()[:1])
            for b in text.encode()[1:]:
                ch = chars[b]
                if piece + ch not in vocab:
                    merges.append(f"{piece} {ch}")
                    add(piece + ch)
                piece += ch
    ids = {tok: len(vocab) + i for i, tok in enumerate(SPECIALS)}
    added = lambda tok: dict(id=ids[tok], content=tok, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)
    spec = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [added(t) for t in SPECIALS], "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False, "vocab": vocab, "merges": merges},
    }
    return Tokenizer.from_str(json.dumps(spec)), ids


def make_checkpoint(spec, folder):
    tok, ids = build_tokenizer()
    vocab_size = ids[SPECIALS[-1]] + 1
    text = dict(**TEXT, vocab_size=vocab_size, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                rope_parameters={"rope_type": "default", "rope_theta": spec["theta"], "mrope_section": spec["mrope"]},
                tie_word_embeddings=spec["tied"])
    vision = dict(**VISION, window_size=spec["window"], fullatt_block_indexes=spec["full"])
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                              vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
                              tie_word_embeddings=spec["tied"])
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    assert (model.lm_head.weight is model.model.language_model.embed_tokens.weight) == spec["tied"], "tying is not as asked"
    recipe = []
    with torch.no_grad():
        for i, (param_name, p) in enumerate(model.named_parameters()):
            mean, std = init_of(param_name, p.shape, TEXT["hidden_size"])
            seed = (spec["seed"] * 1000003 + i * 7919) & 0xFFFFFFFF
            p.copy_(uniform_tensor(tuple(p.shape), mean, std, seed))
            recipe.append({"param": param_name, "shape": list(p.shape), "mean": mean, "std": std, "seed": seed})
    model.save_pretrained(folder, safe_serialization=True)
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

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", model_max_length=4096,
                                   extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                                                         "vision_bos_token": "<|vision_start|>", "vision_eos_token": "<|vision_end|>"})
    images = Qwen2VLImageProcessorPil(size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}, patch_size=PATCH, merge_size=MERGE,
                                      temporal_patch_size=2, image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD), resample=3)
    # Qwen2_5_VLProcessor needs a video processor (torchvision); its image part is reproduced in `processed`.
    images.save_pretrained(folder)
    fast.save_pretrained(folder)
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    return recipe


def processed(images, tokenizer, image, prompt, image_token_id):
    """What Qwen2_5_VLProcessor returns: the image's patches and grid, <|image_pad|> expanded to the merged cell count."""
    pixels = images(image, return_tensors="pt")
    grid = pixels["image_grid_thw"]
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"][0]
    at = int((ids == image_token_id).nonzero().flatten()[0])
    n = int(grid.prod()) // MERGE**2
    ids = torch.cat([ids[:at], torch.full((n,), image_token_id), ids[at + 1:]]).unsqueeze(0)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "mm_token_type_ids": (ids == image_token_id).int(),
            "pixel_values": pixels["pixel_values"], "image_grid_thw": grid}


class QwenDecoder(Decoder):
    """make_fixtures.Decoder (the LLaVA reference's TransPrune) over Qwen2.5-VL's modules. Positions are get_rope_index's
    [3, S]: under 'original' each kept token keeps its own; 'compact' gives the sequence after a prune 1D positions
    0..S'-1 on all three axes (text positions). IGA's queries are the instruction, after <|vision_end|>."""

    def __init__(self, model, table):
        lm, cfg = model.model.language_model, model.config.text_config
        self.layers, self.norm, self.rotary, self.head = lm.layers, lm.norm, lm.rotary_emb, model.lm_head
        self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.window = None
        self.instruction_offset = 1  # <|vision_end|>
        self.table = table

    def initial_positions(self, length):
        return self.table[:, :length]

    def compact_positions(self, length):
        return torch.arange(length).expand(3, -1)

    def rope(self, normed, pos):
        return self.rotary(normed, pos[:, None, :])


def pruned(decoder, embeds, start, n, schedule, positions):
    method = {"kind": "transprune", "schedule": schedule, "alpha": 0.5, "positions": positions}
    logits, _, stages, _ = decoder.prefill(embeds, start, n, method)
    return {"positions": positions, "answer_token": int(logits.argmax()),
            "stages": [{"after_layer": s["after_layer"], "keep": s["keep"], "kept_hex": kept_hex(s["kept"], n),
                        "score_margin": s["score_margin"]} for s in stages]}


@torch.no_grad()
def case(model, images, tokenizer, image_path, question):
    image = Image.open(image_path).convert("RGB")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processed(images, tokenizer, image, prompt, model.config.image_token_id)
    ids = inputs["input_ids"][0]
    where = (ids == model.config.image_token_id).nonzero().flatten()
    start, n = int(where[0]), len(where)
    assert int(where[-1]) == start + n - 1, "expected one contiguous block of image tokens"
    grid = inputs["image_grid_thw"]
    assert n == int(grid.prod()) // MERGE**2

    core = model.model
    visual = core.get_image_features(inputs["pixel_values"], grid).pooler_output[0]
    assert visual.shape[0] == n
    positions, deltas = core.get_rope_index(ids.unsqueeze(0), inputs["mm_token_type_ids"], image_grid_thw=grid)

    captured = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: captured.append((out[0] if isinstance(out, tuple) else out)[0]))
             for layer in core.language_model.layers]
    logits = model(**inputs).logits[0, -1]
    for h in hooks:
        h.remove()
    greedy = model.generate(**inputs, max_new_tokens=8, do_sample=False)[0, len(ids):]

    embeds = core.get_input_embeddings()(ids.unsqueeze(0))
    embeds[:, start:start + n] = visual
    decoder = QwenDecoder(model, positions[:, 0])
    own_logits, own_outputs, _, _ = decoder.prefill(embeds, start, n)
    check("own unpruned prefill vs transformers (logits)", own_logits, logits)
    for layer, (own, hf) in enumerate(zip(own_outputs, captured)):
        check(f"own vs transformers (layer {layer + 1} output)", own, hf)
    schedule = SCHEDULES[str(TEXT["num_hidden_layers"])]["transprune-high"]

    pixels = inputs["pixel_values"]  # [patches, 3 * 2 * 14 * 14]
    sample = np.random.default_rng(7).integers(0, pixels.numel(), 64).tolist()
    rows = [0, start, start + n - 1, start + n, len(ids) - 1]
    visual_rows = sorted({0, 1, n // 2, n - 1})
    return {
        "image": f"images/{Path(image_path).name}", "question": question, "prompt": prompt,
        "image_size": [image.width, image.height],
        "prompt_ids": ids[:start + 1].tolist() + ids[start + n:].tolist(), "visual_start": start, "num_visual": n,
        "image_grid_thw": grid[0].tolist(),
        "pixel_values": {"shape": list(pixels.shape), "row_sums": floats(pixels.double().sum(dim=1)),
                         "samples": {"flat_index": sample, "value": floats(pixels.flatten()[sample])}},
        "visual_tokens": summary(visual, visual_rows),
        "position_ids": positions[:, 0].tolist(), "rope_delta": int(deltas.flatten()[0]),
        "layer_outputs": [summary(h, rows) for h in captured],
        "prefill_logits_last": floats(logits),
        "greedy": {"ids": greedy.tolist(), "text": tokenizer.decode(greedy, skip_special_tokens=True)},
        "transprune_high": {"schedule": schedule, "runs": [pruned(decoder, embeds, start, n, schedule, p) for p in ("original", "compact")]},
    }


def main():
    args = parse_args()
    torch.set_grad_enabled(False)
    out = Path(args.out).resolve()
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="qwen-fixtures-"))
    try:
        models = {}
        for name, spec in MODELS.items():
            folder = work / name
            recipe = make_checkpoint(spec, folder)
            files = {f.name: f.read_text() for f in sorted(folder.iterdir()) if f.suffix in (".json", ".jinja")}
            images = Qwen2VLImageProcessorPil.from_pretrained(folder)
            tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder).float().eval()
            models[name] = (model, images, tokenizer, recipe, files)
        cases = {name: {} for name in MODELS}
        for i, (image_name, (w, h, question)) in enumerate(IMAGES.items()):
            # Redrawn until no top-k decision of either model is a near-tie.
            for attempt in range(20):
                path = image_dir / f"{image_name}.png"
                make_image(path, w, h, seed=300 + i + 1000 * attempt)
                found = {name: case(m, im, tok, path, question) for name, (m, im, tok, _, _) in models.items()}
                margins = [s["score_margin"] for c in found.values() for run in c["transprune_high"]["runs"] for s in run["stages"]
                           if s["score_margin"] is not None]
                if min(margins) >= MIN_MARGIN:
                    break
            else:
                raise SystemExit(f"{image_name}: no image without near-ties in 20 attempts")
            for name, c in found.items():
                cases[name][image_name] = c
        for name, spec in MODELS.items():
            model, images, tokenizer, recipe, files = models[name]
            fixture = {"model": name, "transformers": transformers.__version__, "torch": torch.__version__, "pillow": PIL.__version__,
                       "image_processor": type(images).__name__, "spec": spec, "files": files, "weights": recipe,
                       "min_score_margin": MIN_MARGIN, "cases": cases[name]}
            path = out / f"{name}.json"
            path.write_text(json.dumps(fixture) + "\n")
            line = "; ".join(f"{k}: grid {c['image_grid_thw']} N={c['num_visual']} -> {c['greedy']['text']!r}" for k, c in cases[name].items())
            print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB): {line}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
