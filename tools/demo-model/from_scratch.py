#!/usr/bin/env python3
"""The tiny from-scratch LLaVA that make_fixtures.py builds its random checkpoint with: a Llama-style BPE tokenizer
trained on the task's chats, a LLaVA-1.5 model (CLIP tower, GELU MLP projector, Llama decoder) and its HF
processor, saved as fp16 safetensors. What is left of the earlier from-scratch demo recipe (now train.py trains
SmolLM2 with eyes; the old recipe is in git history)."""
import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor,
                          PreTrainedTokenizerFast)

from common import CHAT_TEMPLATE, CLIP_MEAN, CLIP_STD, IMAGE_SIZE, NUM_VISUAL, PATCH, SPECIAL

# About 13 M parameters, 26 MB in fp16 (the budget is 40 MB), in shards of at most 15 MB.
VISION = dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=5, num_attention_heads=4,
              image_size=IMAGE_SIZE, patch_size=PATCH, hidden_act="quick_gelu", projection_dim=256)
TEXT = dict(hidden_size=192, intermediate_size=512, num_hidden_layers=12, num_attention_heads=4,
            num_key_value_heads=4, max_position_embeddings=2048, rms_norm_eps=1e-5, hidden_act="silu",
            tie_word_embeddings=False)
VOCAB_SIZE = 768  # 261 special and byte tokens, printable ASCII, and merges for the task's words
SHARD = "15MB"


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
