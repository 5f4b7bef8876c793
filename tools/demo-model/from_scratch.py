#!/usr/bin/env python3
"""Trains the embedded demo model on a 2-core CPU: a small LLaVA-1.5-architecture model for the
app's synthetic VQA task, from nothing to the shipped fp16 checkpoint in one command.

Stages (each resumable: state and checkpoints live in --work, outside git):
  1. tokenizer  BPE with byte fallback, punctuation split from words, trained on the rendered chats.
  2. vision     the CLIP tower alone, with dense per-patch targets the generator's scene graphs give
                (shape, colour, size, label, object centre, counts); only the layers up to
                `vision_feature_layer` -2 run, the last layer is never used by LLaVA.
  3. cache      the frozen tower's features of every training and validation image, bf16 on disk.
  4. text       the decoder alone on text chats about the scenes' descriptions ("a blue square, a red
                circle.\nWhat color is the square?"): it learns to look things up, as a pretrained LLM has.
  5. language   projector + Llama decoder on the cached features, all of an image's questions as
                one multi-turn chat (a random subset, in random order), loss on the answers only;
                validation exact match per family at intervals, the best checkpoint kept.
  6. export     fp16 safetensors in shards, tokenizer, processor config, chat template, model card.

  tools/demo-model/.venv/bin/python tools/demo-model/train.py --data DIR --work DIR --out resources/demo-model
"""
import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers.models.llama.modeling_llama import rotate_half
from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                          LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerFast)

from common import (CHAT_TEMPLATE, CLIP_MEAN, CLIP_STD, IMAGE_SIZE, NUM_VISUAL, PATCH, SPECIAL,
                    conversation, encode, load_image_uint8, normalize, read_split, render_chat)
from dense import (COLOURS, DENSE_HEADS, LABELS, SHAPES, dense_loss, dense_metrics, dense_targets, describe, near_object, object_patches, read_scenes,
                   referents)

# About 13 M parameters, 26 MB in fp16 (the budget is 40 MB), in shards of at most 15 MB.
VISION = dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=5, num_attention_heads=4,
              image_size=IMAGE_SIZE, patch_size=PATCH, hidden_act="quick_gelu", projection_dim=256)
TEXT = dict(hidden_size=192, intermediate_size=512, num_hidden_layers=12, num_attention_heads=4,
            num_key_value_heads=4, max_position_embeddings=2048, rms_norm_eps=1e-5, hidden_act="silu",
            tie_word_embeddings=False)
VOCAB_SIZE = 768  # 261 special and byte tokens, printable ASCII, and merges for the task's words
SHARD = "15MB"
CHECKPOINT_EVERY_S = 300


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="train*.jsonl, val*.jsonl, scenes-*.jsonl and images/ (make_data.sh)")
    p.add_argument("--work", required=True, help="resumable state: checkpoints, optimizer, feature cache")
    p.add_argument("--out", required=True, help="where the fp16 checkpoint is written")
    p.add_argument("--vision-samples", type=int, default=16000, help="images seen by the dense vision stage")
    p.add_argument("--text-samples", type=int, default=64000, help="text chats seen by the text stage")
    p.add_argument("--text-batch", type=int, default=64)
    p.add_argument("--text-lr", type=float, default=1e-3)
    p.add_argument("--language-samples", type=int, default=30000, help="chats seen by the language stage")
    p.add_argument("--cache-images", type=int, default=None, help="training images whose features are cached (default: all)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--vision-lr", type=float, default=2e-3)
    p.add_argument("--language-lr", type=float, default=1.5e-3)
    p.add_argument("--align-share", type=float, default=0.2,
                   help="share of the language steps that train only the projector, the text-trained decoder frozen (LLaVA's stage 1)")
    p.add_argument("--background-keep", type=float, default=0.15,
                   help="share of the background visual tokens a chat keeps before --full-after (object tokens are all kept)")
    p.add_argument("--full-after", type=float, default=0.75, help="share of the language steps after which chats keep every visual token")
    p.add_argument("--look-weight", type=float, default=0.5, help="weight of the loss that teaches answers where to look (LookProbe)")
    p.add_argument("--keep-weight", type=float, default=0.3, help="weight of the dense loss on the projected visual tokens")
    p.add_argument("--read-layer", type=int, default=1, help="the decoder layer whose heads 0 and 1 learn to read the question's attribute words")
    p.add_argument("--find-layer", type=int, default=3, help="the decoder layer whose heads 0 and 1 learn to find the named objects")
    p.add_argument("--val-every", type=int, default=200, help="language steps between validation runs")
    p.add_argument("--val-items", type=int, default=300, help="validation questions per interval run (all at the end)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


# ---------------------------------------------------------------------------------------------
# Tokenizer, model, processor


def train_tokenizer(chats):
    """A Llama-style tokenizer (BPE with byte fallback, Metaspace), trained on the rendered chats.

    Punctuation is split from words, so "square" is one id in "the square?", "a blue square," and the
    answer "square": merged ("▁square?", "▁square,") each spelling would be a separate embedding the
    decoder must learn to match, and it does not learn that lookup in the time there is."""
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    specials = [SPECIAL[k] for k in ("unk", "bos", "eos", "image", "pad")]
    tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk"], byte_fallback=True, fuse_unk=True))
    # Metaspace before Punctuation, and "contiguous": the JavaScript tokenizers library reads this
    # sequence to the same pieces (its Metaspace does not split and its Punctuation groups runs).
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
                                                 pre_tokenizers.Punctuation("contiguous")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials + byte_tokens,
                                  initial_alphabet=[chr(c) for c in range(32, 127)] + ["\n", "▁"], show_progress=False)
    tok.train_from_iterator(chats, trainer)
    tok.post_processor = processors.TemplateProcessing(single=f"{SPECIAL['bos']} $A", pair=f"{SPECIAL['bos']} $A {SPECIAL['bos']} $B",
                                                       special_tokens=[(SPECIAL["bos"], tok.token_to_id(SPECIAL["bos"]))])
    # Byte tokens are ordinary vocabulary (byte fallback), not added tokens matched in raw text.
    spec = json.loads(tok.to_str())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] not in byte_tokens]
    return Tokenizer.from_str(json.dumps(spec))


