"""Model inputs from images and prompts, with the image processor and tokenizer directly.

A VL processor object is not needed (some cannot be built without torchvision): the image
processor gives the patches and their grid, the tokenizer's chat template places one image
token, and that token is repeated once per merged patch, as the family's processor would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image


@dataclass
class Batch:
    """Tensors for ``generate`` or a forward pass, left-padded, and each prompt's length."""

    tensors: dict[str, torch.Tensor]
    prompt_tokens: int


class InputBuilder:
    """Turns (image, prompt[, answer]) into model inputs for one loaded model."""

    def __init__(self, tokenizer: Any, image_processor: Any, config: Any, *,
                 token_types: bool = False) -> None:
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.image_token_id = int(config.image_token_id)
        self.image_token = tokenizer.convert_ids_to_tokens(self.image_token_id)
        # newer transformers (≥ 5.2x) want the image tokens marked for multimodal RoPE
        self.token_types = token_types
        self.merge = int(getattr(config.vision_config, "spatial_merge_size", 2))
        tokenizer.padding_side = "left"

    def _prompt_text(self, prompt: str, count: int) -> str:
        messages = [{"role": "user", "content": [{"type": "image"},
                                                 {"type": "text", "text": prompt}]}]
        text: str = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                       add_generation_prompt=True)
        if text.count(self.image_token) != 1:
            raise ValueError(f"the chat template placed {text.count(self.image_token)} "
                             f"{self.image_token!r} tokens, expected 1")
        return text.replace(self.image_token, self.image_token * count)

    def build(self, images: Sequence[np.ndarray], prompts: Sequence[str],
              answers: Sequence[str] | None = None, device: str = "cpu",
              dtype: torch.dtype = torch.float32) -> Batch:
        """Inputs for a batch; with ``answers`` each row ends with its answer (teacher forcing)."""
        pixels = self.image_processor(images=[Image.fromarray(i) for i in images],
                                      return_tensors="pt")
        grid = pixels["image_grid_thw"]
        counts = [int(g.prod()) // self.merge ** 2 for g in grid]
        texts = [self._prompt_text(p, n) for p, n in zip(prompts, counts, strict=True)]
        if answers is not None:
            texts = [t + a for t, a in zip(texts, answers, strict=True)]
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True,
                                 add_special_tokens=False)
        tensors = {"input_ids": encoded["input_ids"].to(device),
                   "attention_mask": encoded["attention_mask"].to(device),
                   "pixel_values": pixels["pixel_values"].to(device, dtype),
                   "image_grid_thw": grid.to(device)}
        if self.token_types:
            tensors["mm_token_type_ids"] = self.types_of(tensors["input_ids"])
        return Batch(tensors, int(encoded["input_ids"].shape[1]))

    def types_of(self, input_ids: torch.Tensor) -> torch.Tensor:
        """1 where a token is an image token, 0 elsewhere."""
        return (input_ids == self.image_token_id).to(torch.int32)

    def encode_pieces(self, pieces: list[tuple[str, str | None]]) -> tuple[list[int],
                                                                           dict[str, slice]]:
        """Token ids of an answer given as pieces, and each value piece's token span."""
        ids: list[int] = []
        spans: dict[str, slice] = {}
        for text, field in pieces:
            piece = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if field is not None:
                spans[field] = slice(len(ids), len(ids) + len(piece))
            ids.extend(piece)
        return ids, spans
