"""SmolLM2-135M-Instruct as the demo model's language half: loading from the package's GGUF, the chat format
the engine renders, low-rank adapters, and the forward pass with visual tokens spliced in."""
import math
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from common import NUM_VISUAL

IMAGE = "<image>"
# What SmolLM2's chat template inserts when a chat has no system turn.
SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def load(gguf):
    """(model fp32, tokenizer), dequantized by transformers from the package's GGUF."""
    gguf = Path(gguf)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.requires_grad_(False)
    return model.eval(), tok


class ChatFormat:
    """SmolLM2's ChatML with the image placeholder opening the first user turn:
        [<|im_start|>system\\n{SYSTEM_PROMPT}<|im_end|>\\n]<|im_start|>user\\n<image>\\n{q}<|im_end|>\\n<|im_start|>assistant\\n{a}<|im_end|>\\n...
    system=True is exactly what the GGUF's own template renders for a chat without a system turn (checked
    in `check`); system=False is the bare form of the first training phase. Text is tokenized in pieces
    (the placeholder splits it, as an added special token does), answers and their <|im_end|> labelled."""

    def __init__(self, tok):
        self.tok = tok
        self.end_id = tok.convert_tokens_to_ids("<|im_end|>")

    def pieces(self, qa, system, with_answers=True, image=True):
        out = [(f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n", False)] if system else []
        for i, (question, answer) in enumerate(qa):
            out.append((f"<|im_start|>user\n{IMAGE + chr(10) if i == 0 and image else ''}{question}<|im_end|>\n<|im_start|>assistant\n", False))
            if with_answers:
                out += [(f"{answer}<|im_end|>", True), ("\n", False)]
        return out

    def encode(self, qa, system, with_answers=True, image=True):
        """ids (the placeholder as -1, once), labels (-100 off the answers): the sequence before expansion."""
        ids, labels = [], []
        for text, is_answer in self.pieces(qa, system, with_answers, image):
            for k, part in enumerate(text.split(IMAGE)):
                if k:
                    ids.append(-1)
                    labels.append(-100)
                piece = self.tok.encode(part, add_special_tokens=False) if part else []
                ids += piece
                labels += piece if is_answer else [-100] * len(piece)
        return ids, labels

    def check(self, question="What color is the square?", answer="red"):
        """The engine's prompt is the GGUF template's rendering; piecewise tokenization equals whole-text tokenization."""
        rendered = self.tok.apply_chat_template([{"role": "user", "content": f"{IMAGE}\n{question}"}], tokenize=False,
                                                add_generation_prompt=True)
        ours = "".join(t for t, _ in self.pieces([(question, answer)], system=True, with_answers=False))
        assert rendered == ours, f"chat template mismatch:\n{rendered!r}\n{ours!r}"
        text = "".join(t for t, _ in self.pieces([(question, answer), (question, answer)], system=True)).replace(IMAGE, "")
        whole = self.tok.encode(text, add_special_tokens=False)
        ids, _ = self.encode([(question, answer), (question, answer)], system=True)
        assert [i for i in ids if i >= 0] == whole, "piecewise tokenization differs from the whole text's"


class LoRA(torch.nn.Module):
    """y = W x + (alpha / r) B A x; B starts at zero, so the model starts unchanged. Merged at export.
    enabled=False gives back the unadapted layer (the teacher of the text chats)."""

    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.enabled = True
        self.a = torch.nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
        self.b = torch.nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x):
        if not self.enabled:
            return self.base(x)
        return self.base(x) + (x @ self.a.t().to(x.dtype)) @ self.b.t().to(x.dtype) * self.scale

    def delta(self):
        return (self.b @ self.a) * self.scale


ADAPTED = ("q_proj", "k_proj", "v_proj", "o_proj")


def add_lora(model, layers, rank, alpha):
    """Adapters on the attention projections of the given decoder layers: {"model.layers.N.self_attn.q_proj": LoRA}."""
    adapters = {}
    for n in layers:
        attn = model.model.layers[n].self_attn
        for name in ADAPTED:
            adapter = LoRA(getattr(attn, name), rank, alpha)
            setattr(attn, name, adapter)
            adapters[f"model.layers.{n}.self_attn.{name}"] = adapter
    return adapters


@contextmanager
def adapters_off(adapters):
    """The package's model as it was, for the duration."""
    for a in adapters.values():
        a.enabled = False
    try:
        yield
    finally:
        for a in adapters.values():
            a.enabled = True


def splice(model, features, rows, pad_id):
    """inputs_embeds, attention mask and positions for a batch. rows: [(ids with -1 per visual token, positions,
    labels)], features: [visual tokens of the batch in order, 576] already projected."""
    length = max(len(ids) for ids, _, _ in rows)
    ids = torch.full((len(rows), length), pad_id)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    positions = torch.zeros((len(rows), length), dtype=torch.long)
    labels = torch.full((len(rows), length), -100)
    for r, (i, p, l) in enumerate(rows):
        ids[r, :len(i)], positions[r, :len(p)], labels[r, :len(l)], mask[r, :len(i)] = torch.tensor(i), torch.tensor(p), torch.tensor(l), 1
    visual = ids < 0
    embeds = model.model.embed_tokens(ids.clamp_min(0))
    embeds = embeds.masked_scatter(visual.unsqueeze(-1), features.to(embeds.dtype))
    return embeds, mask, positions, labels


def answer_logits(model, embeds, mask, positions, labels):
    """Logits at the positions that predict a label (only those rows go through the 49k-wide head), and the targets."""
    hidden = model.model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).last_hidden_state
    target = labels[:, 1:]
    where = target != -100
    return model.lm_head(hidden[:, :-1][where]), target[where], where


def expand(ids, labels, kept=None):
    """The placeholder -> the kept visual tokens (ascending grid indices; None = all 576), each at its position
    in the full sequence, as pruning leaves them. Returns (ids, positions, labels)."""
    at = ids.index(-1)
    grid = range(NUM_VISUAL) if kept is None else kept
    positions = [*range(at), *(at + g for g in grid), *range(at + NUM_VISUAL, at + NUM_VISUAL + len(ids) - at - 1)]
    return ids[:at] + [-1] * len(grid) + ids[at + 1:], positions, labels[:at] + [-100] * len(grid) + labels[at + 1:]
