#!/usr/bin/env python3
"""Reference fixtures from PyTorch + transformers, for the engine's parity tests.

For the demo checkpoint and a tiny random LLaVA checkpoint (made here, saved beside the fixtures),
and a few fixed image + question pairs from the test split, writes tests/fixtures/reference/<name>.json:
prompt ids, pixel statistics, vision features, per-layer hidden states (statistics and sampled rows),
prefill logits, the greedy answer, and TransPrune's kept indices per stage under transprune-high and
transprune-low from a PyTorch TransPrune that follows the method spec §2-5 (the released code's
semantics: 1 - cos, softmax over the whole sequence, accumulation, next-layer IGA over the tokens
after the visual block, L1 normalisation, sorted top-k, compacted positions). Everything runs in
float32 on the CPU, as the engine does. See RUN.md.

  python3 tools/demo-model/make_fixtures.py --demo resources/demo-model --out tests/fixtures/reference
"""
import argparse
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers
from PIL import Image
from tokenizers import Tokenizer
from transformers import AutoProcessor, LlavaForConditionalGeneration

from common import NUM_VISUAL, parts
from train import build_model, build_processor, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TEST_SPLIT = ROOT / "resources/vqa-test/test.jsonl"
CASES = [0, 4, 5]  # colour, position and label questions of the test split
SCHEDULES = json.loads((Path(__file__).with_name("schedules.json")).read_text())
TINY_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=336,
                   patch_size=14, hidden_act="quick_gelu", projection_dim=32)
TINY_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=2,
                 max_position_embeddings=2048, rms_norm_eps=1e-5, hidden_act="silu", tie_word_embeddings=False)
EPS = 1e-8  # the released code's normalisation epsilon


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", default=str(ROOT / "resources/demo-model"))
    p.add_argument("--out", default=str(ROOT / "tests/fixtures/reference"))
    return p.parse_args()


# ---------------------------------------------------------------------------------------------
# A decoder forward over the HF modules, layer by layer, with TransPrune between layers


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def causal_probs(q, k):
    """[1,H,S,Dh] x [1,H,S,Dh] -> softmax over all keys with the causal mask, float32."""
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = scores.shape[-1]
    causal = torch.ones(s, s, dtype=torch.bool).tril()
    return scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)


def transition(t_in, t_out):
    """Per-module TTV (spec §2.2): ||out||/||in|| times softmax over ALL tokens of (1 - cos)."""
    n_in, n_out = t_in.norm(dim=-1), t_out.norm(dim=-1)
    cos = (t_in * t_out).sum(-1) / (n_in * n_out)
    return (n_out / n_in) * torch.softmax(1 - cos, dim=-1)