def tokenizer_corpus(train_qa, text_train, rng=None):
    """Rendered image chats and text chats (with descriptions) for the tokenizer to learn its merges from."""
    rng = rng or random.Random(0)
    chats = [render_chat(conversation([(q, a) for q, a, _ in qs])) for qs in rng.sample(list(train_qa.values()), min(20000, len(train_qa)))]
    return chats + [render_chat(conversation(text_chat(objects, qa, rng), image=False)) for objects, qa in rng.sample(text_train, min(5000, len(text_train)))]


def build_model(tok, vision=VISION, text=TEXT, seed=0):
    ids = {k: tok.token_to_id(v) for k, v in SPECIAL.items()}
    text_config = LlamaConfig(vocab_size=tok.get_vocab_size(), bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"], **text)
    config = LlavaConfig(vision_config=CLIPVisionConfig(**vision).to_dict(), text_config=text_config.to_dict(), projector_hidden_act="gelu",
                         vision_feature_layer=-2, vision_feature_select_strategy="default", image_seq_length=NUM_VISUAL)
    config.image_token_id = ids["image"]  # an alias of image_token_index in older transformers
    for key in ("bos", "eos", "pad"):
        setattr(config, f"{key}_token_id", ids[key])
    torch.manual_seed(seed)
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


def vision_features(tower, pixels):
    """The tower's hidden states at vision_feature_layer -2 without the CLS token, as LLaVA selects them.
    Runs only the layers those states depend on (the last layer's output is never used)."""
    vm = getattr(tower, "vision_model", tower)  # transformers 5 flattened CLIPVisionModel
    h = vm.pre_layrnorm(vm.embeddings(pixels))
    for layer in vm.encoder.layers[:-1]:
        h = layer(h, None)
    return h[:, 1:]


def project_and_embed(model, features, ids):
    """inputs_embeds with the projected visual features in place of the <image> tokens (LLaVA's merge)."""
    core = model.model
    embeds = core.get_input_embeddings()(ids)
    visual = core.multi_modal_projector(features.float()).to(embeds.dtype)
    mask = (ids == model.config.image_token_id).unsqueeze(-1).expand_as(embeds)
    return embeds.masked_scatter(mask, visual)


def language_logits(model, features, ids, mask, positions):
    out = model.model.language_model(inputs_embeds=project_and_embed(model, features, ids), attention_mask=mask, position_ids=positions)
    return model.lm_head(out.last_hidden_state)


# ---------------------------------------------------------------------------------------------
# Training loop helpers: resumable state, schedules, progress


class Run:
    """Resumable state of one stage: model/optimizer checkpoint in work/<stage>.pt, written atomically."""

    def __init__(self, work, stage):
        self.path = Path(work) / f"{stage}.pt"
        self.stage = stage

    def load(self, model_parts, optimizer):
        if not self.path.exists():
            return {"step": 0, "seconds": 0.0, "best": None}
        saved = torch.load(self.path, weights_only=False)
        for name, module in model_parts.items():
            module.load_state_dict(saved["modules"][name])
        optimizer.load_state_dict(saved["optimizer"])
        random.setstate(saved["py_rng"])
        torch.set_rng_state(saved["torch_rng"])
        print(f"{self.stage}: resumed at step {saved['meta']['step']}", flush=True)
        return saved["meta"]

    def save(self, model_parts, optimizer, meta):
        tmp = self.path.with_suffix(".tmp")
        torch.save({"modules": {n: m.state_dict() for n, m in model_parts.items()}, "optimizer": optimizer.state_dict(),
                    "py_rng": random.getstate(), "torch_rng": torch.get_rng_state(), "meta": meta}, tmp)
        tmp.replace(self.path)


def cosine_lr(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup)))))


