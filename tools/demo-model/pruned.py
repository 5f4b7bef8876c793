"""Training under TransPrune-High: the chats' prompts pruned as the engine prunes them, so the adapters learn to
answer from what pruning keeps.

The kept sets come from make_fixtures.Decoder, the PyTorch reference the engine's parity fixtures are made with
(the released code's semantics), run without gradients over the prompt alone (the instruction that IGA reads is the
prompt, never the answer). The training forward then runs the whole chat through SmolLM2's own layers and drops
the same tokens after the same layers, with compact positions after each drop, as prefill and decode do: the
answer tokens see every visual token up to the first drop and only the kept ones after it.

And a loss that makes the model prunable (`look_loss`): IGA, half of TransPrune's score, is the attention of the
instruction's tokens to the visual tokens in the layer after each drop. Where that attention rests on the objects, the
objects are what TransPrune keeps."""
import math
from contextlib import contextmanager

import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from common import NUM_VISUAL
from make_fixtures import PRUNING_METHODS, Decoder, resolved


def transprune_high(depth):
    """The engine's default method for a decoder of `depth` layers, as the reference spells it."""
    return resolved(PRUNING_METHODS["transprune-high"], depth)


class Pruner:
    """TransPrune-High's kept sets for a batch of one-question chats, under the model's current adapters."""

    def __init__(self, model):
        self.method = transprune_high(len(model.model.layers))
        self.decoder = Decoder(model)
        # Only the layers up to the last drop (and the next one, whose attention IGA reads) decide what is kept.
        self.decoder.layers = self.decoder.layers[: max(self.method["schedule"]["prune"]) + 1]

    @torch.no_grad()
    def drops(self, embeds, labels, start):
        """{1-based layer after which tokens go: [B, keep] indices, among the visual tokens still there, of those kept}.
        Each row's prompt is its tokens before the first answer token."""
        per_row, ends = [], prompt_ends(labels)
        for row in range(embeds.shape[0]):
            prompt = int(ends[row])
            _, _, stages, _ = self.decoder.prefill(embeds[row:row + 1, :prompt], start, NUM_VISUAL, self.method)
            before, rows = torch.arange(NUM_VISUAL), {}
            for stage in stages:
                kept = torch.tensor(stage["kept"])
                rows[stage["after_layer"]] = torch.searchsorted(before, kept)
                before = kept
            per_row.append(rows)
        return {layer: torch.stack([r[layer] for r in per_row]) for layer in per_row[0]}


def prompt_ends(labels):
    """Each row's prompt length: the index of its first answer token (the row's length if it has none)."""
    answer = labels != -100
    return torch.where(answer.any(1), answer.float().argmax(1), labels.shape[1])


def iga_layers(method):
    """0-based indices of the layers whose attention IGA reads: the one after each drop (1-based drop layer N is
    followed by 1-based layer N + 1, 0-based N)."""
    return list(method["schedule"]["prune"])


@contextmanager
def watching(model, layers):
    """{0-based layer index: (its input hidden states, its (cos, sin))} of the next forward, gradients kept."""
    seen, hooks = {}, []
    for index in layers:
        def hook(_module, args, kwargs, index=index):
            seen[index] = (args[0] if args else kwargs["hidden_states"], kwargs["position_embeddings"])
        hooks.append(model.model.layers[index].register_forward_pre_hook(hook, with_kwargs=True))
    try:
        yield seen
    finally:
        for h in hooks:
            h.remove()


def instruction_attention(layer, hidden, rope, start, ends):
    """IGA as the reference computes it (make_fixtures.Decoder.probe), batched: the head-mean attention of each row's
    instruction tokens (after the visual block, before the answer) to the 576 visual tokens, normalised: [B, 576]."""
    attn = layer.self_attn
    heads, kv_heads = attn.config.num_attention_heads, attn.config.num_key_value_heads
    batch, length, _ = hidden.shape
    normed = layer.input_layernorm(hidden)
    split = lambda x, n: x.view(batch, length, n, -1).transpose(1, 2)
    q, k = split(attn.q_proj(normed), heads), split(attn.k_proj(normed), kv_heads)
    q, k = apply_rotary_pos_emb(q, k, *rope)
    k = k.repeat_interleave(heads // kv_heads, dim=1)
    first = start + NUM_VISUAL
    queries = torch.arange(first, int(ends.max()))
    scores = (q[:, :, queries].float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(torch.arange(length)[None, :] > queries[:, None], float("-inf"))
    probs = scores.softmax(-1).mean(1)[:, :, start:first]  # [B, Q, 576]
    valid = (queries[None, :] < ends[:, None]).float()
    iga = (probs * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)
    return iga / iga.sum(-1, keepdim=True)


def look_loss(model, seen, start, ends, objects):
    """-log of the instruction attention's share on the object patches, over the IGA layers and the rows with objects."""
    rows = objects.any(1)
    losses = [-(instruction_attention(model.model.layers[i], hidden, rope, start, ends)[rows] * objects[rows]).sum(-1).clamp_min(1e-6).log()
              for i, (hidden, rope) in seen.items()]
    return torch.stack(losses).mean()


def pruned_answer_logits(model, embeds, labels, start, drops):
    """smol.answer_logits with the visual tokens dropped after the layers in `drops` (rows right-padded, so causal
    attention alone keeps the padding out of every real token's view)."""
    lm = model.model
    x, count = embeds, NUM_VISUAL
    for number, layer in enumerate(lm.layers, start=1):
        if number == 1 or number - 1 in drops:  # compact positions: 0..S'-1 after every drop
            positions = torch.arange(x.shape[1]).unsqueeze(0).expand(x.shape[0], -1)
            rope = lm.rotary_emb(x, positions)
        x = layer(x, attention_mask=None, position_ids=positions, position_embeddings=rope)
        if number in drops:
            keep = drops[number]
            batch, length = keep.shape[0], x.shape[1]
            rows = torch.cat([torch.arange(start).expand(batch, -1), start + keep,
                              torch.arange(start + count, length).expand(batch, -1)], dim=1)
            x = x.gather(1, rows.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
            labels, count = labels.gather(1, rows), keep.shape[1]
    hidden = lm.norm(x)
    target = labels[:, 1:]
    where = target != -100
    return model.lm_head(hidden[:, :-1][where]), target[where], where
