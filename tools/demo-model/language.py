"""Stages 4-5: the language stage on SmolLM2 (low-rank adapters learn to answer from the eyes' words), export."""
import itertools
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from common import NUM_VISUAL
from dense import phrase_slots
from pruned import Pruner, iga_layers, look_loss, prompt_ends, pruned_answer_logits, transprune_high, watching
from smol import ChatFormat, adapters_off, add_lora, answer_logits, expand, splice
from stages import Run, timed_steps
from text import teacher_chats
from vision import cached

# Text chats held back from training, on which the adapted model's agreement with the unadapted one is reported.
TEXT_VAL = 16


@dataclass
class VisualBatch:
    """Chats over one image each, spliced (smol.splice); start: the visual block's first index (full and pruned forms);
    objects: [B, 576] the patches an object covers; drops: TransPrune-High's kept sets (pruned form, pruned.Pruner)."""
    embeds: torch.Tensor
    mask: torch.Tensor
    positions: torch.Tensor
    labels: torch.Tensor
    start: int
    objects: torch.Tensor
    drops: dict | None = None


class Batches:
    """Training chats over one image each, in four forms of its visual tokens:
    words  the scene graph's exact phrase words (dense.phrase_slots) as SmolLM2 embeddings, at their grid positions,
           with nothing else: the text the eyes aim to write, so the adapters learn to answer from it cheaply;
    sparse the eyes' own tokens at those positions and a share of the background (grid order and positions kept);
    full   all 576 of the eyes' tokens and SmolLM2's template with its system prompt: the inference format;
    pruned the full format, one question per chat, its prompt pruned by TransPrune-High (pruned.py).
    words and sparse chats use bare ChatML (no system turn), which keeps them short."""

    def __init__(self, chat, args, store, paths, qa, scenes, projector, words, pad_id):
        self.chat, self.args, self.store, self.paths, self.qa, self.scenes = chat, args, store, paths, qa, scenes
        self.projector, self.words, self.pad_id = projector, words, pad_id
        self.rng = random.Random(args.seed + 4)
        self.pruner = None  # set when the pruned phase runs


    def sample(self, index, turns, form, rng):
        path = self.paths[index]
        ids, labels = self.chat.encode(turns, system=form in ("full", "pruned"))
        slots = phrase_slots(self.scenes[path])
        if form in ("full", "pruned"):
            return expand(ids, labels), self.project(cached(self.store, index)), torch.as_tensor(slots > 0)
        keep_background = 0.0 if form == "words" else self.args.background_keep
        kept = [i for i in range(NUM_VISUAL) if slots[i] > 0 or rng.random() < keep_background]
        visual = self.words[torch.as_tensor(slots[kept])] if form == "words" else self.project(cached(self.store, index)[kept])
        return expand(ids, labels, kept), visual, torch.as_tensor(slots[kept] > 0)

    def project(self, features):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            return self.projector(features).float()

    def make(self, samples, model, form="full"):
        rows, visual, objects = zip(*samples)
        start = rows[0][0].index(-1)
        batch = VisualBatch(*splice(model, torch.cat(visual), rows, self.pad_id), start, torch.stack(objects) if form in ("full", "pruned") else None)
        if form == "pruned":
            batch.drops = self.pruner.drops(batch.embeds, batch.labels, start)
        return batch

    def train_batch(self, form, model):
        samples = []
        full_format = form in ("full", "pruned")
        for index in self.rng.sample(range(len(self.paths)), self.args.full_batch if full_format else self.args.batch):
            questions = self.qa[self.paths[index]]
            qa = [(q, a) for q, a, _ in questions]
            if form == "pruned" or self.args.single_turn and not full_format:
                turns = [self.one_question(questions)]
            else:
                turns = self.rng.sample(qa, len(qa) if not full_format or self.rng.random() < 0.5 else self.rng.randint(1, len(qa)))
            samples.append(self.sample(index, turns, form, self.rng))
        return self.make(samples, model, form)

    def one_question(self, questions):
        """One (question, answer) drawn by --family-weights; without weights rng.choice, the earlier runs' draws."""
        qa = [(q, a) for q, a, _ in questions]
        if not self.args.family_weights:
            return self.rng.choice(qa)
        return self.rng.choices(qa, [self.args.family_weights.get(f, 1.0) for *_, f in questions])[0]


