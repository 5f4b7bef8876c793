#!/usr/bin/env python3
"""Trains the embedded demo model: a small LLaVA-1.5-architecture model for the synthetic VQA task.

Runs on the GPU machine (PyTorch + transformers, no internet); see RUN.md for the exact commands.
Each run trains for --minutes (or until --stop-at) and exports a loadable fp16 checkpoint; pass it
back with --init to continue. The cosine schedule ends with each run; a continued run restarts warm
at the point the earlier runs reached (their share of all training time so far).

  python3 tools/demo-model/train.py --data /tmp/vqa --out /tmp/demo-model [--minutes 6] [--stop-at EPOCH_S] [--init DIR]
"""
import argparse
import copy
import functools
import json
import math
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from torch.utils.data import DataLoader, Dataset
from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                          LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerFast)

from common import (CHAT_TEMPLATE, CLIP_MEAN, CLIP_STD, IMAGE_SIZE, NUM_VISUAL, PATCH, SPECIAL,
                    conversation, encode, load_image_uint8, normalize, read_split, render_chat)

# About 18 M parameters: 36 MB in fp16 (the budget is 40 MB), in 15 MB shards.
VISION = dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=6, num_attention_heads=4,
              image_size=IMAGE_SIZE, patch_size=PATCH, hidden_act="quick_gelu", projection_dim=256)
TEXT = dict(hidden_size=256, intermediate_size=704, num_hidden_layers=16, num_attention_heads=4,
            num_key_value_heads=4, max_position_embeddings=2048, rms_norm_eps=1e-5, hidden_act="silu",
            tie_word_embeddings=False)
VOCAB_SIZE = 768  # 261 special and byte tokens, printable ASCII, and merges for the task's words
SHARD = "15MB"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder with train*.jsonl, val.jsonl and images/ (make_data.sh)")
    p.add_argument("--out", required=True, help="where the fp16 checkpoint is written")
    p.add_argument("--init", help="checkpoint of an earlier run to continue from")
    p.add_argument("--minutes", type=float, default=6.0, help="training time of this run")
    p.add_argument("--stop-at", type=float, default=math.inf, help="stop training by this Unix time, whatever --minutes says")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-steps", type=int, default=300)
    p.add_argument("--workers", type=int, default=12)
    return p.parse_args()


# ---------------------------------------------------------------------------------------------
# Tokenizer and model


def train_tokenizer(train):
    """A Llama-style tokenizer (BPE with byte fallback, Metaspace), trained on the rendered chats."""
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    specials = [SPECIAL[k] for k in ("unk", "bos", "eos", "image", "pad")]
    tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk"], byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials + byte_tokens,
                                  initial_alphabet=[chr(c) for c in range(32, 127)] + ["\n", "▁"], show_progress=False)
    rng = random.Random(0)
    chats = [render_chat(conversation([(q, a) for q, a, _ in qs])) for qs in rng.sample(list(train.values()), min(20000, len(train)))]
    tok.train_from_iterator(chats, trainer)
    tok.post_processor = processors.TemplateProcessing(single=f"{SPECIAL['bos']} $A", pair=f"{SPECIAL['bos']} $A {SPECIAL['bos']} $B",
                                                       special_tokens=[(SPECIAL["bos"], tok.token_to_id(SPECIAL["bos"]))])
    # Byte tokens are ordinary vocabulary (byte fallback), not added tokens matched in raw text.
    spec = json.loads(tok.to_str())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] not in byte_tokens]
    return Tokenizer.from_str(json.dumps(spec))


def build_model(tok, vision=VISION, text=TEXT):
    ids = {k: tok.token_to_id(v) for k, v in SPECIAL.items()}
    text_config = LlamaConfig(vocab_size=tok.get_vocab_size(), bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"], **text)
    config = LlavaConfig(vision_config=CLIPVisionConfig(**vision).to_dict(), text_config=text_config.to_dict(), projector_hidden_act="gelu",
                         vision_feature_layer=-2, vision_feature_select_strategy="default", image_seq_length=NUM_VISUAL)
    config.image_token_id = ids["image"]  # an alias of image_token_index in older transformers
    for key in ("bos", "eos", "pad"):
        setattr(config, f"{key}_token_id", ids[key])
    torch.manual_seed(0)
    return LlavaForConditionalGeneration(config)


def build_processor(tok):
    """The HF processor saved beside the weights: tokenizer files, preprocessor config, chat template."""
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=SPECIAL["bos"], eos_token=SPECIAL["eos"], unk_token=SPECIAL["unk"],
                                   pad_token=SPECIAL["pad"], extra_special_tokens={"image_token": SPECIAL["image"]}, model_max_length=2048)
    fast.chat_template = CHAT_TEMPLATE
    images = CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, do_center_crop=True,
                                resample=3, image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD), do_convert_rgb=True)
    return LlavaProcessor(image_processor=images, tokenizer=fast, patch_size=PATCH, vision_feature_select_strategy="default",
                          num_additional_image_tokens=1, image_token=SPECIAL["image"], chat_template=CHAT_TEMPLATE)


