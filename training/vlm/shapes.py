"""Random models of a real model's shape, from a config file (for GPU benchmarks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from training.vlm.tiny import char_tokenizer


def random_glm4v(config_file: Path, *, device: str = "cuda",
                 dtype: torch.dtype = torch.bfloat16) -> tuple[Any, Any, Any]:
    """(model, tokenizer, image processor): a GLM-4V model of the file's shape with random
    weights, a character tokenizer whose special-token ids are written into the config, and
    the family's image processor (one LLM token per 28×28 pixels). The character tokenizer
    makes the text part of a prompt longer than GLM's own tokenizer would (the image tokens,
    768 for a 896×672 frame, dominate either way)."""
    from transformers import Glm4vConfig, Glm4vForConditionalGeneration

    try:  # transformers ≥ 5.2x names the PIL image processor apart
        from transformers import Glm4vImageProcessorPil as ImageProcessor
    except ImportError:
        from transformers import Glm4vImageProcessor as ImageProcessor  # type: ignore[assignment]

    data = {k: v for k, v in json.loads(config_file.read_text()).items()
            if not k.startswith("_") and k != "model_type"}
    tokenizer = char_tokenizer("glm4v")
    ids = {name: int(tokenizer.convert_tokens_to_ids(token)) for name, token in [  # type: ignore[arg-type]
        ("image_token_id", "<|image|>"), ("image_start_token_id", "<|begin_of_image|>"),
        ("image_end_token_id", "<|end_of_image|>"), ("video_token_id", "<|video|>"),
        ("video_start_token_id", "<|begin_of_video|>"),
        ("video_end_token_id", "<|end_of_video|>")]}
    config = Glm4vConfig(**{**data, **ids})
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Glm4vForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    model.generation_config.eos_token_id = [int(tokenizer.convert_tokens_to_ids("<|endoftext|>"))]  # type: ignore[arg-type]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    processor = ImageProcessor()  # the family's defaults: 768 tokens for 896×672
    return model.eval(), tokenizer, processor