class TextChats:
    """Text-only chats answered by the unadapted model (text.teacher_chats), in batches for distillation."""

    def __init__(self, rows, args, pad_id, hidden):
        self.rows, self.args, self.pad_id, self.none = rows, args, pad_id, torch.zeros(0, hidden)
        self.rng = random.Random(args.seed + 5)

    def make(self, rows, model):
        return splice(model, self.none, [(ids, list(range(len(ids))), labels) for ids, labels in rows], self.pad_id)

    def train_batch(self, model):
        return self.make(self.rng.sample(self.rows, self.args.text_batch), model) if self.args.text_batch else None


def logits_of(model, batch):
    """answer_logits, or pruned_answer_logits for a pruned-form batch."""
    if batch.drops is not None:
        return pruned_answer_logits(model, batch.embeds, batch.labels, batch.start, batch.drops)
    return answer_logits(model, batch.embeds, batch.mask, batch.positions, batch.labels)


def distil_logits(model, adapters, batch):
    """(student logits, teacher logits) at the answer positions: the same chat with and without the adapters."""
    embeds, mask, positions, labels = batch
    with torch.no_grad(), adapters_off(adapters), torch.autocast("cpu", dtype=torch.bfloat16):
        teacher, _, _ = answer_logits(model, embeds, mask, positions, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        student, _, _ = answer_logits(model, embeds, mask, positions, labels)
    return student.float(), teacher.float()


def distil_loss(model, adapters, batch):
    """KL(unadapted || adapted) of the next-token distributions over the teacher's answers."""
    student, teacher = distil_logits(model, adapters, batch)
    return F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1), log_target=True, reduction="batchmean")


@torch.no_grad()
def text_agreement(model, adapters, text, rows):
    """Share of the held-back text answers' tokens where the adapted model's argmax is the unadapted one's."""
    student, teacher = distil_logits(model, adapters, text.make(rows, model))
    return (student.argmax(-1) == teacher.argmax(-1)).float().mean().item()


@torch.no_grad()
def exact_match(model, batches, items, form, chunk=8):
    """Greedy exact match per family, teacher-forced: greedy decoding yields the answer and <|im_end|> exactly when
    every answer token is the argmax given the tokens before it. items: [(index, question, answer, family)]."""
    results = []
    rng = random.Random(0)
    for i in range(0, len(items), chunk):
        part = items[i:i + chunk]
        batch = batches.make([batches.sample(idx, [(q, a)], form, rng) for idx, q, a, _ in part], model, form)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, target, where = logits_of(model, batch)
        results += zip((family for *_, family in part), chat_hits(logits, target, where))
    return tally(results)


def tally(results):
    """(accuracy, {family: accuracy}) from [(family, hit)]."""
    per_family = {}
    for family, hit in results:
        per_family.setdefault(family, []).append(hit)
    return sum(h for _, h in results) / len(results), {f: sum(h) / len(h) for f, h in sorted(per_family.items())}


def chat_hits(logits, target, where):
    """Per chat of a batch (answer_logits' outputs): whether every one of its answer tokens is the argmax."""
    hit, row_of = logits.argmax(-1) == target, where.nonzero()[:, 0]
    return [bool(hit[row_of == r].all()) for r in range(where.shape[0])]


def balanced(items, count, seed):
    """The first `count` items (each one's family last) with families interleaved, so a partial validation covers every family."""
    by_family = {}
    for item in random.Random(seed).sample(items, len(items)):
        by_family.setdefault(item[-1], []).append(item)
    return [item for r in zip(*by_family.values()) for item in r][:count]