# ---------------------------------------------------------------------------------------------
# Data


class Conversations(Dataset):
    """One sample per image: a random subset of its questions as a multi-turn chat (loss on answers only)."""

    def __init__(self, by_image, tok, all_turns=False):
        self.images = list(by_image.items())
        self.tok = tok
        self.all_turns = all_turns

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        path, questions = self.images[i]
        qa = [(q, a) for q, a, _ in questions]
        if not self.all_turns:
            qa = random.sample(qa, random.randint(1, len(qa)))
        ids, labels = encode(self.tok, qa)
        return load_image_uint8(path), torch.tensor(ids), torch.tensor(labels), questions[0][2]


def collate(batch, pad_id):
    images, ids, labels, families = zip(*batch)
    length = max(len(x) for x in ids)
    pad = lambda xs, value: torch.stack([F.pad(x, (0, length - len(x)), value=value) for x in xs])
    mask = pad([torch.ones_like(x) for x in ids], 0)
    return torch.stack(images), pad(ids, pad_id), pad(labels, -100), mask, list(families)


def loader(by_image, tok, batch, workers, shuffle, all_turns=False):
    pad_id = tok.token_to_id(SPECIAL["pad"])
    return DataLoader(Conversations(by_image, tok, all_turns), batch_size=batch, shuffle=shuffle, num_workers=workers,
                      collate_fn=functools.partial(collate, pad_id=pad_id), drop_last=shuffle, persistent_workers=shuffle, pin_memory=True)


# ---------------------------------------------------------------------------------------------
# Training


def forward_loss(model, images, ids, labels, mask):
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = model(input_ids=ids, pixel_values=normalize(images), attention_mask=mask).logits
    return F.cross_entropy(logits[:, :-1].float().flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100), logits


def lr_at(step, progress, args):
    """Linear warm-up over the first steps of this run, then cosine decay over the total training time."""
    warm = min(1.0, (step + 1) / args.warmup_steps)
    return args.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@torch.no_grad()
def evaluate(model, val, tok, workers):
    """Greedy exact match, computed teacher-forced: greedy decoding yields the answer and </s> exactly
    when every answer token is the argmax given the tokens before it."""
    model.eval()
    correct, total = {}, {}
    for images, ids, labels, mask, families in loader(val, tok, 64, workers, shuffle=False, all_turns=True):
        images, ids, labels, mask = (t.cuda(non_blocking=True) for t in (images, ids, labels, mask))
        _, logits = forward_loss(model, images, ids, labels, mask)
        target = labels[:, 1:]
        hit = ((logits[:, :-1].argmax(-1) == target) | (target == -100)).all(dim=1)
        for family, ok in zip(families, hit.tolist()):
            correct[family] = correct.get(family, 0) + ok
            total[family] = total.get(family, 0) + 1
    model.train()
    per_family = {f: correct[f] / total[f] for f in sorted(total)}
    return sum(correct.values()) / sum(total.values()), per_family


