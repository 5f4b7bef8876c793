"""Stages 3-5: the projector's initialisation, the language stage on SmolLM2, export (train.py runs them)."""
import random
from pathlib import Path

import torch
import torch.nn.functional as F

from common import NUM_VISUAL
from dense import COLOURS, LABELS, SHAPES, object_patches, scene_targets
from smol import ChatFormat, add_lora, answer_logits, expand, load, splice
from stages import Run, timed_steps
from vision import VISION, cached

FAMILIES = ("colour", "shape", "count", "exist", "position", "label")


class Projector(torch.nn.Module):
    """LLaVA-1.5's projector (transformers' LlavaMultiModalProjector): Linear, GELU, Linear."""

    def __init__(self, width_in, width_out):
        super().__init__()
        self.linear_1 = torch.nn.Linear(width_in, width_out)
        self.linear_2 = torch.nn.Linear(width_out, width_out)

    def forward(self, x):
        return self.linear_2(F.gelu(self.linear_1(x)))


class Standardize:
    """Per-channel standardization of the cached features, folded into the projector's first Linear at export
    (so the shipped model is plain LLaVA on raw features). CLIP's pre-layernorm residual at layer -2 is
    dominated by one shared direction; standardized inputs start the projector where the objects differ."""

    def __init__(self, store, images=512):
        sample = torch.cat([cached(store, i).float() for i in range(0, len(store), max(1, len(store) // images))])
        self.mean, self.std = sample.mean(0), sample.std(0).clamp_min(1e-3)

    def __call__(self, store, index):
        return (cached(store, index).float() - self.mean) / self.std

    def folded(self, projector):
        """A copy of the projector on raw features: W' = W / std (per input channel), b' = b - W (mean / std)."""
        out = Projector(projector.linear_1.in_features, projector.linear_2.out_features)
        out.load_state_dict(projector.state_dict())
        probe = self.mean + self.std * torch.randn(8, len(self.mean))
        with torch.no_grad():
            out.linear_1.bias -= out.linear_1.weight @ (self.mean / self.std)
            out.linear_1.weight /= self.std
            assert torch.allclose(out(probe), projector((probe - self.mean) / self.std), rtol=1e-4, atol=1e-4), "folding changed the projector"
        return out


def word_targets(model, tok):
    """Per-class target embeddings: an object patch's is the normalized sum of its colour, shape and label words'
    embeddings (first token, with the leading space, as the words appear in questions), a background patch's "."."""
    emb = model.model.embed_tokens.weight.detach()
    first = lambda word: tok.encode(word, add_special_tokens=False)[0]
    rows = lambda words: torch.stack([emb[first(" " + w)] for w in words])
    return {"colour": rows(COLOURS), "shape": rows(SHAPES), "label": rows([c.lower() for c in LABELS]), "background": emb[first(".")],
            "norm": emb.norm(dim=-1).mean()}


def patch_targets(objects, words):
    """[576, 576] regression targets for one scene's visual tokens (dense.scene_targets gives the classes)."""
    t = scene_targets(objects)
    out = words["background"].expand(NUM_VISUAL, -1).clone()
    on = torch.as_tensor(t["shape"] > 0)
    v = words["colour"][torch.as_tensor(t["colour"])[on] - 1] + words["shape"][torch.as_tensor(t["shape"])[on] - 1]
    label = torch.as_tensor(t["label"])[on]
    v[label > 0] += words["label"][label[label > 0] - 1]
    out[on] = F.normalize(v, dim=-1) * words["norm"]
    return out, on


def init_projector(projector, args, features, store, paths, scenes, words):
    """Stage 3: regress the projector onto the word targets (MSE, object patches weighted up)."""
    optimizer = torch.optim.AdamW(projector.parameters(), lr=1e-3, weight_decay=0.0)
    run = Run(args.work, "init")
    meta = run.load({"projector": projector}, optimizer)
    rng = random.Random(args.seed + 3 + meta["step"])

    def make_batch():
        chosen = rng.sample(range(len(paths)), 8)
        x = torch.stack([features(store, i) for i in chosen])
        targets = [patch_targets(scenes[paths[i]], words) for i in chosen]
        return x, torch.stack([t for t, _ in targets]), torch.stack([on for _, on in targets])

    def step_loss(batch):
        x, target, on = batch
        err = (projector(x) - target).pow(2).mean(-1)
        return err[on].mean() + err[~on].mean()

    if meta["step"] < args.init_steps:
        timed_steps("init", run, {"projector": projector}, optimizer, meta, args.init_steps, 8, 1e-3, make_batch, step_loss, warmup=20, log_every=50)
    return meta


class Batches:
    """Training chats. Sparse: the object tokens and a share of the background (grid order and positions kept), bare
    ChatML; full: all 576 visual tokens, SmolLM2's template with its system prompt (the inference format)."""

    def __init__(self, chat, args, features, store, paths, qa, scenes, projector, pad_id):
        self.chat, self.args, self.features, self.store, self.paths, self.qa, self.scenes = chat, args, features, store, paths, qa, scenes
        self.projector, self.pad_id = projector, pad_id
        self.rng = random.Random(args.seed + 4)

    def sample(self, index, turns, sparse, rng):
        path = self.paths[index]
        ids, labels = self.chat.encode(turns, system=not sparse)
        kept = None
        if sparse:
            objects = set(object_patches(self.scenes[path], per_object=self.args.object_patches, rng=rng).tolist())
            kept = [i for i in range(NUM_VISUAL) if i in objects or rng.random() < self.args.background_keep]
        x = self.features(self.store, index)
        return expand(ids, labels, kept), x if kept is None else x[kept]

    def make(self, samples, model):
        rows = [r for r, _ in samples]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            visual = self.projector(torch.cat([x for _, x in samples]))
        return splice(model, visual, rows, self.pad_id)

    def train_batch(self, sparse, model):
        samples = []
        for index in self.rng.sample(range(len(self.paths)), self.args.batch if sparse else self.args.full_batch):
            qa = [(q, a) for q, a, _ in self.qa[self.paths[index]]]
            if self.args.single_turn and sparse:
                turns = [self.rng.choice(qa)]  # one question per chat, as in the notes' from-scratch runs
            else:
                turns = self.rng.sample(qa, len(qa) if sparse or self.rng.random() < 0.5 else self.rng.randint(1, len(qa)))
            samples.append(self.sample(index, turns, sparse, self.rng))
        return self.make(samples, model)


@torch.no_grad()
def exact_match(model, batches, items, sparse, chunk=8):
    """Greedy exact match per family, teacher-forced: greedy decoding yields the answer and <|im_end|> exactly when
    every answer token is the argmax given the tokens before it. items: [(index, question, answer, family)]."""
    correct, total = {}, {}
    rng = random.Random(0)
    for i in range(0, len(items), chunk):
        part = items[i:i + chunk]
        embeds, mask, positions, labels = batches.make([batches.sample(idx, [(q, a)], sparse, rng) for idx, q, a, _ in part], model)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, target, where = answer_logits(model, embeds, mask, positions, labels)
        hit = logits.argmax(-1) == target
        row_of = where.nonzero()[:, 0]
        for r, (*_, family) in enumerate(part):
            correct[family] = correct.get(family, 0) + bool(hit[row_of == r].all())
            total[family] = total.get(family, 0) + 1
    per_family = {f: correct[f] / total[f] for f in sorted(total)}
    return sum(correct.values()) / sum(total.values()), per_family


def balanced(items, count, seed):
    """The first `count` items with families interleaved, so a partial validation covers every family."""
    by_family = {}
    for item in random.Random(seed).sample(items, len(items)):
        by_family.setdefault(item[3], []).append(item)
    return [item for r in zip(*by_family.values()) for item in r][:count]


def family_line(accuracy, per_family):
    return f"{accuracy:.3f} (" + " ".join(f"{f} {a:.2f}" for f, a in per_family.items()) + ")"


def add_top_layers(model, count):
    """Appends `count` fresh decoder layers after SmolLM2's last, their o_proj and down_proj at zero (so the model's
    output starts unchanged): a from-scratch lookup on top of the pretrained one, as a small decoder learns it fast
    (demo-training-notes). With the rest frozen, no gradient flows through SmolLM2 at all: a step costs a forward."""
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer
    base = model.config.num_hidden_layers
    fresh = torch.nn.ModuleList()
    for i in range(count):
        layer = LlamaDecoderLayer(model.config, layer_idx=base + i)
        for p in layer.parameters():
            torch.nn.init.normal_(p, std=0.02) if p.dim() == 2 else torch.nn.init.ones_(p)
        torch.nn.init.zeros_(layer.self_attn.o_proj.weight)
        torch.nn.init.zeros_(layer.mlp.down_proj.weight)
        fresh.append(layer)
    model.model.layers.extend(fresh)
    model.config.num_hidden_layers = base + count
    return fresh


def train_language(model, chat, args, batches, val_batches, val_items, adapters, top=None):
    projector = batches.projector
    modules = {"projector": projector, "adapters": torch.nn.ModuleDict({k.replace(".", "_"): v for k, v in adapters.items()})}
    groups = [{"params": [p for p in projector.parameters() if p.requires_grad], "lr_scale": 1.0},
              {"params": [p for a in adapters.values() for p in (a.a, a.b)], "lr_scale": args.lora_lr_scale}]
    if top is not None:
        modules["top"] = top
        groups.append({"params": list(top.parameters()), "lr_scale": 1.0})
    groups = [g for g in groups if g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=args.language_lr, betas=(0.9, 0.98), weight_decay=0.0)
    run = Run(args.work, "language")
    meta = run.load(modules, optimizer)
    steps = args.sparse_steps + args.full_steps
    quick_val = balanced(val_items, args.val_items, args.seed)
    best_file = Path(args.work) / "language-best.pt"
    batches.rng = random.Random(args.seed + 4 + meta["step"])

    def step_loss(batch):
        embeds, mask, positions, labels = batch
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, target, _ = answer_logits(model, embeds, mask, positions, labels)
        return F.cross_entropy(logits.float(), target)

    def after_step(meta):
        if meta["step"] % args.val_every and meta["step"] != steps:
            return
        sparse_now = meta["step"] <= args.sparse_steps
        line = []
        if sparse_now:
            line.append("sparse " + family_line(*exact_match(model, val_batches, quick_val[: args.val_items // 2], True)))
        accuracy, per_family = exact_match(model, val_batches, quick_val, False)
        line.append("full " + family_line(accuracy, per_family))
        meta["last_val"] = " | ".join(line)
        print(f"language step {meta['step']} val exact match: {meta['last_val']}", flush=True)
        if meta["best"] is None or accuracy >= meta["best"]["accuracy"]:
            meta["best"] = {"step": meta["step"], "accuracy": accuracy, "per_family": per_family}
            torch.save({n: m.state_dict() for n, m in modules.items()}, best_file)

    model.train()
    if meta["step"] < steps:
        meta = timed_steps("language", run, modules, optimizer, meta, steps, args.batch, args.language_lr,
                           lambda: batches.train_batch(meta["step"] < args.sparse_steps, model), step_loss, after_step, warmup=20, log_every=5)
    model.eval()
    for name, state in torch.load(best_file).items():
        modules[name].load_state_dict(state)
    return meta


def run_language(args, report, save_report, timed, tower, head, train_paths, train_store, train_qa, scenes, val_paths, val_store, val_qa,
                 val_scenes):
    from export_gguf import export  # noqa: E402

    model, tok = load(args.gguf)
    chat = ChatFormat(tok)
    chat.check()
    features = Standardize(train_store)
    projector = Projector(VISION["hidden_size"], model.config.hidden_size)
    words = word_targets(model, tok)
    report["init"] = timed(report, "init", lambda: init_projector(projector, args, features, train_store, train_paths, scenes, words))
    save_report()
    adapters = add_lora(model, range(args.lora_layers), args.lora_rank, args.lora_rank * 2) if args.lora_layers else {}
    top = add_top_layers(model, args.top_layers) if args.top_layers else None
    if top is not None:
        projector.requires_grad_(False)  # the init's word-like tokens; only the new layers learn
    pad_id = tok.convert_tokens_to_ids("<|im_end|>")
    rel = lambda p: str(Path(p).relative_to(Path(args.data)))
    qa = {rel(p): v for p, v in train_qa.items()}
    batches = Batches(chat, args, features, train_store, train_paths, qa, scenes, projector, pad_id)
    val_index = {p: i for i, p in enumerate(val_paths)}
    val_items = [(val_index[rel(p)], q, a, f) for p, qs in val_qa.items() for q, a, f in qs]
    val_batches = Batches(chat, args, features, val_store, val_paths, {rel(p): v for p, v in val_qa.items()}, val_scenes, projector, pad_id)
    if args.until == "init":
        print("init: " + family_line(*exact_match(model, val_batches, balanced(val_items, args.val_items, args.seed), False)), flush=True)
        return
    meta = timed(report, "language", lambda: train_language(model, chat, args, batches, val_batches, val_items, adapters, top))
    final_val = balanced(val_items, args.final_val_items, args.seed + 1)
    accuracy, per_family = exact_match(model, val_batches, final_val, False)
    print(f"best checkpoint (step {meta['best']['step']}): val exact match {family_line(accuracy, per_family)} over {len(final_val)} items",
          flush=True)
    report["language"] = {"seconds": meta["seconds"], "steps": meta["step"], "best_step": meta["best"]["step"], "val_accuracy": accuracy,
                          "val_per_family": per_family, "val_items": len(final_val)}
    save_report()
    if args.until == "language":
        return
    report["export"] = export(args, tower, features.folded(projector), adapters, top)
    save_report()