def family_line(accuracy, per_family):
    return f"{accuracy:.3f} (" + " ".join(f"{f} {a:.2f}" for f, a in per_family.items()) + ")"


def scores_pruned(args):
    """Whether the run also validates (and selects checkpoints) under TransPrune-High: it trains for it."""
    return bool(args.pruned_steps or args.look_weight)


def language_steps(args):
    return args.words_steps + args.sparse_steps + args.full_steps + args.pruned_steps


def phase_of(step, args):
    """words, then sparse, then full, then pruned (each phase's step count from its flag)."""
    ends = itertools.accumulate((args.words_steps, args.sparse_steps, args.full_steps))
    return next((phase for phase, end in zip(("words", "sparse", "full"), ends) if step < end), "pruned")


def phase_forms(phase):
    """The batches one step of a phase trains on: a pruned step pairs a pruned batch with a full one, so the
    unpruned answers are kept while the pruned ones are learned."""
    return ("full", "pruned") if phase == "pruned" else (phase,)


def train_language(model, args, batches, val_batches, val_items, adapters, text, text_val):
    """Adapters only (the eyes stay as the eyes stage left them); the loss is the answers' cross-entropy plus
    --text-weight times the text chats' distillation loss; the best checkpoint by validation in the inference
    format is kept (with a pruned phase: by the mean of the full and pruned forms' accuracy)."""
    modules = {"adapters": torch.nn.ModuleDict({k.replace(".", "_"): v for k, v in adapters.items()})}
    optimizer = torch.optim.AdamW([p for a in adapters.values() for p in (a.a, a.b)], lr=args.language_lr, betas=(0.9, 0.98), weight_decay=0.0)
    run = Run(args.work, args.language_run)
    best_file = Path(args.work) / f"{args.language_run}-best.pt"
    if args.adapters_from and not run.path.exists():  # a continuation's first start: the earlier run's best adapters
        for name, state in torch.load(Path(args.work) / f"{args.adapters_from}-best.pt").items():
            modules[name].load_state_dict(state)
        print(f"{args.language_run}: from the best adapters of {args.adapters_from}", flush=True)
    meta = run.load(modules, optimizer)
    steps = language_steps(args)
    quick_val = balanced(val_items, args.val_items, args.seed)
    batches.rng = random.Random(args.seed + 4 + meta["step"])
    text.rng = random.Random(args.seed + 5 + meta["step"])

    def make_batch():
        return [batches.train_batch(form, model) for form in phase_forms(phase_of(meta["step"], args))], text.train_batch(model)

    look_layers = iga_layers(transprune_high(len(model.model.layers))) if args.look_weight else []

    def step_loss(batch):
        visual, text_batch = batch
        loss = 0.0
        for part in visual:
            looks = args.look_weight and part.objects is not None and part.drops is None
            with torch.autocast("cpu", dtype=torch.bfloat16), watching(model, look_layers if looks else []) as seen:
                logits, target, _ = logits_of(model, part)
                if looks:
                    loss = loss + args.look_weight * look_loss(model, seen, part.start, prompt_ends(part.labels), part.objects)
            loss = loss + F.cross_entropy(logits.float(), target)
        return loss if text_batch is None else loss + args.text_weight * distil_loss(model, adapters, text_batch)

    def after_step(meta):
        if meta["step"] % args.val_every and meta["step"] != steps:
            return
        line = [f"{form} " + family_line(*exact_match(model, val_batches, quick_val[: args.val_items // 2], form))
                for form in ("words", "sparse") if phase_of(meta["step"] - 1, args) == form]
        accuracy, per_family = exact_match(model, val_batches, quick_val, "full")
        line.append("full " + family_line(accuracy, per_family))
        if scores_pruned(args):
            pruned_accuracy, pruned_per_family = exact_match(model, val_batches, quick_val, "pruned")
            line.append("pruned " + family_line(pruned_accuracy, pruned_per_family))
            accuracy = (accuracy + pruned_accuracy) / 2
        line.append(f"text agreement {text_agreement(model, adapters, text, text_val):.3f}")
        meta["last_val"] = " | ".join(line)
        print(f"{args.language_run} step {meta['step']} val exact match: {meta['last_val']}", flush=True)
        if meta["best"] is None or accuracy >= meta["best"]["accuracy"]:
            meta["best"] = {"step": meta["step"], "accuracy": accuracy, "per_family": per_family}
            torch.save({n: m.state_dict() for n, m in modules.items()}, best_file)

    model.train()
    if meta["step"] < steps:
        meta = timed_steps(args.language_run, run, modules, optimizer, meta, steps, args.batch, args.language_lr,
                           make_batch, step_loss, after_step, warmup=20, log_every=5)
    model.eval()
    for name, state in torch.load(best_file).items():
        modules[name].load_state_dict(state)
    return meta


def run_language(args, report, save_report, timed, model, tok, tower, projector, words, train_paths, train_store, train_qa, scenes, val_paths,
                 val_store, val_qa, val_scenes):
    from export_gguf import export  # noqa: E402

    done = report.get(args.language_run, {})
    if args.until == "language" and done.get("steps") == language_steps(args):
        print(f"{args.language_run}: done at step {done['steps']} (best {done['best_step']})", flush=True)
        return
    chat = ChatFormat(tok)
    chat.check()
    adapters = add_lora(model, range(args.lora_layers), args.lora_rank, args.lora_rank * 2)
    pad_id = chat.end_id
    rel = lambda p: str(Path(p).relative_to(Path(args.data)))
    batches = Batches(chat, args, train_store, train_paths, {rel(p): v for p, v in train_qa.items()}, scenes, projector, words, pad_id)
    val_index = {p: i for i, p in enumerate(val_paths)}
    val_items = [(val_index[rel(p)], q, a, f) for p, qs in val_qa.items() for q, a, f in qs]
    val_batches = Batches(chat, args, val_store, val_paths, {rel(p): v for p, v in val_qa.items()}, val_scenes, projector, words, pad_id)
    if scores_pruned(args):
        batches.pruner = val_batches.pruner = Pruner(model)
    with adapters_off(adapters):
        text_rows = teacher_chats(model, tok, chat, args.text_prompts, args.seed, args.work)
    text = TextChats(text_rows[:-TEXT_VAL], args, pad_id, model.config.hidden_size)
    meta = timed(report, args.language_run, lambda: train_language(model, args, batches, val_batches, val_items, adapters, text, text_rows[-TEXT_VAL:]))
    final_val = balanced(val_items, args.final_val_items, args.seed + 1)
    accuracy, per_family = exact_match(model, val_batches, final_val, "full")
    agreement = text_agreement(model, adapters, text, text_rows[-TEXT_VAL:])
    print(f"best checkpoint (step {meta['best']['step']}): val exact match {family_line(accuracy, per_family)} over {len(final_val)} items, "
          f"text agreement {agreement:.3f}", flush=True)
    report[args.language_run] = {"seconds": meta["seconds"], "steps": meta["step"], "best_step": meta["best"]["step"], "val_accuracy": accuracy,
                          "val_per_family": per_family, "val_items": len(final_val), "text_agreement": agreement}
    if scores_pruned(args):
        pruned_accuracy, pruned_per_family = exact_match(model, val_batches, final_val, "pruned")
        print(f"  with TransPrune-High: {family_line(pruned_accuracy, pruned_per_family)}", flush=True)
        report[args.language_run].update(val_pruned_accuracy=pruned_accuracy, val_pruned_per_family=pruned_per_family)
    save_report()
    if args.until == "language":
        return
    report["export"] = export(args, tower, projector, adapters)
    save_report()
