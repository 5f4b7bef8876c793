#!/usr/bin/env python3
"""GGUF reference fixtures from llama.cpp's gguf-py and transformers, for the engine's GGUF tests (run without Python).

Writes tests/fixtures/gguf/:
  - quants.gguf + quants-expected.gguf: one small tensor of every supported type (random values quantized by
    gguf-py where it can, random valid blocks for the K types, which gguf-py only dequantizes), and the same
    tensors as F32 as gguf-py's `quants.dequantize` reads them (the bit-for-bit reference).
  - tiny-llama-<type>.gguf: one tiny random Llama (seeded, torch) written as llama.cpp's converter writes it
    (q/k rows permuted for its RoPE layout, byte-level BPE vocabulary with merges, ChatML template), with
    every matrix in <type>; tiny-llama.json: transformers' outputs loading each file (`gguf_file=`,
    dequantized): prompt ids, last-position logits and the greedy answer for a few prompts.
With --smollm PATH (the real SmolLM2-135M-Instruct.Q4_1.gguf; tools/gguf/fetch-smollm2.sh fetches it), also
  - smollm2.json: transformers' token ids for 300 texts (unicode, digits, code, whitespace runs, chat
    prompts), and its greedy answers to 5 text prompts rendered with the file's chat template.

  tools/demo-model/.venv/bin/python tools/demo-model/make_gguf_fixtures.py [--smollm .cache/smollm/...gguf]
"""
import argparse
import json
import random
from pathlib import Path

import gguf
import numpy as np
import torch
from gguf import GGMLQuantizationType as T
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fixtures/gguf"
TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"]
K_TYPES = {"Q4_K", "Q5_K", "Q6_K"}
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TINY = dict(hidden_size=256, intermediate_size=256, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=1,
            rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=512, tie_word_embeddings=True)
PROMPTS = ["What is the capital of France?", "Name three colours.", "1 + 1 = ?"]


def random_blocks(qtype: T, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    """Random but valid K-quant blocks: random quants and sub-scales, small positive fp16 super-scales."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    scale = lambda: rng.uniform(0.0001, 0.001, size=(n_blocks, 1)).astype(np.float16).view(np.uint8)
    if qtype in (T.Q4_K, T.Q5_K):  # d, dmin lead the block
        raw[:, 0:2] = scale()
        raw[:, 2:4] = scale()
    elif qtype == T.Q6_K:  # d ends the block
        raw[:, -2:] = scale()
    return raw


def encode(values: np.ndarray, type_name: str, rng: np.random.Generator) -> tuple[np.ndarray, T]:
    """values (rows, cols) -> the bytes (or floats) gguf-py writes for `type_name`, and its type."""
    qtype = T[type_name]
    if type_name == "F32":
        return values.astype(np.float32), qtype
    if type_name == "F16":
        return values.astype(np.float16), qtype
    if type_name in K_TYPES:
        rows, cols = values.shape
        blocks = random_blocks(qtype, rows * cols // 256, rng)
        return blocks.reshape(rows, -1), qtype
    # uint8 rows in the block layout: gguf-py derives the logical shape from the byte shape.
    return gguf.quants.quantize(values.astype(np.float32), qtype).view(np.uint8).reshape(values.shape[0], -1), qtype


def write_quants(rng: np.random.Generator):
    quant = gguf.GGUFWriter(OUT / "quants.gguf", "test")
    expected = gguf.GGUFWriter(OUT / "quants-expected.gguf", "test")
    for name in TYPES:
        values = rng.normal(0, 1, size=(3, 512)).astype(np.float32)
        data, qtype = encode(values, name, rng)
        quant.add_tensor(name, data, raw_dtype=None if name in ("F32", "F16") else qtype)
        expected.add_tensor(name, gguf.quants.dequantize(data, qtype).astype(np.float32))
    for w in (quant, expected):
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()


def train_tokenizer() -> Tokenizer:
    """A byte-level BPE as GPT-2's (the layout `tokenizer.ggml.model` gpt2 describes), trained on a little text."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    text = [p for p in PROMPTS] + ["The quick brown fox jumps over the lazy dog. " * 4, "Paris is the capital of France.",
                                   "red green blue yellow square circle triangle 0 1 2 3 4 5 6 7 8 9"]
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text * 20, trainer)
    return tok


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf LlamaModel.permute: interleaved RoPE halves -> its layout."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GGUF_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
}


def write_llama(path: Path, model: LlamaForCausalLM, tok: Tokenizer, type_name: str, rng: np.random.Generator):
    cfg = model.config
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny-llama")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(TINY["rope_theta"])
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(0)
    vocab = tok.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in SPECIALS else 1 for t in tokens])
    merges = json.loads(tok.to_str())["model"]["merges"]
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
    w.add_bos_token_id(vocab["<|endoftext|>"])
    w.add_eos_token_id(vocab["<|im_end|>"])
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)

    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    def add(name: str, values: np.ndarray, matrix: bool):
        if not matrix:
            w.add_tensor(name, values.astype(np.float32))
            return
        data, qtype = encode(values, type_name, rng)
        w.add_tensor(name, data, raw_dtype=None if type_name in ("F32", "F16") else qtype)
    # K-type files hold values the model never had: read back what was written, so torch and GGUF agree.
    add("token_embd.weight", state["model.embed_tokens.weight"], True)
    for i in range(cfg.num_hidden_layers):
        for hf, gg in GGUF_NAMES.items():
            values = state[f"model.layers.{i}.{hf}.weight"]
            if hf == "self_attn.q_proj":
                values = permute(values, cfg.num_attention_heads)
            elif hf == "self_attn.k_proj":
                values = permute(values, cfg.num_key_value_heads)
            add(f"blk.{i}.{gg}.weight", values, "layernorm" not in hf)
    add("output_norm.weight", state["model.norm.weight"], False)
    if not cfg.tie_word_embeddings:
        add("output.weight", state["lm_head.weight"], True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def transformers_outputs(path: Path) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    cases = []
    for prompt in PROMPTS:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1].tolist()
            out = model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False, eos_token_id=tokenizer.eos_token_id)
        answer = out[0, len(ids):].tolist()
        cases.append(dict(prompt=prompt, ids=ids, lastLogits=[round(x, 6) for x in logits], answerIds=answer,
                          answer=tokenizer.decode(answer, skip_special_tokens=True)))
    return cases


