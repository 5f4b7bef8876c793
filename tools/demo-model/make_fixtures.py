#!/usr/bin/env python3
"""Reference fixtures from PyTorch + transformers + PIL, for the engine's parity tests (which run without Python).

For the demo checkpoint and a tiny random LLaVA checkpoint (made here, saved beside the fixtures), writes
tests/fixtures/reference/<name>.json:
  - for real image files of different kinds (made here from test-split scenes: a JPEG with an EXIF
    rotation, a PNG with alpha, a grey PNG, a wide panorama) and two test-split items: LlavaProcessor's
    pixel values (the uint8 image it normalizes, as pixels/<case>.png, plus statistics), the prompt ids,
    vision features, per-layer hidden states (sampled rows), prefill logits and the greedy answer;
  - for the demo model (the tiny one while there is no demo model), over the first 20 test-split items: the kept visual tokens at every stage of
    transprune-high, transprune-low, ttv, iga, fastv and pdrop from a PyTorch implementation that follows
    the released code's semantics (method spec §2-5: 1 - cos, softmax over the whole sequence,
    accumulation, next-layer IGA over the tokens after the visual block, L1 normalisation, sorted top-k,
    compact positions; FastV and PDrop as in peer-pruning §2.1, §2.3).
Everything runs in float32 on the CPU, as the engine does.

  tools/demo-model/.venv/bin/python tools/demo-model/make_fixtures.py [--demo resources/demo-model] [--out tests/fixtures/reference]
"""
import argparse
import io
import json
import math
from pathlib import Path

import numpy as np
import PIL
import torch
import transformers
from PIL import Image
from tokenizers import Tokenizer
from transformers import AutoProcessor, LlavaForConditionalGeneration
from transformers.image_utils import load_image

from common import NUM_VISUAL, parts, read_split
from from_scratch import build_model, build_processor, save_checkpoint, train_tokenizer

ROOT = Path(__file__).resolve().parents[2]
TEST_SPLIT = ROOT / "resources/vqa-test/test.jsonl"
SCHEDULES = json.loads((Path(__file__).with_name("schedules.json")).read_text())
TINY_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=336,
                   patch_size=14, hidden_act="quick_gelu", projection_dim=32)
TINY_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=2,
                 max_position_embeddings=2048, rms_norm_eps=1e-5, hidden_act="silu", tie_word_embeddings=False)
