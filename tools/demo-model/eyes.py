"""Stage 2: the eyes. The dense-trained tower and LLaVA's projector trained together so that every visual token is
one of SmolLM2's own word embeddings: each patch an object covers reads its colour, shape or label word by diagonal
stripes, every other patch "." (dense.phrase_slots). The frozen language model then starts from visual tokens it can read like text."""
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common import load_image_uint8, normalize
from dense import PHRASE_WORDS, phrase_slots
from stages import Run, timed_steps
from vision import vision_features

# Cosine logits against the candidate words are scaled by this before the cross-entropy (a temperature of 0.05).
LOGIT_SCALE = 20.0


class Projector(torch.nn.Module):
    """LLaVA-1.5's projector (transformers' LlavaMultiModalProjector): Linear, GELU, Linear."""

    def __init__(self, width_in, width_out):
        super().__init__()
        self.linear_1 = torch.nn.Linear(width_in, width_out)
        self.linear_2 = torch.nn.Linear(width_out, width_out)

    def forward(self, x):
        return self.linear_2(F.gelu(self.linear_1(x)))


def word_ids(tok):
    """SmolLM2 token ids of PHRASE_WORDS: each word's first token as it follows a space in a question (" red",
    " hex"), except where that token is the bare space (digits are tokenized " ", "5"): then the word's own token."""
    def one(word):
        if word == ".":
            return tok.encode(".", add_special_tokens=False)[0]
        spaced = tok.encode(" " + word, add_special_tokens=False)
        return tok.encode(word, add_special_tokens=False)[0] if tok.decode(spaced[:1]) == " " else spaced[0]
    return [one(w) for w in PHRASE_WORDS]


def eyes_loss(tokens, slots, words):
    """MSE to the target word's embedding (relative to the embeddings' mean square) plus a cross-entropy over the
    candidate words by cosine, object slots and background weighted equally (there are ~20 of one, ~550 of the other)."""
    on = slots > 0
    err = (tokens - words[slots]).pow(2).mean(-1) / words.pow(2).mean()
    logits = F.normalize(tokens, dim=-1) @ F.normalize(words, dim=-1).t() * LOGIT_SCALE
    ce = F.cross_entropy(logits[on], slots[on]) + F.cross_entropy(logits[~on], slots[~on])
    return err[on].mean() + err[~on].mean() + ce


def read_words(tokens, words):
    """The nearest candidate word (by cosine) of each visual token."""
    return (F.normalize(tokens, dim=-1) @ F.normalize(words, dim=-1).t()).argmax(-1)


def train_eyes(tower, projector, words, args, scenes, val_scenes):
    """Tower (from the dense stage) and projector on the phrase targets; returns validation word accuracy."""
    groups = [{"params": list(tower.parameters()), "lr_scale": 0.5}, {"params": list(projector.parameters()), "lr_scale": 1.0}]
    optimizer = torch.optim.AdamW(groups, lr=args.eyes_lr, weight_decay=0.0)
    run = Run(args.work, "eyes")
    modules = {"tower": tower, "projector": projector}
    meta = run.load(modules, optimizer)
    images = sorted(scenes)
    rng = random.Random(args.seed + 2 + meta["step"])

    def tokens_of(paths):
        pixels = normalize(torch.stack([load_image_uint8(Path(args.data) / p) for p in paths]))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return projector(vision_features(tower, pixels)).float()

    def make_batch():
        chosen = rng.sample(images, args.vision_batch)
        return chosen, torch.stack([torch.from_numpy(phrase_slots(scenes[p])) for p in chosen])

    tower.train()
    if meta["step"] < args.eyes_steps:
        meta = timed_steps("eyes", run, modules, optimizer, meta, args.eyes_steps, args.vision_batch, args.eyes_lr,
                           make_batch, lambda b: eyes_loss(tokens_of(b[0]), b[1], words), warmup=20)
    tower.eval()
    with torch.no_grad():
        hits = total = misread = 0
        chosen = sorted(val_scenes)[:128]
        for i in range(0, len(chosen), 32):
            slots = torch.stack([torch.from_numpy(phrase_slots(val_scenes[p])) for p in chosen[i:i + 32]])
            said = read_words(tokens_of(chosen[i:i + 32]), words)
            on = slots > 0
            hits, total, misread = hits + (said[on] == slots[on]).sum().item(), total + on.sum().item(), misread + (said[~on] != 0).sum().item()
    metrics = {"word_accuracy": hits / total, "background_misread_per_image": misread / len(chosen)}
    print(f"eyes val: words read right {metrics['word_accuracy']:.3f}, background read as a word {metrics['background_misread_per_image']:.2f} per image",
          flush=True)
    return {"seconds": meta["seconds"], "steps": meta["step"], "val": metrics}
