"""Tiny random image-text-to-text models of two families transformers ships (GLM-4V and
Qwen2-VL), saved as a local model folder the ``vlm`` backend loads like real weights.

The tokenizer is made offline: one token per printable character plus the family's special
tokens, with the family's chat template. Random weights read nothing, but every part of the
path (folder, processor, prompt, image tokens, generate, parsing, likelihood) runs for real.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    Glm4vConfig,
    Glm4vForConditionalGeneration,
    PreTrainedTokenizerFast,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
)

FAMILIES: dict[str, dict[str, Any]] = {
    "glm4v": {
        "specials": ["<|endoftext|>", "[gMASK]", "<sop>", "<|user|>", "<|assistant|>",
                     "<|system|>", "<|image|>", "<|begin_of_image|>", "<|end_of_image|>",
                     "<|video|>", "<|begin_of_video|>", "<|end_of_video|>"],
        "template": (
            "[gMASK]<sop>{% for m in messages %}<|{{ m.role }}|>\n"
            "{% if m.content is string %}{{ m.content }}{% else %}{% for c in m.content %}"
            "{% if c.type == 'image' %}<|begin_of_image|><|image|><|end_of_image|>"
            "{% else %}{{ c.text }}{% endif %}{% endfor %}{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"),
        "eos": "<|endoftext|>", "pad": "<|endoftext|>",
    },
    "qwen2vl": {
        "specials": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|image_pad|>",
                     "<|vision_start|>", "<|vision_end|>", "<|video_pad|>"],
        "template": (
            "{% for m in messages %}<|im_start|>{{ m.role }}\n"
            "{% if m.content is string %}{{ m.content }}{% else %}{% for c in m.content %}"
            "{% if c.type == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
            "{% else %}{{ c.text }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
            "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"),
        "eos": "<|im_end|>", "pad": "<|endoftext|>",
    },
}


def char_tokenizer(family: str) -> PreTrainedTokenizerFast:
    """A character-level tokenizer with ``family``'s special tokens and chat template."""
    spec = FAMILIES[family]
    chars = sorted(set(string.printable) | set("°·µΩ×–—’"))
    vocab = {token: i for i, token in enumerate([*spec["specials"], "<unk>", *chars])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>",
                                        eos_token=spec["eos"], pad_token=spec["pad"],
                                        additional_special_tokens=list(spec["specials"]))
    tokenizer.chat_template = spec["template"]
    return tokenizer


def _ids(tokenizer: PreTrainedTokenizerFast, *tokens: str) -> list[int]:
    return [int(tokenizer.convert_tokens_to_ids(t)) for t in tokens]  # type: ignore[arg-type]


def tiny_model(family: str) -> tuple[Any, PreTrainedTokenizerFast, Any]:
    """(model, tokenizer, image processor) of ``family`` with a few thousand random weights."""
    from transformers import Glm4vImageProcessorPil, Qwen2VLImageProcessorPil

    tokenizer = char_tokenizer(family)
    text = {"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 8192}
    pixels = {"min_pixels": 28 * 28 * 4, "max_pixels": 28 * 28 * 48}
    config: Any
    model: Any
    processor: Any
    if family == "glm4v":
        image, begin, end, video, vbegin, vend = _ids(
            tokenizer, "<|image|>", "<|begin_of_image|>", "<|end_of_image|>", "<|video|>",
            "<|begin_of_video|>", "<|end_of_video|>")
        config = Glm4vConfig(
            text_config={**text, "rope_parameters": {
                "rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                "mrope_section": [1, 1, 0]}},
            vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64,
                           "num_heads": 4, "out_hidden_size": 32, "patch_size": 14,
                           "spatial_merge_size": 2, "temporal_patch_size": 2, "image_size": 56},
            image_token_id=image, image_start_token_id=begin, image_end_token_id=end,
            video_token_id=video, video_start_token_id=vbegin, video_end_token_id=vend)
        model = Glm4vForConditionalGeneration(config)
        processor = Glm4vImageProcessorPil(size={"shortest_edge": pixels["min_pixels"],
                                                 "longest_edge": pixels["max_pixels"]})
    else:
        image, begin, end, video = _ids(tokenizer, "<|image_pad|>", "<|vision_start|>",
                                        "<|vision_end|>", "<|video_pad|>")
        config = Qwen2VLConfig(
            text_config={**text, "rope_parameters": {"rope_type": "default",
                                                     "rope_theta": 10000.0,
                                                     "mrope_section": [1, 1, 2]}},
            vision_config={"depth": 2, "embed_dim": 32, "hidden_size": 32, "num_heads": 4,
                           "mlp_ratio": 2, "patch_size": 14, "spatial_merge_size": 2,
                           "temporal_patch_size": 2, "in_channels": 3},
            image_token_id=image, video_token_id=video, vision_start_token_id=begin,
            vision_end_token_id=end)
        model = Qwen2VLForConditionalGeneration(config)
        processor = Qwen2VLImageProcessorPil(min_pixels=pixels["min_pixels"],
                                             max_pixels=pixels["max_pixels"])
    model.generation_config.eos_token_id = _ids(tokenizer, str(FAMILIES[family]["eos"]))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, processor


def save_tiny_model(family: str, folder: Path, *, seed: int = 0) -> Path:
    """Write a tiny random ``family`` model folder (config, safetensors, tokenizer, image
    processor) that loads with ``from_pretrained(folder, local_files_only=True)``. The
    weights come from ``seed``: an unseeded random model now and then closes a JSON object
    by chance, which made tests of the token cap flaky."""
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model, tokenizer, processor = tiny_model(family)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def teach_answer(model: Any, tokenizer: Any, image_processor: Any, image: Any, prompt: str,
                 answer: str, *, steps: int = 200, lr: float = 3e-3) -> float:
    """Train ``model`` (in place) to give ``answer`` to ``prompt`` about ``image``, by teacher
    forcing; returns the final loss. Makes a tiny model whose generation is known, so tests
    can check parsing, merging and verify-by-likelihood on real model outputs."""
    import torch

    from appliance.reader.vlm.inputs import InputBuilder

    accepts = "mm_token_type_ids" in __import__("inspect").signature(model.forward).parameters
    builder = InputBuilder(tokenizer, image_processor, model.config, token_types=accepts)
    eos = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    batch = builder.build([image], [prompt])
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [eos]
    tensors = dict(batch.tensors)
    tail = torch.tensor([answer_ids])
    tensors["input_ids"] = torch.cat([tensors["input_ids"], tail], dim=1)
    tensors["attention_mask"] = torch.ones_like(tensors["input_ids"])
    if accepts:
        tensors["mm_token_type_ids"] = builder.types_of(tensors["input_ids"])
    labels = torch.full_like(tensors["input_ids"], -100)
    labels[0, -len(answer_ids):] = tail[0]
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    loss = torch.tensor(0.0)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = model(**tensors, labels=labels).loss
        loss.backward()
        optimiser.step()
    model.eval()
    return float(loss.detach())