EPS = 1e-8  # the released code's normalisation epsilon
DETAIL_ITEMS = [0, 4]  # a colour and a position question of the test split
PRUNING_ITEMS = 20
# In-LLM methods as the engine's CLI names them, with what they mean here (src/shared/pruning.ts defaults).
PRUNING_METHODS = {
    "transprune-high": dict(kind="transprune", preset="transprune-high", alpha=0.5, positions="compact"),
    "transprune-low": dict(kind="transprune", preset="transprune-low", alpha=0.5, positions="compact"),
    "ttv": dict(kind="transprune", preset="transprune-high", alpha=1.0, positions="compact"),
    "iga": dict(kind="transprune", preset="transprune-high", alpha=0.0, positions="compact"),
    "fastv": dict(kind="fastv", k=2, r=0.5, positions="original"),
    "pdrop": dict(kind="pdrop", stages=4, lam=0.5, positions="compact"),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", default=str(ROOT / "resources/demo-model"))
    p.add_argument("--out", default=str(ROOT / "tests/fixtures/reference"))
    return p.parse_args()


# ---------------------------------------------------------------------------------------------
# A decoder forward over the HF modules, layer by layer, with pruning between layers


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def causal_probs(q, k, query_start, window=None):
    """Softmax over the keys each query may see (causal, and within the sliding window if the model has one)
    for the queries query_start..S-1: [1,H,S-qs,S], float32."""
    s = k.shape[-2]
    scores = (q[:, :, query_start:] @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    query = torch.arange(query_start, s).unsqueeze(1)
    key = torch.arange(s).unsqueeze(0)
    visible = (key <= query) & ((key > query - window) if window else True)
    return scores.masked_fill(~visible, float("-inf")).softmax(dim=-1)


def transition(t_in, t_out):
    """Per-module TTV (spec §2.2): ||out||/||in|| times softmax over ALL tokens of (1 - cos)."""
    n_in, n_out = t_in.norm(dim=-1), t_out.norm(dim=-1)
    cos = (t_in * t_out).sum(-1) / (n_in * n_out)
    return (n_out / n_in) * torch.softmax(1 - cos, dim=-1)


def keep_count(n, ratio):
    return max(1, min(n, math.floor(n * ratio)))


def pdrop_layers(stages, num_layers):
    return [math.floor(num_layers * (i + 1) / stages + 0.5) for i in range(stages - 1)]


class Decoder:
    def __init__(self, model):
        """model: a LLaVA model, or a causal LM alone (the demo's SmolLM2 while it trains)."""
        if hasattr(model.config, "text_config"):
            (_, _, lm, head), cfg = parts(model), model.config.text_config
        else:
            lm, head, cfg = model.model, model.lm_head, model.config
        self.layers, self.norm, self.rotary, self.head = lm.layers, lm.norm, lm.rotary_emb, head
        self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.window = getattr(cfg, "sliding_window", None)  # Mistral decoders (LLaVA-NeXT)
        self.instruction_offset = 0  # IGA's queries start this many tokens after the visual block

    def initial_positions(self, length):
        """Positions of the unpruned sequence, last axis = tokens (1D here; Qwen's are [3, S])."""
        return torch.arange(length)

    def compact_positions(self, length):
        return torch.arange(length)

    def rope(self, normed, pos):
        return self.rotary(normed, pos.unsqueeze(0))

    def split(self, x, heads):
        return x.view(1, x.shape[1], heads, self.head_dim).transpose(1, 2)

    def qk(self, layer, normed, pos):
        attn = layer.self_attn
        cos, sin = self.rope(normed, pos)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        q, k = self.split(attn.q_proj(normed), self.heads), self.split(attn.k_proj(normed), self.kv_heads)
        k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin

    def attention(self, layer, normed, pos):
        q, k = self.qk(layer, normed, pos)
        v = self.split(layer.self_attn.v_proj(normed), self.kv_heads).repeat_interleave(self.heads // self.kv_heads, dim=1)
        out = causal_probs(q, k, 0, self.window) @ v
        return layer.self_attn.o_proj(out.transpose(1, 2).reshape(1, normed.shape[1], -1))

    def layer(self, layer, x, pos):
        """Returns the layer output and its TTV (attention + MLP transitions, spec §1, §2.2)."""
        a_in = layer.input_layernorm(x)
        a_out = self.attention(layer, a_in, pos)
        h = x + a_out
        f_in = layer.post_attention_layernorm(h)
        f_out = layer.mlp(f_in)
        return h + f_out, (transition(a_in, a_out) + transition(f_in, f_out))[0]

    def probe(self, layer, x, pos, query_start):
        """Head-mean attention of the queries query_start..S-1 under `layer`'s norm + q/k + RoPE, averaged over the queries: [S]."""
        q, k = self.qk(layer, layer.input_layernorm(x), pos)
        return causal_probs(q, k, query_start, self.window).mean(dim=1)[0].mean(dim=0)

    @torch.no_grad()
    def prefill(self, embeds, start, n, method=None):
        """Unpruned when method is None. Returns last-token logits, per-layer outputs and the stages."""
        x, pos, count = embeds, self.initial_positions(embeds.shape[1]), n
        kept = torch.arange(n)
        stored, stages, outputs, first_scores, pending = {}, [], [], None, None
        plan = stage_plan(method, len(self.layers), n) if method else {}
        for number, layer in enumerate(self.layers, start=1):
            if method and method["kind"] == "fastv" and number == method["k"]:
                # Layer K's own attention from the last token, on its input (peer-pruning §2.1).
                pending = self.probe(layer, x, pos, x.shape[1] - 1)[start:start + count]
            x, ttv = self.layer(layer, x, pos)
            outputs.append(x[0])
            if not method:
                continue
            if method["kind"] == "transprune" and number in method["schedule"]["accumulate"]:
                stored[number] = ttv[start:start + count]
            if number not in plan:
                continue
            keep = plan[number]
            if method["kind"] == "transprune":
                ttv_acc = sum(stored.values()) if stored else torch.zeros(count)
                ttv_hat = ttv_acc / (ttv_acc.sum() + EPS)
                queries = start + count + self.instruction_offset
                iga = self.probe(self.layers[number], x, pos, queries)[start:start + count]  # layer number + 1 (1-based)
                iga_hat = iga / (iga.sum() + EPS)
                score = method["alpha"] * ttv_hat + (1 - method["alpha"]) * iga_hat
                if first_scores is None:
                    first_scores = {"ttv": floats(ttv_hat), "iga": floats(iga_hat)}
            elif method["kind"] == "pdrop":
                # The next layer's norm + q/k on this layer's output, the last token as the query (peer-pruning §2.3).
                score = self.probe(self.layers[number], x, pos, x.shape[1] - 1)[start:start + count]
            else:
                score = pending
            ranked = torch.sort(score.double(), descending=True, stable=True)
            top = ranked.indices[:keep].sort().values
            margin = (ranked.values[keep - 1] - ranked.values[keep]).item() if keep < count else None
            x = torch.cat([x[:, :start], x[:, start + top], x[:, start + count:]], dim=1)
            kept_pos = torch.cat([pos[..., :start], pos[..., start + top], pos[..., start + count:]], dim=-1)
            pos = self.compact_positions(x.shape[1]) if method["positions"] == "compact" else kept_pos
            stored = {j: v[top] for j, v in stored.items()}
            kept, count = kept[top], keep
            stages.append({"after_layer": number, "keep": keep, "kept": kept.tolist(), "score_margin": margin})
        logits = self.head(self.norm(x))[0, -1]
        return logits, outputs, stages, first_scores


def stage_plan(method, num_layers, n):
    """{1-based layer after which tokens are removed: tokens kept}, as src/shared/pruning.ts plans it."""
    if method["kind"] == "transprune":
        s = method["schedule"]
        return {layer: keep_count(n, r) for layer, r in zip(s["prune"], s["ratios"])}
    if method["kind"] == "fastv":
        return {method["k"]: keep_count(n, 1 - method["r"])}
    return {layer: keep_count(n, method["lam"] ** (i + 1)) for i, layer in enumerate(pdrop_layers(method["stages"], num_layers))}


def resolved(method, depth):
    if method["kind"] != "transprune":
        return method
    return {**method, "schedule": SCHEDULES[str(depth)][method["preset"]]}


# ---------------------------------------------------------------------------------------------
# Fixture images: real files of different kinds, made from test-split scenes


def make_images(folder):
    """exif-rotated.jpg (stored sideways, EXIF orientation 6), alpha.png (RGBA, 300 px: an upscale),
    grey.png (8-bit greyscale, 500 x 400), panorama.jpg (1200 x 300, three scenes side by side)."""
    folder.mkdir(parents=True, exist_ok=True)
    scene = lambda i: Image.open(TEST_SPLIT.parent / f"images/test-{i:06d}.jpg").convert("RGB")
    upright = scene(10).resize((448, 336), Image.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = 6  # the viewer rotates 90 degrees clockwise to show it upright
    upright.transpose(Image.Transpose.ROTATE_90).save(folder / "exif-rotated.jpg", quality=85, exif=exif)
    rgba = scene(11).resize((300, 300), Image.BICUBIC).convert("RGBA")
    alpha = np.full((300, 300), 255, dtype=np.uint8)
    alpha[:, :100] = np.linspace(0, 255, 100, dtype=np.uint8)  # a soft transparent left edge
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(folder / "alpha.png")
    scene(12).resize((500, 400), Image.BICUBIC).convert("L").save(folder / "grey.png")
    panorama = Image.new("RGB", (1200, 300))
    for j, i in enumerate((13, 14, 15)):
        panorama.paste(scene(i).resize((400, 300), Image.BICUBIC), (400 * j, 0))
    panorama.save(folder / "panorama.jpg", quality=85)
    return {
        "exif-rotated": ("exif-rotated.jpg", "How many objects are there?"),
        "alpha": ("alpha.png", "What color is the circle?"),
        "grey": ("grey.png", "How many objects are there?"),
        "panorama": ("panorama.jpg", "Is there a red square in the image?"),
    }


# ---------------------------------------------------------------------------------------------
# Fixtures


def repo_path(path):
    """Repository-relative path (what the TypeScript tests resolve), absolute outside the repository."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def floats(t):
    return [float(f"{v:.7g}") for v in t.flatten().tolist()]


def summary(t, rows):
    """Statistics over a [S, D] tensor and the listed rows in full."""
    return {"shape": list(t.shape), "mean": float(t.mean()), "std": float(t.std()), "abs_max": float(t.abs().max()),
            "rows": {str(r): floats(t[r]) for r in rows}}


def test_items():
    return [json.loads(line) for line in TEST_SPLIT.read_text().splitlines() if line.strip()]


def pixel_image(processor, image):
    """The uint8 image LlavaProcessor normalizes (resized and cropped, before rescale): exact integers on the PIL path."""
    raw = processor.image_processor(image, do_rescale=False, do_normalize=False, return_tensors="np")["pixel_values"][0]
    assert np.array_equal(raw, np.round(raw)), "the processor resized in float: its pixels are not uint8 values"
    return Image.fromarray(raw.transpose(1, 2, 0).astype(np.uint8))


def encode_case(model, processor, image, question):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(images=image, text=prompt, return_tensors="pt")
    ids = inputs["input_ids"][0]
    where = (ids == model.config.image_token_id).nonzero().flatten()
    start, n = int(where[0]), len(where)
    assert n == NUM_VISUAL and int(where[-1]) == start + n - 1, "expected one contiguous block of 576 image tokens"
    return prompt, inputs, ids, start, n


@torch.no_grad()
def embed(model, inputs, ids, start, n):
    vision, projector, lm, _ = parts(model)
    selected = vision(inputs["pixel_values"], output_hidden_states=True).hidden_states[model.config.vision_feature_layer][:, 1:]
    image_features = projector(selected)
    embeds = lm.embed_tokens(ids.unsqueeze(0))
    embeds[:, start:start + n] = image_features
    return selected, image_features, embeds


@torch.no_grad()
def detailed_case(model, processor, case_id, image_path, image, question, answer, pixels_dir):
    prompt, inputs, ids, start, n = encode_case(model, processor, image, question)
    selected, image_features, embeds = embed(model, inputs, ids, start, n)
    _, _, lm, _ = parts(model)
    captured = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: captured.append((out[0] if isinstance(out, tuple) else out)[0])) for layer in lm.layers]
    hf_logits = model(**inputs).logits[0, -1]
    for h in hooks:
        h.remove()
    greedy = model.generate(**inputs, max_new_tokens=8, do_sample=False)[0, len(ids):]

    decoder = Decoder(model)
    own_logits, own_outputs, _, _ = decoder.prefill(embeds, start, n)
    check("own unpruned prefill vs transformers (logits)", own_logits, hf_logits)
    for layer, (own, hf) in enumerate(zip(own_outputs, captured)):
        check(f"own vs transformers (layer {layer} output)", own, hf)

    pixels = inputs["pixel_values"][0]
    pixel_png = pixels_dir / f"{case_id}.png"
    pixel_image(processor, image).save(pixel_png)
    rows = [0, start, start + n - 1, len(ids) - 1]
    return {
        "id": case_id, "image": repo_path(image_path), "question": question, "answer": answer,
        "prompt": prompt, "prompt_ids": ids[:start + 1].tolist() + ids[start + n:].tolist(), "visual_start": start, "num_visual": n,
        "pixel_values": {"uint8_png": repo_path(pixel_png), "mean_per_channel": floats(pixels.mean(dim=(1, 2))),
                         "std_per_channel": floats(pixels.std(dim=(1, 2))), "row0_channel0_first16": floats(pixels[0, 0, :16])},
        "vision_features": summary(selected[0], [0, 1, n // 2, n - 1]),
        "image_features": summary(image_features[0], [0, 1, n // 2, n - 1]),
        "embeddings": summary(embeds[0], rows),
        "layer_outputs": [summary(h, rows) for h in captured],
        "prefill_logits_last": floats(hf_logits),
        "greedy": {"ids": greedy.tolist(), "text": processor.tokenizer.decode(greedy, skip_special_tokens=True).strip()},
    }


def kept_hex(kept, n):
    """The kept set as a hex bitmask over the original grid, bit i of the number = token i."""
    return format(sum(1 << i for i in kept), f"0{(n + 3) // 4}x")


@torch.no_grad()
def pruning_case(model, processor, item):
    image = load_image(str(TEST_SPLIT.parent / item["image"]))
    _, inputs, ids, start, n = encode_case(model, processor, image, item["question"])
    _, _, embeds = embed(model, inputs, ids, start, n)
    decoder = Decoder(model)
    depth = len(decoder.layers)
    unpruned, _, _, _ = decoder.prefill(embeds, start, n)
    methods = {}
    for name, spec in PRUNING_METHODS.items():
        method = resolved(spec, depth)
        if method["kind"] == "transprune":
            no_op = {**method, "schedule": {**method["schedule"], "ratios": [1.0] * len(method["schedule"]["ratios"])}}
            assert torch.equal(decoder.prefill(embeds, start, n, no_op)[0], unpruned), "keeping every token must change nothing (spec §8.1)"
        logits, _, stages, _ = decoder.prefill(embeds, start, n, method)
        check_nesting(stages, n)
        methods[name] = {
            "method": {k: v for k, v in method.items() if k != "preset"},
            "stages": [{"after_layer": s["after_layer"], "keep": s["keep"], "kept_hex": kept_hex(s["kept"], n), "score_margin": s["score_margin"]}
                       for s in stages],
            "answer_token": int(logits.argmax()),
        }
    return {"id": item["id"], "image": f"resources/vqa-test/{item['image']}", "question": item["question"], "methods": methods}


def check_nesting(stages, n):
    """Spec §8.3-4: each stage keeps its count, ascending, and a subset of the stage before."""
    previous = set(range(n))
    for stage in stages:
        kept = stage["kept"]
        assert len(kept) == stage["keep"] and kept == sorted(set(kept)) and set(kept) <= previous, f"bad stage {stage['after_layer']}"
        previous = set(kept)


def check(what, ours, theirs, tolerance=1e-4):
    err = ((ours - theirs).abs().max() / theirs.abs().max().clamp_min(1e-12)).item()
    assert err < tolerance, f"{what}: relative error {err:.2e}"


def write_fixture(name, folder, out, images, with_pruning):
    model = LlavaForConditionalGeneration.from_pretrained(folder).float().eval()
    processor = AutoProcessor.from_pretrained(folder)
    pixels_dir = out / "pixels"
    pixels_dir.mkdir(parents=True, exist_ok=True)
    cases = []
    for case_id, (file, question) in images.items():
        path = out / "images" / file
        cases.append(detailed_case(model, processor, case_id, path, load_image(str(path)), question, None, pixels_dir))
    items = test_items()
    for i in DETAIL_ITEMS:
        item = items[i]
        path = TEST_SPLIT.parent / item["image"]
        cases.append(detailed_case(model, processor, item["id"], path, load_image(str(path)), item["question"], item["answer"], pixels_dir))
    fixture = {"model": name, "transformers": transformers.__version__, "torch": torch.__version__, "pillow": PIL.__version__,
               "image_processor": type(processor.image_processor).__name__, "dtype": "float32 compute, fp16 weights",
               "num_layers": len(parts(model)[2].layers), "cases": cases}
    if with_pruning:
        fixture["pruning"] = [pruning_case(model, processor, item) for item in items[:PRUNING_ITEMS]]
    path = out / f"{name}.json"
    path.write_text(json.dumps(fixture) + "\n")
    answers = "; ".join(f"{c['id']}: {c['question']} -> {c['greedy']['text']!r}" + (f" (truth {c['answer']!r})" if c["answer"] else "") for c in cases)
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB, {fixture['image_processor']}): {answers}", flush=True)


def make_tiny(demo, out):
    """A tiny random LLaVA (8 layers, GQA) with the demo's tokenizer (one trained on the test split's chats
    while there is no demo model), weights scaled so activations are O(1)."""
    tok_file = Path(demo) / "tokenizer.json"
    tok = Tokenizer.from_file(str(tok_file)) if tok_file.exists() else train_tokenizer(read_split(TEST_SPLIT.parent, "test"))
    model = build_model(tok, TINY_VISION, TINY_TEXT)
    generator = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(p.shape[-1]))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=generator))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
    save_checkpoint(model, build_processor(tok), out)


def main():
    args = parse_args()
    torch.set_grad_enabled(False)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    images = make_images(out / "images")
    tiny = out / "tiny-llava"
    make_tiny(args.demo, tiny)
    has_demo = (Path(args.demo) / "config.json").exists()
    # Kept-token fixtures come from the demo model; without it, from the tiny random one.
    write_fixture("tiny", tiny, out, images, with_pruning=not has_demo)
    if has_demo:
        write_fixture("demo", Path(args.demo), out, images, with_pruning=True)


if __name__ == "__main__":
    main()
