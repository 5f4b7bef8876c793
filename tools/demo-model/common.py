"""What the training tools and the fixture scripts share: the image size and normalization, the data files, the from-scratch chat format.

Runs on the GPU machine (PyTorch, transformers >= 4.52 with the `model.model.*` LLaVA layout).
"""
import json
from collections import defaultdict
from pathlib import Path

import jinja2
import numpy as np
import torch
from PIL import Image

IMAGE_SIZE = 336
PATCH = 14
NUM_VISUAL = (IMAGE_SIZE // PATCH) ** 2  # 576, as LLaVA-1.5
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

SPECIAL = {"unk": "<unk>", "bos": "<s>", "eos": "</s>", "image": "<image>", "pad": "<pad>"}

SYSTEM_PROMPT = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)

# LLaVA-1.5 (vicuna_v1) conversation format with HF-style content lists, the same shape as the
# engine's built-in LLAVA_15_CHAT_TEMPLATE (src/engine/text/chat.ts) plus the default system prompt:
#   "{system} USER: <image>\n{question} ASSISTANT: {answer}</s>USER: {question} ASSISTANT:"
CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}{{ \"" + SYSTEM_PROMPT + " \" }}{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] + ' ' }}{% endif %}{% endfor %}"
    "{% elif message['role'] == 'user' %}{{ 'USER: ' }}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}{{ '<image>\\n' }}{% endif %}{% endfor %}"
    "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] + ' ' }}{% endif %}{% endfor %}"
    "{% else %}{{ 'ASSISTANT: ' }}"
    "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{{ eos_token }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
_template = jinja2.Environment().from_string(CHAT_TEMPLATE)


def conversation(qa_pairs, with_answers=True, image=True):
    """Messages for one image: the image goes with the first question. qa_pairs: [(question, answer)]."""
    messages = []
    for i, (question, answer) in enumerate(qa_pairs):
        content = ([{"type": "image"}] if i == 0 and image else []) + [{"type": "text", "text": question}]
        messages.append({"role": "user", "content": content})
        if with_answers:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


def render_chat(messages, add_generation_prompt=False):
    return _template.render(messages=messages, add_generation_prompt=add_generation_prompt, eos_token=SPECIAL["eos"])


def encode(tokenizer, qa_pairs, with_answers=True, image=True):
    """Token ids with the <image> placeholder expanded to NUM_VISUAL copies (as LlavaProcessor does),
    and labels: the answer tokens and their </s>, -100 elsewhere. image=False: a text-only chat."""
    text = render_chat(conversation(qa_pairs, with_answers, image), add_generation_prompt=not with_answers)
    enc = tokenizer.encode(text)
    spans, cursor = [], 0
    for _, answer in qa_pairs if with_answers else []:
        target = f"ASSISTANT: {answer}{SPECIAL['eos']}"
        at = text.index(target, cursor)
        spans.append((at + len("ASSISTANT:"), at + len(target)))  # from the space, which "▁answer" covers
        cursor = at + len(target)
    labels = [tid if any(a <= start < b for a, b in spans) else -100 for tid, (start, _) in zip(enc.ids, enc.offsets)]
    if not image:
        return enc.ids, labels
    image_id = tokenizer.token_to_id(SPECIAL["image"])
    at = enc.ids.index(image_id)
    ids = enc.ids[:at] + [image_id] * NUM_VISUAL + enc.ids[at + 1:]
    labels = labels[:at] + [-100] * NUM_VISUAL + labels[at + 1:]
    return ids, labels


def read_split(folder, split):
    """{image path: [(question, answer, family)]} from every <split>*.jsonl shard in folder."""
    by_image = defaultdict(list)
    for shard in sorted(Path(folder).glob(f"{split}*.jsonl")):
        for line in shard.read_text().splitlines():
            if line.strip():
                item = json.loads(line)
                by_image[str(Path(folder) / item["image"])].append((item["question"], item["answer"], item["family"]))
    if not by_image:
        raise SystemExit(f"no {split}*.jsonl in {folder}: run tools/demo-model/train.sh first")
    return dict(by_image)


def load_image_uint8(path):
    """HWC uint8. The dataset's images are already 336 x 336, where CLIPImageProcessor's resize and crop are identities."""
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (IMAGE_SIZE, IMAGE_SIZE, 3), f"{path}: expected {IMAGE_SIZE}x{IMAGE_SIZE}"
    return torch.from_numpy(image.copy())


def normalize(images_uint8):
    """[B,H,W,3] uint8 -> [B,3,H,W] float32, CLIP's rescale + normalize."""
    x = images_uint8.permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def parts(model):
    """The LLaVA modules, by role (transformers >= 4.52 layout)."""
    core = model.model
    return core.vision_tower, core.multi_modal_projector, core.language_model, model.lm_head