def train(model, tok, args, state):
    train_split = read_split(args.data, "train")
    val = read_split(args.data, "val")
    print(f"train: {len(train_split)} images, {sum(map(len, train_split.values()))} questions; val: {len(val)}", flush=True)
    model.cuda().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.05, fused=True)
    batches = loader(train_split, tok, args.batch, args.workers, shuffle=True)
    start, step, done = time.time(), 0, False
    budget = max(0.0, min(args.minutes * 60, args.stop_at - start))
    total = state["trained_seconds"] + budget
    while not done:
        for images, ids, labels, mask, _ in batches:
            elapsed = time.time() - start
            if elapsed >= budget:
                done = True
                break
            progress = (state["trained_seconds"] + elapsed) / total
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, progress, args)
            images, ids, labels, mask = (t.cuda(non_blocking=True) for t in (images, ids, labels, mask))
            loss, _ = forward_loss(model, images, ids, labels, mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            if step % 100 == 0:
                print(f"step {state['steps'] + step} loss {loss.item():.4f} lr {optimizer.param_groups[0]['lr']:.2e} "
                      f"{step * args.batch / elapsed:.0f} samples/s progress {progress:.1%}", flush=True)
    state["trained_seconds"] += time.time() - start
    state["steps"] += step
    state["val_accuracy"], state["val_per_family"] = evaluate(model, val, tok, args.workers)
    print(f"val exact match {state['val_accuracy']:.3f} " + " ".join(f"{f} {a:.3f}" for f, a in state["val_per_family"].items()), flush=True)


# ---------------------------------------------------------------------------------------------
# Export


def save_checkpoint(model, processor, out):
    """fp16 safetensors in shards of at most 15 MB, with tokenizer, preprocessor config and chat template."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    copy.deepcopy(model).cpu().half().save_pretrained(out, max_shard_size=SHARD)
    processor.save_pretrained(out)
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    engine_compatible_config(out / "config.json")


def export(model, processor, out, state, args):
    out = Path(out)
    save_checkpoint(model, processor, out)
    (out / "train_state.json").write_text(json.dumps(state, indent=2) + "\n")
    write_model_card(out, model, state, args)
    sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    print(f"exported {out}: {sum(sizes.values()) / 1e6:.1f} MB; largest file {max(sizes.values()) / 1e6:.1f} MB", flush=True)
    assert sum(sizes.values()) <= 40e6 and max(sizes.values()) <= 16e6, "over the 40 MB / 16 MB budget"


def engine_compatible_config(path):
    """Spell keys the way every reader knows them (newer transformers renamed a few)."""
    config = json.loads(path.read_text())
    config.setdefault("image_token_index", config.get("image_token_id"))
    text = config["text_config"]
    rope = text.get("rope_parameters") or {}
    text.setdefault("rope_theta", rope.get("rope_theta", 10000.0))
    path.write_text(json.dumps(config, indent=2) + "\n")


def write_model_card(out, model, state, args):
    params = sum(p.numel() for p in model.parameters())
    per_family = ", ".join(f"{f} {a:.1%}" for f, a in state["val_per_family"].items())
    card = f"""# TransPrune Studio demo model

A small vision-language model with the LLaVA-1.5 architecture, trained from scratch for the app's
built-in synthetic visual question answering task, so that the app answers questions offline on
first launch. It is a demonstration model: it knows coloured shapes on textured backgrounds, not
the world.

## Architecture ({params / 1e6:.1f} M parameters, fp16 safetensors)

- `LlavaForConditionalGeneration`: CLIP vision tower at {IMAGE_SIZE} px, patch {PATCH} ({NUM_VISUAL} visual tokens),
  {VISION['num_hidden_layers']} layers, hidden {VISION['hidden_size']}, quick_gelu; `vision_feature_layer` -2, CLS dropped ("default").
- MLP projector (Linear, GELU, Linear).
- Llama decoder: {TEXT['num_hidden_layers']} layers, hidden {TEXT['hidden_size']}, {TEXT['num_attention_heads']} heads, SwiGLU {TEXT['intermediate_size']}, RoPE theta 10000.
- Tokenizer: BPE with byte fallback ({VOCAB_SIZE} + special tokens), trained on the task's chats with `tokenizers`.
- Chat template: LLaVA-1.5 (vicuna_v1) format with its system prompt:
  `<system> USER: <image>\\n<question> ASSISTANT: <answer></s>`.

## Data

The synthetic VQA generator in `src/engine/data` (`npm run cli -- data`): scenes of 1-8 objects
(6 shapes, 7 colours, 3 sizes, some with a digit or letter label) on noise, stripe, gradient and
checker backgrounds; one-word answers in six question families (colour, shape, count, exist
(balanced yes/no, POPE-style absent objects), relative position, label). Training used the
`train` split, validation the `val` split; the `test` split is `tests/fixtures/vqa`.

## Training

`tools/demo-model/train.py` (commands in `tools/demo-model/RUN.md`): AdamW (lr {args.lr}, betas 0.9/0.98,
weight decay 0.05), batch {args.batch}, bf16 autocast, warm-up then cosine decay;
{state['steps']} steps in {state['trained_seconds'] / 60:.1f} minutes on one GPU.

## Accuracy

- Exact match on the test split, unpruned, measured by the app's engine: **not yet measured**
  (`npm run eval -- --model demo --methods none --split test`).
- Validation split, measured by train.py in PyTorch (greedy, teacher-forced): {state['val_accuracy']:.1%}
  ({per_family}).
"""
    (Path(out) / "README.md").write_text(card)


def main():
    args = parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    if args.init:
        model = LlavaForConditionalGeneration.from_pretrained(args.init).float()
        tok = Tokenizer.from_file(str(Path(args.init) / "tokenizer.json"))
        state = json.loads((Path(args.init) / "train_state.json").read_text())
    else:
        tok = train_tokenizer(read_split(args.data, "train"))
        model = build_model(tok)
        state = {"trained_seconds": 0.0, "steps": 0}
    processor = build_processor(tok)  # built before training, so an API mismatch fails fast
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, vocab {tok.get_vocab_size()}", flush=True)
    train(model, tok, args, state)
    export(model, processor, args.out, state, args)


if __name__ == "__main__":
    main()
