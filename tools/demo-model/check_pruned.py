#!/usr/bin/env python3
"""Checks pruned.py against the PyTorch reference on a shipped pair, and measures what TransPrune-High keeps.

On the first --images validation images (one question each, the inference format, fp32):
  iga      pruned.instruction_attention (the look loss's IGA, batched, with gradients) against the reference's IGA
           (make_fixtures.Decoder.probe) in each layer IGA reads: largest relative difference;
  logits   pruned.pruned_answer_logits (the pruned phase's forward) against the reference's pruned prefill: the
           first answer token's logits, largest relative difference; with no drops it must equal smol.answer_logits;
  objects  the patches an object covers (dense.phrase_slots) that each of TransPrune-High's stages keeps, against
           chance (the kept share of the tokens): the answer is in those patches.

  tools/demo-model/.venv/bin/python tools/demo-model/check_pruned.py --model resources/demo-model --data .cache/demo-model/vqa
"""
import argparse
from pathlib import Path

import numpy as np
import torch

from common import NUM_VISUAL, load_image_uint8, normalize, read_split
from dense import phrase_slots, read_scenes
from evaluate import features_of, read_mmproj
from export_gguf import MMPROJ, language_gguf
from make_fixtures import Decoder
from pruned import Pruner, iga_layers, instruction_attention, prompt_ends, pruned_answer_logits, transprune_high, watching
from smol import ChatFormat, answer_logits, expand, load, splice


def relative(ours, theirs):
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


def chat_of(model, chat, tower, projector, image, question, answer):
    """(embeds, mask, positions, labels, start) of one question in the inference format, its answer as labels."""
    ids, labels = chat.encode([(question, answer)], system=True)
    row = expand(ids, labels)
    visual = projector(features_of(tower, normalize(image[None])))[0]
    return (*splice(model, visual, [row], chat.end_id), row[0].index(-1))


def reference_iga(decoder, embeds, start, layers):
    """{0-based layer: the reference's normalised IGA over the 576 visual tokens}, on the unpruned prompt."""
    x, pos, out = embeds, decoder.initial_positions(embeds.shape[1]), {}
    for index, layer in enumerate(decoder.layers[: max(layers) + 1]):
        if index in layers:
            iga = decoder.probe(layer, x, pos, start + NUM_VISUAL + decoder.instruction_offset)[start:start + NUM_VISUAL]
            out[index] = iga / iga.sum()
        x, _ = decoder.layer(layer, x, pos)
    return out


@torch.no_grad()
def check(model, decoder, pruner, method, batch):
    embeds, mask, positions, labels, start = batch
    ends = prompt_ends(labels)
    prompt = int(ends[0])
    layers = iga_layers(method)
    with watching(model, layers) as seen:
        full, _, _ = answer_logits(model, embeds, mask, positions, labels)
    reference = reference_iga(decoder, embeds[:, :prompt], start, layers)
    iga = max(relative(instruction_attention(model.model.layers[i], hidden, rope, start, ends)[0], reference[i])
              for i, (hidden, rope) in seen.items())
    theirs, _, stages, _ = decoder.prefill(embeds[:, :prompt], start, NUM_VISUAL, method)
    ours, _, _ = pruned_answer_logits(model, embeds, labels, start, pruner.drops(embeds, labels, start))
    unpruned, _, _ = pruned_answer_logits(model, embeds, labels, start, {})
    return {"iga": iga, "logits": relative(ours[0], theirs), "no_drops": relative(unpruned, full), "stages": stages}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resources/demo-model")
    p.add_argument("--data", required=True, help="a folder with val*.jsonl, scenes-val*.jsonl and the images (train.sh makes it)")
    p.add_argument("--images", type=int, default=24)
    args = p.parse_args()
    folder = Path(args.model)
    model, tok = load(language_gguf(folder))
    chat, (tower, projector) = ChatFormat(tok), read_mmproj(folder / MMPROJ)
    decoder, pruner, method = Decoder(model), Pruner(model), transprune_high(len(model.model.layers))
    scenes = read_scenes(args.data, "val")
    items = sorted(read_split(args.data, "val").items())[: args.images]
    worst = {"iga": 0.0, "logits": 0.0, "no_drops": 0.0}
    kept_objects, objects = {}, []
    for path, [(question, answer, _), *_] in items:
        result = check(model, decoder, pruner, method, chat_of(model, chat, tower, projector, load_image_uint8(path), question, answer))
        worst = {k: max(v, result[k]) for k, v in worst.items()}
        covered = phrase_slots(scenes[str(Path(path).relative_to(args.data))]) > 0
        objects.append(covered.sum())
        for stage in result["stages"]:
            kept_objects.setdefault((stage["after_layer"], stage["keep"]), []).append(covered[stage["kept"]].sum())
    print(f"{len(items)} validation images, {folder}")
    print(f"IGA (instruction_attention vs the reference): largest relative difference {worst['iga']:.2e}")
    print(f"pruned forward vs the reference's pruned prefill, first answer token: {worst['logits']:.2e}; "
          f"with no drops vs answer_logits: {worst['no_drops']:.2e}")
    print(f"object patches per image: {np.mean(objects):.1f} of {NUM_VISUAL}")
    for (layer, keep), counts in sorted(kept_objects.items()):
        print(f"  kept after layer {layer} ({keep} tokens): {np.mean(counts):.1f} ({np.sum(counts) / np.sum(objects):.1%}; "
              f"chance {keep / NUM_VISUAL:.1%})")


if __name__ == "__main__":
    main()
