#!/usr/bin/env python3
"""GGUF reference fixtures from llama.cpp's gguf-py and transformers, for the engine's GGUF tests (run without Python).

Writes tests/fixtures/gguf/:
  - quants.gguf + quants-expected.gguf: one small tensor of every supported type (random values quantized by
    gguf-py where it can, random valid blocks for the K types, which gguf-py only dequantizes), and the same
    tensors as F32 as gguf-py's `quants.dequantize` reads them (the bit-for-bit reference).
  - tiny-llava/: tests/fixtures/reference/tiny-llava (a Hugging Face LLaVA-1.5 fixture) as a GGUF pair, the language
    model and its mmproj, as llama.cpp's converters write them (the engine must answer and prune identically from both).
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


LLAVA_TEXT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}{{ \"A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions. \" }}{% endif %}"
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + ' ' }}"
    "{% elif message['role'] == 'user' %}{{ 'USER: ' + message['content'] + ' ' }}"
    "{% else %}{{ 'ASSISTANT: ' + message['content'] + eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def write_llava_pair(hf_dir: Path, out_dir: Path):
    """An existing Hugging Face LLaVA fixture as llama.cpp keeps it: a llama GGUF (sentencepiece-style vocabulary
    with scores, token types and merges; q/k permuted; LLaVA's template written for string contents) and an mmproj
    as convert_image_encoder_to_gguf.py --llava-projector writes it (the unused last CLIP block dropped, fc1 named
    ffn_down and fc2 ffn_up as that script does)."""
    from safetensors.numpy import load_file
    cfg = json.loads((hf_dir / "config.json").read_text())
    t, v = cfg["text_config"], cfg["vision_config"]
    tok = json.loads((hf_dir / "tokenizer.json").read_text())
    state = load_file(str(hf_dir / "model.safetensors"))
    legacy = [("language_model.model.", "model.language_model."), ("language_model.lm_head.", "lm_head."),
              ("vision_tower.", "model.vision_tower."), ("multi_modal_projector.", "model.multi_modal_projector.")]
    def unified(name: str) -> str:  # the llava-hf layout before transformers 4.52 -> the one used below
        for old, new in legacy:
            if name.startswith(old):
                return new + name[len(old):]
        return name
    state = {unified(k): x.astype(np.float32) for k, x in state.items()}
    out_dir.mkdir(parents=True, exist_ok=True)

    w = gguf.GGUFWriter(out_dir / "tiny-llava-f32.gguf", "llama")
    w.add_context_length(t["max_position_embeddings"])
    w.add_embedding_length(t["hidden_size"])
    w.add_block_count(t["num_hidden_layers"])
    w.add_feed_forward_length(t["intermediate_size"])
    w.add_head_count(t["num_attention_heads"])
    w.add_head_count_kv(t["num_key_value_heads"])
    w.add_layer_norm_rms_eps(t["rms_norm_eps"])
    w.add_rope_freq_base(t["rope_parameters"]["rope_theta"])
    w.add_rope_dimension_count(t["head_dim"])
    vocab = tok["model"]["vocab"]
    tokens = [k for k, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    specials = {a["content"] for a in tok["added_tokens"]}
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores([-float(i) for i in range(len(tokens))])
    w.add_token_types([3 if x in specials else 6 if x.startswith("<0x") else 1 for x in tokens])
    w.add_token_merges([" ".join(m) for m in tok["model"]["merges"]])
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_unk_token_id(0)
    w.add_pad_token_id(cfg["pad_token_id"])
    w.add_add_bos_token(True)
    w.add_add_space_prefix(True)
    w.add_chat_template(LLAVA_TEXT_TEMPLATE)
    pre = "model.language_model."
    w.add_tensor("token_embd.weight", state[pre + "embed_tokens.weight"])
    for i in range(t["num_hidden_layers"]):
        for hf, gg in GGUF_NAMES.items():
            x = state[f"{pre}layers.{i}.{hf}.weight"]
            if hf == "self_attn.q_proj":
                x = permute(x, t["num_attention_heads"])
            elif hf == "self_attn.k_proj":
                x = permute(x, t["num_key_value_heads"])
            w.add_tensor(f"blk.{i}.{gg}.weight", x)
    w.add_tensor("output_norm.weight", state[pre + "norm.weight"])
    w.add_tensor("output.weight", state["lm_head.weight"])
    for step in (w.write_header_to_file, w.write_kv_data_to_file, w.write_tensors_to_file, w.close):
        step()

    m = gguf.GGUFWriter(out_dir / "mmproj-tiny-llava-f32.gguf", "clip")
    blocks = v["num_hidden_layers"] - 1  # LLaVA's feature layer -2: the converter drops the last block
    m.add_bool("clip.has_text_encoder", False)
    m.add_bool("clip.has_vision_encoder", True)
    m.add_bool("clip.has_llava_projector", True)
    m.add_string("clip.projector_type", "mlp")
    m.add_uint32("clip.vision.image_size", v["image_size"])
    m.add_uint32("clip.vision.patch_size", v["patch_size"])
    m.add_uint32("clip.vision.embedding_length", v["hidden_size"])
    m.add_uint32("clip.vision.feed_forward_length", v["intermediate_size"])
    m.add_uint32("clip.vision.projection_dim", v["projection_dim"])
    m.add_uint32("clip.vision.attention.head_count", v["num_attention_heads"])
    m.add_float32("clip.vision.attention.layer_norm_epsilon", v["layer_norm_eps"])
    m.add_uint32("clip.vision.block_count", blocks)
    m.add_array("clip.vision.image_mean", [0.48145466, 0.4578275, 0.40821073])
    m.add_array("clip.vision.image_std", [0.26862954, 0.26130258, 0.27577711])
    m.add_bool("clip.use_gelu", False)
    vp = "model.vision_tower."
    prefix = vp + ("vision_model." if vp + "vision_model.pre_layrnorm.weight" in state else "")
    m.add_tensor("mm.0.weight", state["model.multi_modal_projector.linear_1.weight"])
    m.add_tensor("mm.0.bias", state["model.multi_modal_projector.linear_1.bias"])
    m.add_tensor("mm.2.weight", state["model.multi_modal_projector.linear_2.weight"])
    m.add_tensor("mm.2.bias", state["model.multi_modal_projector.linear_2.bias"])
    m.add_tensor("v.class_embd", state[prefix + "embeddings.class_embedding"])
    m.add_tensor("v.patch_embd.weight", state[prefix + "embeddings.patch_embedding.weight"].astype(np.float16))
    m.add_tensor("v.position_embd.weight", state[prefix + "embeddings.position_embedding.weight"])
    m.add_tensor("v.pre_ln.weight", state[prefix + "pre_layrnorm.weight"])
    m.add_tensor("v.pre_ln.bias", state[prefix + "pre_layrnorm.bias"])
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.out_proj": "attn_out", "layer_norm1": "ln1", "layer_norm2": "ln2",
             "mlp.fc1": "ffn_down", "mlp.fc2": "ffn_up"}
    for i in range(blocks):
        for hf, gg in names.items():
            for part in ("weight", "bias"):
                m.add_tensor(f"v.blk.{i}.{gg}.{part}", state[f"{prefix}encoder.layers.{i}.{hf}.{part}"])
    for step in (m.write_header_to_file, m.write_kv_data_to_file, m.write_tensors_to_file, m.close):
        step()


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
        write_llava_pair(ROOT / "tests/fixtures/reference/tiny-llava", OUT / "tiny-llava")
    if args.smollm:
        (OUT / "smollm2.json").write_text(json.dumps(smollm_fixture(Path(args.smollm).resolve())) + "\n")


if __name__ == "__main__":
    main()