class Decoder:
    def __init__(self, model):
        _, _, lm, head = parts(model)
        cfg = model.config.text_config
        self.layers, self.norm, self.rotary, self.head = lm.layers, lm.norm, lm.rotary_emb, head
        self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads

    def split(self, x, heads):
        return x.view(1, x.shape[1], heads, self.head_dim).transpose(1, 2)

    def qk(self, layer, normed, pos):
        attn = layer.self_attn
        cos, sin = self.rotary(normed, pos.unsqueeze(0))
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        q, k = self.split(attn.q_proj(normed), self.heads), self.split(attn.k_proj(normed), self.kv_heads)
        k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin

    def attention(self, layer, normed, pos):
        q, k = self.qk(layer, normed, pos)
        v = self.split(layer.self_attn.v_proj(normed), self.kv_heads).repeat_interleave(self.heads // self.kv_heads, dim=1)
        out = causal_probs(q, k) @ v
        return layer.self_attn.o_proj(out.transpose(1, 2).reshape(1, normed.shape[1], -1))

    def layer(self, layer, x, pos):
        """Returns the layer output and its TTV (attention + MLP transitions, spec §1, §2.2)."""
        a_in = layer.input_layernorm(x)
        a_out = self.attention(layer, a_in, pos)
        h = x + a_out
        f_in = layer.post_attention_layernorm(h)
        f_out = layer.mlp(f_in)
        return h + f_out, (transition(a_in, a_out) + transition(f_in, f_out))[0]

    def iga(self, next_layer, x, pos, start, count):
        """Spec §3.2: the next layer's q/k on the current hidden states, mean over heads, visual key
        columns, mean over the queries after the visual block."""
        q, k = self.qk(next_layer, next_layer.input_layernorm(x), pos)
        probs = causal_probs(q, k).mean(dim=1)[0]
        return probs[start + count:, start:start + count].mean(dim=0)

    @torch.no_grad()
    def prefill(self, embeds, start, n, schedule=None, alpha=0.5):
        """Unpruned when schedule is None. Returns last-token logits, per-layer outputs and the stages."""
        x, pos, count = embeds, torch.arange(embeds.shape[1]), n
        kept = torch.arange(n)
        stored, stages, outputs, first_scores = {}, [], [], None
        for number, layer in enumerate(self.layers, start=1):
            x, ttv = self.layer(layer, x, pos)
            outputs.append(x[0])
            if schedule is None:
                continue
            if number in schedule["accumulate"]:
                stored[number] = ttv[start:start + count]
            if number in schedule["prune"]:
                keep = max(1, min(n, math.floor(n * schedule["ratios"][schedule["prune"].index(number)])))
                ttv_acc = sum(stored.values()) if stored else torch.zeros(count)
                ttv_hat = ttv_acc / (ttv_acc.sum() + EPS)
                iga = self.iga(self.layers[number], x, pos, start, count)  # layers[number] is 1-based layer number + 1
                iga_hat = iga / (iga.sum() + EPS)
                score = alpha * ttv_hat + (1 - alpha) * iga_hat
                ranked = torch.sort(score, descending=True, stable=True)
                top = torch.topk(score, keep).indices.sort().values
                margin = (ranked.values[keep - 1] - ranked.values[keep]).item() if keep < count else None
                if first_scores is None:
                    first_scores = {"ttv": floats(ttv_hat), "iga": floats(iga_hat)}
                x = torch.cat([x[:, :start], x[:, start + top], x[:, start + count:]], dim=1)
                stored = {j: v[top] for j, v in stored.items()}
                kept, count, pos = kept[top], keep, torch.arange(x.shape[1])
                stages.append({"after_layer": number, "keep": keep, "kept": kept.tolist(), "score_margin": margin})
        logits = self.head(self.norm(x))[0, -1]
        return logits, outputs, stages, first_scores


# ---------------------------------------------------------------------------------------------
# Fixtures


def floats(t):
    return [float(f"{v:.6g}") for v in t.flatten().tolist()]


def summary(t, rows):
    """Statistics over a [S, D] tensor and the listed rows in full."""
    return {"shape": list(t.shape), "mean": float(t.mean()), "std": float(t.std()), "abs_max": float(t.abs().max()),
            "rows": {str(r): floats(t[r]) for r in rows}}


def load_cases():
    lines = TEST_SPLIT.read_text().splitlines()
    return [json.loads(lines[i]) for i in CASES]


@torch.no_grad()
def run_case(model, processor, item):
    vision, projector, lm, _ = parts(model)
    image = Image.open(TEST_SPLIT.parent / item["image"]).convert("RGB")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": item["question"]}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(images=image, text=prompt, return_tensors="pt")
    ids = inputs["input_ids"][0]
    image_id = model.config.image_token_id
    where = (ids == image_id).nonzero().flatten()
    start, n = int(where[0]), len(where)
    assert n == NUM_VISUAL and int(where[-1]) == start + n - 1, "expected one contiguous block of 576 image tokens"

    pixels = inputs["pixel_values"]
    selected = vision(pixels, output_hidden_states=True).hidden_states[model.config.vision_feature_layer][:, 1:]
    image_features = projector(selected)
    embeds = lm.embed_tokens(ids.unsqueeze(0))
    embeds[:, start:start + n] = image_features

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

    rows = [0, start, start + n - 1, len(ids) - 1]
    prompt_ids = ids[:start + 1].tolist() + ids[start + n:].tolist()
    case = {
        "id": item["id"], "image": f"resources/vqa-test/{item['image']}", "question": item["question"], "answer": item["answer"],
        "prompt": prompt, "prompt_ids": prompt_ids, "image_token_index": start, "visual_start": start, "num_visual": n,
        "pixel_values": {"mean_per_channel": floats(pixels[0].mean(dim=(1, 2))), "std_per_channel": floats(pixels[0].std(dim=(1, 2))),
                         "row0_channel0_first16": floats(pixels[0, 0, 0, :16])},
        "vision_features": summary(selected[0], [0, 1, n // 2, n - 1]),
        "image_features": summary(image_features[0], [0, 1, n // 2, n - 1]),
        "embeddings": summary(embeds[0], rows),
        "layer_outputs": [summary(h, rows) for h in captured],
        "prefill_logits_last": floats(hf_logits),
        "greedy": {"ids": greedy.tolist(), "text": processor.tokenizer.decode(greedy, skip_special_tokens=True).strip()},
        "transprune": {},
    }
    depth = len(lm.layers)
    for preset, schedule in SCHEDULES[str(depth)].items():
        no_op, _, _, _ = decoder.prefill(embeds, start, n, {**schedule, "ratios": [1.0] * len(schedule["ratios"])})
        assert torch.equal(no_op, own_logits), "keeping every token must change nothing (spec §8.1)"
        logits, _, stages, first_scores = decoder.prefill(embeds, start, n, schedule)
        check_nesting(stages, n)
        case["transprune"][preset] = {"schedule": schedule, "alpha": 0.5, "direction": "code", "positions": "compact",
                                      "stages": stages, "prefill_logits_last": floats(logits)}
        case["transprune"].setdefault("stage1_normalized_scores", first_scores)
    return case


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


def write_fixture(name, folder, out):
    model = LlavaForConditionalGeneration.from_pretrained(folder).float().eval()
    processor = AutoProcessor.from_pretrained(folder)
    cases = [run_case(model, processor, item) for item in load_cases()]
    fixture = {"model": name, "transformers": transformers.__version__, "torch": torch.__version__, "dtype": "float32 compute, fp16 weights",
               "num_layers": len(parts(model)[2].layers), "cases": cases}
    path = Path(out) / f"{name}.json"
    path.write_text(json.dumps(fixture) + "\n")
    answers = ", ".join(f"{c['question']} -> {c['greedy']['text']!r} (truth {c['answer']!r})" for c in cases)
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB): {answers}", flush=True)


def make_tiny(demo, out):
    """A tiny random LLaVA (8 layers, GQA) with the demo's tokenizer, weights scaled so activations are O(1)."""
    tok = Tokenizer.from_file(str(Path(demo) / "tokenizer.json"))
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
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tiny = out / "tiny-llava"
    make_tiny(args.demo, tiny)
    write_fixture("tiny", tiny, out)
    write_fixture("demo", args.demo, out)


if __name__ == "__main__":
    main()