def progress_line(stage, step, steps, batch, seconds, started_seconds, loss):
    rate = (step * batch - started_seconds[0]) / max(1e-9, seconds - started_seconds[1])
    eta = (steps - step) * batch / max(rate, 1e-9)
    return f"{stage} step {step}/{steps} {rate:.1f} samples/s loss {loss:.4f} eta {eta / 60:.1f} min"


def timed_steps(stage, run, parts_, optimizer, meta, steps, batch, peak_lr, make_batch, step_loss, after_step=None):
    """The shared loop: lr schedule, step, progress every 20 steps, a checkpoint every 5 minutes."""
    start = time.time() - meta["seconds"]
    resumed = (meta["step"] * batch, meta["seconds"])
    last_save = time.time()
    while meta["step"] < steps:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(meta["step"], steps, peak_lr, warmup=min(100, steps // 10))
        loss = step_loss(make_batch())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)
        optimizer.step()
        meta["step"] += 1
        meta["seconds"] = time.time() - start
        if meta["step"] % 20 == 0 or meta["step"] == steps:
            print(progress_line(stage, meta["step"], steps, batch, meta["seconds"], resumed, loss.item()), flush=True)
        if after_step:
            after_step(meta)
        if time.time() - last_save > CHECKPOINT_EVERY_S or meta["step"] == steps:
            run.save(parts_, optimizer, meta)
            last_save = time.time()
    return meta


# ---------------------------------------------------------------------------------------------
# Stage 2: the vision tower with dense per-patch targets


def train_vision(model, args, scenes, val_scenes):
    tower = model.model.vision_tower
    head = torch.nn.Linear(VISION["hidden_size"], sum(DENSE_HEADS.values()))
    params = list(tower.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.vision_lr, betas=(0.9, 0.98), weight_decay=0.05)
    run = Run(args.work, "vision")
    parts_ = {"tower": tower, "head": head}
    meta = run.load(parts_, optimizer)
    steps = args.vision_samples // args.batch
    images = sorted(scenes)
    rng = random.Random(args.seed + meta["step"])

    def make_batch():
        chosen = rng.sample(images, args.batch)
        pixels = torch.stack([load_image_uint8(Path(args.data) / p) for p in chosen])
        return normalize(pixels), dense_targets([scenes[p] for p in chosen])

    def step_loss(batch):
        pixels, targets = batch
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = head(vision_features(tower, pixels))
        return dense_loss(out.float(), targets)

    tower.train()
    if meta["step"] < steps:
        meta = timed_steps("vision", run, parts_, optimizer, meta, steps, args.batch, args.vision_lr, make_batch, step_loss)
    tower.eval()
    with torch.no_grad():
        chosen = sorted(val_scenes)[:192]
        outs, targets = [], []
        for i in range(0, len(chosen), 32):
            part = chosen[i:i + 32]
            pixels = normalize(torch.stack([load_image_uint8(Path(args.data) / p) for p in part]))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                outs.append(head(vision_features(tower, pixels)).float())
            targets.append(dense_targets([val_scenes[p] for p in part]))
        metrics = dense_metrics(torch.cat(outs), {k: torch.cat([t[k] for t in targets]) for k in targets[0]})
    print("vision val (per-patch accuracy): " + " ".join(f"{k} {v:.3f}" for k, v in metrics.items()), flush=True)
    return {"seconds": meta["seconds"], "steps": meta["step"], "val": metrics}


# ---------------------------------------------------------------------------------------------
# Stage 3: the frozen tower's features, cached


def cache_features(model, args, paths, name):
    """features[i] = the tower's [576, hidden] features of paths[i], bf16 as int16 in a memmap."""
    file = Path(args.work) / f"features-{name}.bin"
    done_file = file.with_suffix(".done")
    shape = (len(paths), NUM_VISUAL, VISION["hidden_size"])
    done = int(done_file.read_text()) if done_file.exists() else 0
    store = np.memmap(file, dtype=np.int16, mode="r+" if file.exists() else "w+", shape=shape)
    tower = model.model.vision_tower.eval()
    start, chunk = time.time(), 32
    with torch.no_grad():
        for i in range(done, len(paths), chunk):
            pixels = normalize(torch.stack([load_image_uint8(Path(args.data) / p) for p in paths[i:i + chunk]]))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                feats = vision_features(tower, pixels).to(torch.bfloat16)
            store[i:i + len(feats)] = feats.view(torch.int16).numpy()
            if (i // chunk) % 20 == 19 or i + chunk >= len(paths):
                store.flush()
                done_file.write_text(str(i + len(feats)))
                rate = (i + len(feats) - done) / (time.time() - start)
                print(f"cache {name} {i + len(feats)}/{len(paths)} {rate:.1f} images/s eta {(len(paths) - i - len(feats)) / rate / 60:.1f} min", flush=True)
    return store


def cached(store, index):
    return torch.from_numpy(np.array(store[index])).view(torch.bfloat16)


class Standardize:
    """Per-channel standardization of the cached features for the language stage, folded into the
    projector's first Linear at export, so the shipped model is plain LLaVA on raw features.

    Why: CLIP's pre-layernorm residual stream at layer -2 is dominated by one shared direction (norm
    about 38, per-token variation about 12), so projected visual tokens start out nearly identical,
    attention cannot tell them apart and the decoder learns only the answer prior. Standardized
    features start it where the objects differ."""

    def __init__(self, store, images=512):
        sample = torch.cat([cached(store, i).float() for i in range(0, len(store), max(1, len(store) // images))])
        self.mean, self.std = sample.mean(0), sample.std(0).clamp_min(1e-3)

    def __call__(self, store, index):
        return (cached(store, index).float() - self.mean) / self.std

    def fold_into(self, projector):
        """linear_1(standardize(f)) == linear_1'(f) with W' = W / std (per input channel), b' = b - W (mean / std)."""
        linear = projector.linear_1
        probe = self.mean + self.std * torch.randn(8, len(self.mean))
        with torch.no_grad():
            before = projector((probe - self.mean) / self.std)
            linear.bias -= linear.weight @ (self.mean / self.std)
            linear.weight /= self.std
            assert torch.allclose(projector(probe), before, rtol=1e-4, atol=1e-4), "folding changed the projector"


# ---------------------------------------------------------------------------------------------
# Stage 4: the decoder alone, on text descriptions of the scenes

# A description has no positions, so the text stage asks every family but position.
TEXT_FAMILIES = ("colour", "shape", "label", "exist", "count")


def text_chat(objects, qa, rng):
    """The chat about a scene with its description in place of the image: "a blue square, ...\nWhat color is the square?"."""
    (question, answer), *rest = qa
    return [(f"{describe(objects, rng)}\n{question}", answer), *rest]


def text_logits(model, ids, mask, positions):
    out = model.model.language_model(input_ids=ids, attention_mask=mask, position_ids=positions)
    return model.lm_head(out.last_hidden_state)


def train_text(model, tok, args, train_items, val_items, done=None):
    """train_items: [(objects, [(q, a)])], val_items: [(objects, q, a, family)]. Trains the decoder, its
    embeddings and the head to answer from descriptions: the content lookup ("which object is the
    square, what is its colour") a decoder trained from nothing takes long to find among 576 visual
    tokens is learned here on sequences a sixth as long, as LLaVA starts from a pretrained LLM.
    done: this stage's report from an earlier run, returned as it is once the weights are loaded."""
    lm = model.model.language_model
    optimizer = torch.optim.AdamW(list(lm.parameters()) + list(model.lm_head.parameters()), lr=args.text_lr, betas=(0.9, 0.98), weight_decay=0.05)
    run = Run(args.work, "text")
    parts_ = {"decoder": lm, "lm_head": model.lm_head}
    meta = run.load(parts_, optimizer)
    steps = args.text_samples // args.text_batch
    if done and meta["step"] >= steps:
        return done
    rng = random.Random(args.seed + 2 + meta["step"])
    pad_id = tok.token_to_id(SPECIAL["pad"])
    quick_val = balanced(val_items, args.val_items, args.seed)

    def rows(chats):
        encoded = [encode(tok, qa, image=False) for qa in chats]
        return pad_rows([(ids, labels, list(range(len(ids)))) for ids, labels in encoded], pad_id)

    def make_batch():
        return rows([text_chat(objects, some_turns(qa, rng), rng) for objects, qa in rng.sample(train_items, args.text_batch)])

    def step_loss(batch):
        ids, labels, mask, positions = batch
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = text_logits(model, ids, mask, positions)
        return F.cross_entropy(logits[:, :-1].float().flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)

    def evaluate_text(items):
        def logits_of(part):
            ids, labels, mask, positions = rows([text_chat(objects, [(q, a)], random.Random(i)) for i, (objects, q, a, _) in enumerate(part)])
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return text_logits(model, ids, mask, positions), labels
        return exact_match(model, items, logits_of, chunk=64)

    def after_step(meta):
        if meta["step"] % args.val_every == 0 or meta["step"] == steps:
            accuracy, per_family = evaluate_text(quick_val)
            print(f"text step {meta['step']} val exact match {accuracy:.3f} ({len(quick_val)} items): {family_line(per_family)}", flush=True)

    model.train()
    if meta["step"] < steps:
        meta = timed_steps("text", run, parts_, optimizer, meta, steps, args.text_batch, args.text_lr, make_batch, step_loss, after_step)
    accuracy, per_family = evaluate_text(val_items)
    print(f"text stage: val exact match {accuracy:.3f} over {len(val_items)} items: {family_line(per_family)}", flush=True)
    return {"seconds": meta["seconds"], "steps": meta["step"], "val_accuracy": accuracy, "val_per_family": per_family}


# ---------------------------------------------------------------------------------------------
# Stage 5: projector + decoder on cached features


def chat_batch(tok, samples, pad_id, words=frozenset()):
    """samples: [(features [576, D], [(q, a)], kept, objects)] -> features [visual tokens of the batch, D], ids,
    labels, mask, positions (right-padded), and where each answer should look (`look_targets`).
    With `kept` (ascending grid indices; None = all) only those visual tokens are in the chat, each at its
    position in the full sequence, as pruning leaves them. objects (the scene graph, or None) give the
    look targets: [(row, query index, head, key indices)], the visual tokens of the objects each question
    names, for the query that predicts the answer's first token; head 0 looks at the first object named,
    head 1 at the last (a position question names two)."""
    image_id = tok.token_to_id(SPECIAL["image"])
    rows, look = [], []
    for row, (features, qa, kept, objects) in enumerate(samples):
        ids, labels = encode(tok, qa)
        s = ids.index(image_id)
        grid = list(range(NUM_VISUAL)) if kept is None else [int(k) for k in kept]
        positions = list(range(len(ids)))
        if kept is not None:
            positions = [*range(s), *(s + g for g in grid), *range(s + NUM_VISUAL, len(ids))]
            ids, labels, features = [ids[i] for i in positions], [labels[i] for i in positions], features[torch.as_tensor(kept)]
        if objects is not None:
            look += look_targets(row, qa, ids, labels, s, np.asarray(grid), objects, words)
        rows.append((features, ids, labels, positions))
    return torch.cat([f for f, _, _, _ in rows]), *pad_rows([r[1:] for r in rows], pad_id), look


def some_turns(qa, rng):
    """Half the chats ask every question of the image, half a random subset (single turns included), in random order."""
    return rng.sample(qa, len(qa) if rng.random() < 0.5 else rng.randint(1, len(qa)))


def pad_rows(rows, pad_id):
    """[(ids, labels, positions)] -> right-padded ids, labels, attention mask, positions."""
    length = max(len(ids) for ids, _, _ in rows)
    ids = torch.full((len(rows), length), pad_id)
    labels = torch.full((len(rows), length), -100)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    positions = torch.arange(length).repeat(len(rows), 1)
    for row, (i, l, p) in enumerate(rows):
        ids[row, :len(i)], labels[row, :len(l)], mask[row, :len(i)], positions[row, :len(p)] = torch.tensor(i), torch.tensor(l), 1, torch.tensor(p)
    return ids, labels, mask, positions


def look_targets(row, qa, ids, labels, image_start, grid, objects, words):
    """[(row, query, layer role, head, keys)] for each answer's first token: in the "read" layer, heads 0 and 1
    look at the question's colour and shape words; in the "find" layer, head 0 at the patches of the first
    object named, head 1 at the last (a position question names two)."""
    answer_starts = [t for t in range(1, len(labels)) if labels[t] != -100 and labels[t - 1] == -100]
    targets, question_start = [], image_start + len(grid)
    for (question, _), start in zip(qa, answer_starts):
        query = start - 1
        read = [t for t in range(question_start, query) if ids[t] in words]
        if read:
            targets += [(row, query, "read", head, np.asarray(read)) for head in (0, 1)]
        named = referents(question, objects)
        for head, group in ((0, named[0]), (1, named[-1])):
            near = np.zeros(NUM_VISUAL, dtype=bool)
            for o in group:
                near |= near_object(o, 1.0)
            keys = image_start + np.flatnonzero(near[grid])
            if len(keys):
                targets.append((row, query, "find", head, keys))
        question_start = start
    return targets


def attribute_words(tok):
    """Ids of the tokens that spell a colour or a shape (with or without a plural s or a question mark)."""
    names = COLOURS + SHAPES
    return {i for token, i in tok.get_vocab().items() if any(n in token for n in names)}


class LookProbe:
    """Where given queries of one decoder layer attend, recomputed from the layer's attention inputs (a
    forward pre-hook), so a loss can teach the answer's query to find the objects its question names:
    the step from "which object" to "attend to its patches" that a decoder trained from nothing finds
    only after a long plateau at the answer prior."""

    def __init__(self, model, layer):
        self.attn = model.model.language_model.layers[layer].self_attn
        self.attn.register_forward_pre_hook(self._capture, with_kwargs=True)
        self.inputs = None

    def _capture(self, _module, args, kwargs):
        self.inputs = (kwargs["hidden_states"] if "hidden_states" in kwargs else args[0], kwargs["position_embeddings"])

    def loss(self, targets, mask):
        """Mean over targets of -log(attention mass on the target keys)."""
        hidden, (cos, sin) = self.inputs
        attn, d = self.attn, self.attn.head_dim
        rows = torch.tensor([t[0] for t in targets])
        queries = torch.tensor([t[1] for t in targets])
        heads = torch.tensor([t[3] for t in targets])
        rotate = lambda x, c, s: x * c + rotate_half(x) * s
        q = attn.q_proj(hidden[rows, queries]).float().view(len(targets), -1, d)[torch.arange(len(targets)), heads]
        q = rotate(q, cos[rows, queries].float(), sin[rows, queries].float())
        k = attn.k_proj(hidden).float().view(*hidden.shape[:2], -1, d)  # [B, T, kv heads, d]
        k = k[rows, :, heads // attn.num_key_value_groups]  # [N, T, d]
        k = rotate(k, cos[rows].float(), sin[rows].float())
        scores = torch.einsum("nd,ntd->nt", q, k) * attn.scaling
        keys = torch.arange(hidden.shape[1])
        allowed = (keys[None] <= queries[:, None]) & mask[rows].bool()
        log_p = scores.masked_fill(~allowed, float("-inf")).log_softmax(-1)
        on_target = torch.zeros_like(allowed)
        for n, (*_, target_keys) in enumerate(targets):
            on_target[n, torch.as_tensor(target_keys)] = True
        return -log_p.masked_fill(~on_target, float("-inf")).logsumexp(-1).mean()


def single_token(tok, word):
    (token,) = tok.encode(f" {word}", add_special_tokens=False).ids  # every attribute word is one token
    return token


class KeepHeads(torch.nn.Module):
    """The vision stage's dense heads, on the projected visual tokens as the decoder's RMSNorm sees them.
    Shape, colour and label score against the decoder's own (detached) embeddings of those words, so a
    blue square's tokens are pulled towards "▁blue" and "▁square": the visual tokens start out looking
    like the words of the descriptions the text stage taught the decoder to look things up in."""

    def __init__(self, tok):
        super().__init__()
        self.linear = torch.nn.Linear(TEXT["hidden_size"], sum(DENSE_HEADS.values()))
        self.scale = torch.nn.Parameter(torch.tensor(1.0))
        self.words = {head: [single_token(tok, w) for w in words] for head, words in (("shape", SHAPES), ("colour", COLOURS), ("label", LABELS))}

    def forward(self, seen, embeddings):
        heads = dict(zip(DENSE_HEADS, self.linear(seen).split(list(DENSE_HEADS.values()), dim=-1)))
        for head, ids in self.words.items():
            words = F.normalize(embeddings[ids].detach().float(), dim=-1)
            heads[head] = torch.cat([heads[head][..., :1], self.scale * seen @ words.T], dim=-1)  # class 0: background / none
        return torch.cat(list(heads.values()), dim=-1)


def answer_loss(model, features, ids, labels, mask, positions, _look=None):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = language_logits(model, features, ids, mask, positions)
    return F.cross_entropy(logits[:, :-1].float().flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100), logits


@torch.no_grad()
def exact_match(model, items, logits_of, chunk=32):
    """Greedy exact match per family, teacher-forced: greedy decoding yields the answer and </s>
    exactly when every answer token is the argmax given the tokens before it.
    items: [(..., family)]; logits_of(part) -> (logits, labels) for a chunk of items."""
    model.eval()
    correct, total = {}, {}
    for i in range(0, len(items), chunk):
        part = items[i:i + chunk]
        logits, labels = logits_of(part)
        target = labels[:, 1:]
        hit = ((logits[:, :-1].argmax(-1) == target) | (target == -100)).all(dim=1)
        for item, ok in zip(part, hit.tolist()):
            correct[item[-1]] = correct.get(item[-1], 0) + ok
            total[item[-1]] = total.get(item[-1], 0) + 1
    model.train()
    return sum(correct.values()) / sum(total.values()), {f: correct[f] / total[f] for f in sorted(total)}


def evaluate(model, tok, features, store, items, pad_id):
    """Exact match on images. items: [(index, q, a, family)]."""
    def logits_of(part):
        batch = chat_batch(tok, [(features(store, idx), [(q, a)], None, None) for idx, q, a, _ in part], pad_id)
        return answer_loss(model, *batch)[1], batch[2]
    return exact_match(model, items, logits_of)


def family_line(per_family):
    return " ".join(f"{f} {a:.3f}" for f, a in per_family.items())


def balanced(items, count, seed):
    """The first `count` items with families interleaved, so a partial validation covers every family."""
    by_family = {}
    for item in random.Random(seed).sample(items, len(items)):
        by_family.setdefault(item[3], []).append(item)
    rounds = zip(*by_family.values())
    return [item for r in rounds for item in r][:count]


def train_language(model, tok, args, train_paths, train_store, train_qa, train_scenes, val_items, val_store):
    core = model.model
    keep_head = KeepHeads(tok)
    trainable = (list(core.multi_modal_projector.parameters()) + list(core.language_model.parameters()) + list(model.lm_head.parameters())
                 + list(keep_head.parameters()))
    optimizer = torch.optim.AdamW(trainable, lr=args.language_lr, betas=(0.9, 0.98), weight_decay=0.05)
    run = Run(args.work, "language")
    parts_ = {"projector": core.multi_modal_projector, "decoder": core.language_model, "lm_head": model.lm_head, "keep_head": keep_head}
    meta = run.load(parts_, optimizer)
    steps = args.language_samples // args.batch
    rng = random.Random(args.seed + 1 + meta["step"])
    pad_id = tok.token_to_id(SPECIAL["pad"])
    quick_val = balanced(val_items, args.val_items, args.seed)
    best_file = Path(args.work) / "language-best.pt"
    features = Standardize(train_store)
    words = attribute_words(tok)

    def make_batch():
        # Early chats keep the object tokens and a share of the background: shorter sequences, fewer
        # distractors, so the answers learn to look at the objects sooner; later chats keep everything.
        sparse = meta["step"] < args.full_after * steps
        samples, dense = [], []
        for index in rng.sample(range(len(train_paths)), args.batch):
            path = train_paths[index]
            qa = train_qa[path]
            kept = None
            if sparse:
                objects = set(object_patches(train_scenes[path]).tolist())
                kept = sorted(i for i in range(NUM_VISUAL) if i in objects or rng.random() < args.background_keep)
            samples.append((features(train_store, index), some_turns(qa, rng), kept, train_scenes[path]))
            grid = slice(None) if kept is None else torch.as_tensor(kept)
            dense.append({k: v[0, grid] for k, v in dense_targets([train_scenes[path]]).items()})
        return chat_batch(tok, samples, pad_id, words), {k: torch.cat([d[k] for d in dense])[None] for k in DENSE_HEADS}

    def after_step(meta):
        if meta["step"] % args.val_every and meta["step"] != steps:
            return
        accuracy, per_family = evaluate(model, tok, features, val_store, quick_val, pad_id)
        print(f"language step {meta['step']} val exact match {accuracy:.3f} ({len(quick_val)} items): {family_line(per_family)}", flush=True)
        if meta["best"] is None or accuracy >= meta["best"]["accuracy"]:
            meta["best"] = {"step": meta["step"], "accuracy": accuracy, "per_family": per_family}
            torch.save({n: m.state_dict() for n, m in parts_.items()}, best_file)

    core.vision_tower.requires_grad_(False)
    model.train()
    probes = {"read": LookProbe(model, args.read_layer), "find": LookProbe(model, args.find_layer)}

    def step_loss(batch_and_dense):
        batch, dense = batch_and_dense
        # First the projector learns to speak to the decoder the text stage trained; then both learn together.
        decoder_trains = meta["step"] >= args.align_share * steps
        core.language_model.requires_grad_(decoder_trains)
        model.lm_head.requires_grad_(decoder_trains)
        terms = {"answer": answer_loss(model, *batch)[0]}
        for role, probe in probes.items():
            targets = [t for t in batch[-1] if t[2] == role]
            if args.look_weight and targets:
                terms[role] = probe.loss(targets, batch[3])
        if args.keep_weight:
            # The projected tokens, as the decoder's RMSNorm sees them, keep what the tower knows: without
            # this the projector drifts to a shared direction that hides each patch's colour and shape.
            seen = F.rms_norm(core.multi_modal_projector(batch[0]), (TEXT["hidden_size"],))
            terms["keep"] = dense_loss(keep_head(seen, core.get_input_embeddings().weight)[None], dense)
        if meta["step"] % 20 == 19:
            print("  losses: " + " ".join(f"{k} {v.item():.3f}" for k, v in terms.items()), flush=True)
        weights = {"answer": 1.0, "read": args.look_weight, "find": args.look_weight, "keep": args.keep_weight}
        return sum(weights[k] * v for k, v in terms.items())

    if meta["step"] < steps:
        meta = timed_steps("language", run, parts_, optimizer, meta, steps, args.batch, args.language_lr, make_batch, step_loss, after_step)
    for name, state in torch.load(best_file).items():
        parts_[name].load_state_dict(state)
    accuracy, per_family = evaluate(model, tok, features, val_store, val_items, pad_id)
    features.fold_into(core.multi_modal_projector)
    print(f"best checkpoint (step {meta['best']['step']}): val exact match {accuracy:.3f} over {len(val_items)} items: {family_line(per_family)}",
          flush=True)
    return {"seconds": meta["seconds"], "steps": meta["step"], "best_step": meta["best"]["step"],
            "val_accuracy": accuracy, "val_per_family": per_family, "val_items": len(val_items)}


# ---------------------------------------------------------------------------------------------
# Stage 6: export


def save_checkpoint(model, processor, out):
    """fp16 safetensors in shards of at most 15 MB, with tokenizer, preprocessor config and chat template."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("model*.safetensors*"):
        old.unlink()
    model.half().save_pretrained(out, max_shard_size=SHARD)
    model.float()
    processor.save_pretrained(out)
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    engine_compatible_config(out / "config.json")


def engine_compatible_config(path):
    """Spell keys the way every reader knows them (newer transformers renamed a few)."""
    config = json.loads(path.read_text())
    config.setdefault("image_token_index", config.get("image_token_id"))
    text = config["text_config"]
    rope = text.get("rope_parameters") or {}
    text.setdefault("rope_theta", rope.get("rope_theta", 10000.0))
    path.write_text(json.dumps(config, indent=2) + "\n")


def export(model, processor, out, report):
    save_checkpoint(model, processor, out)
    (Path(out) / "train_report.json").write_text(json.dumps(report, indent=2) + "\n")
    sizes = {p.name: p.stat().st_size for p in Path(out).iterdir() if p.is_file()}
    print(f"exported {out}: {sum(sizes.values()) / 1e6:.1f} MB; largest file {max(sizes.values()) / 1e6:.1f} MB", flush=True)
    assert sum(sizes.values()) <= 40e6 and max(sizes.values()) <= 16e6, "over the 40 MB / 16 MB budget"


# ---------------------------------------------------------------------------------------------


def timed(report, name, fn):
    start = time.time()
    result = fn()
    report["wall_seconds"][name] = report["wall_seconds"].get(name, 0.0) + time.time() - start
    return result


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    report_file = work / "report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {"wall_seconds": {}}
    save_report = lambda: report_file.write_text(json.dumps(report, indent=2) + "\n")

    train_qa_all = read_split(args.data, "train")
    val_split = read_split(args.data, "val")
    rel = lambda p: str(Path(p).relative_to(Path(args.data)))
    scenes, val_scenes = read_scenes(args.data, "train"), read_scenes(args.data, "val")
    text_train = [(scenes[rel(p)], [(q, a) for q, a, f in qs if f in TEXT_FAMILIES]) for p, qs in train_qa_all.items()]
    text_train = [(objects, qa) for objects, qa in text_train if qa]
    text_val = [(val_scenes[rel(p)], q, a, f) for p, qs in val_split.items() for q, a, f in qs if f in TEXT_FAMILIES]
    tok_file = work / "tokenizer.json"
    if not tok_file.exists():
        timed(report, "tokenizer", lambda: train_tokenizer(tokenizer_corpus(train_qa_all, text_train)).save(str(tok_file)))
    tok = Tokenizer.from_file(str(tok_file))
    model = build_model(tok, seed=args.seed)
    processor = build_processor(tok)  # built before training, so an API mismatch fails fast
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, vocab {tok.get_vocab_size()}, "
          f"{args.threads} threads; train {len(train_qa_all)} images, val {len(val_split)}", flush=True)

    if "vision" not in report:
        report["vision"] = timed(report, "vision", lambda: train_vision(model, args, scenes, val_scenes))
        save_report()
    else:
        model.model.vision_tower.load_state_dict(torch.load(work / "vision.pt", weights_only=False)["modules"]["tower"])

    train_paths = sorted(rel(p) for p in train_qa_all)[: args.cache_images]
    val_paths = sorted(rel(p) for p in val_split)
    train_store = timed(report, "cache", lambda: cache_features(model, args, train_paths, "train"))
    val_store = timed(report, "cache", lambda: cache_features(model, args, val_paths, "val"))
    save_report()

    report["text"] = timed(report, "text", lambda: train_text(model, tok, args, text_train, text_val, report.get("text")))
    save_report()
    train_qa = {rel(p): [(q, a) for q, a, _ in qs] for p, qs in train_qa_all.items()}
    val_index = {p: i for i, p in enumerate(val_paths)}
    val_items = [(val_index[rel(p)], q, a, f) for p, qs in val_split.items() for q, a, f in qs]
    report["language"] = timed(report, "language", lambda: train_language(model, tok, args, train_paths, train_store, train_qa, scenes, val_items, val_store))
    report.update(vision_config=VISION, text_config=TEXT, batch=args.batch, vision_samples=args.vision_samples,
                  language_samples=args.language_samples, background_keep=args.background_keep, full_after=args.full_after, cache_images=args.cache_images, threads=args.threads,
                  torch=torch.__version__, parameters=sum(p.numel() for p in model.parameters()))
    save_report()
    export(model, processor, args.out, report)


if __name__ == "__main__":
    main()