def smollm_texts(rng: random.Random) -> list[str]:
    """300 texts: prose, unicode, digit runs, code, whitespace runs, and rendered chat prompts."""
    base = [
        "What is the capital of France?", "Hello, world!", "  leading spaces", "trailing spaces   ", "tabs\tand\nnewlines\n\n",
        "3.14159 and 2718281828 and 1,000,000", "def f(x):\n    return x ** 2  # square\n", "if (a && b) { c++; }",
        "Ünïcödé – 日本語のテキスト 🙂 emoji 👍🏽", "Привет, мир", "مرحبا بالعالم", "naïve café résumé", "don't can't I'm we'll they've",
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "    \n\t  \n", "a" * 50, "0123456789" * 3,
        "https://example.com/path?q=1&r=2", "e-mail: someone@example.org", "JSON: {\"k\": [1, 2, 3]}",
    ]
    words = "the a red blue green square circle triangle what is colour shape how many 12 345 6789 ,.;:!? ( ) [ ] 😊 é ß 中".split(" ")
    texts = list(base)
    while len(texts) < 300:
        n = rng.randint(1, 20)
        parts = [rng.choice(words) for _ in range(n)]
        seps = [rng.choice([" ", "  ", "", "\n", "\t", " \n "]) for _ in range(n)]
        texts.append("".join(p + s for p, s in zip(parts, seps)))
    return texts


def smollm_tokenizer(path: Path):
    """transformers' tokenizer from the GGUF, with SmolLM2's digit split restored: transformers has no entry for
    tokenizer.ggml.pre "smollm" and falls back to GPT-2's split, while llama.cpp (llama-vocab.cpp, SMOLLM) and SmolLM2's
    own tokenizer.json split every digit first."""
    from tokenizers import pre_tokenizers as pt
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    plain = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    tokenizer.backend_tokenizer.pre_tokenizer = pt.Sequence(
        [pt.Digits(individual_digits=True), pt.ByteLevel(add_prefix_space=False, use_regex=True)])
    return tokenizer, plain


def smollm_fixture(path: Path) -> dict:
    tokenizer, plain = smollm_tokenizer(path)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    texts = smollm_texts(random.Random(0))
    tokens = [dict(text=t, ids=tokenizer(t, add_special_tokens=True)["input_ids"]) for t in texts]
    for entry in tokens:  # where transformers' own GGUF tokenizer differs (digit runs), its ids too
        unfixed = plain(entry["text"], add_special_tokens=True)["input_ids"]
        if unfixed != entry["ids"]:
            entry["transformersGgufIds"] = unfixed
    print(f"  {sum('transformersGgufIds' in t for t in tokens)} of {len(tokens)} texts split differently without the digit rule")
    prompts = ["What is the capital of France?", "Name a primary colour.", "What is 2 + 3?",
               "Write one word that rhymes with cat.", "Translate 'bonjour' to English."]
    answers = []
    for prompt in prompts:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False)
        answer = out[0, len(ids):].tolist()
        answers.append(dict(prompt=prompt, promptIds=ids, answerIds=answer, answer=tokenizer.decode(answer, skip_special_tokens=True)))
        print(f"  {prompt!r} -> {answers[-1]['answer']!r}")
    return dict(file=path.name, transformers=__import__("transformers").__version__, tokens=tokens, answers=answers)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smollm", help="path of SmolLM2-135M-Instruct.Q4_1.gguf")
    p.add_argument("--skip-tiny", action="store_true", help="only the SmolLM2 fixture")
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.skip_tiny:
        rng = np.random.default_rng(0)
        write_quants(rng)
        tok = train_tokenizer()
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(vocab_size=tok.get_vocab_size(), **{k: v for k, v in TINY.items() if k != "rope_theta"}, rope_parameters={"rope_type": "default", "rope_theta": TINY["rope_theta"]})).eval()
        with torch.no_grad():
            for p_ in model.parameters():
                p_.normal_(0, 0.08)
        fixture = {}
        for type_name in TYPES:
            path = OUT / f"tiny-llama-{type_name.lower()}.gguf"
            write_llama(path, model, tok, type_name, rng)
            fixture[type_name] = transformers_outputs(path)
            print(type_name, [c["answerIds"] for c in fixture[type_name]])
        (OUT / "tiny-llama.json").write_text(json.dumps(fixture) + "\n")
    if args.smollm:
        (OUT / "smollm2.json").write_text(json.dumps(smollm_fixture(Path(args.smollm).resolve())) + "\n")


if __name__ == "__main__":
    main()
