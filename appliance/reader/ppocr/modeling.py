"""PP-OCR networks (text detector, line recogniser, 0°/180° classifier) as transformers
models: a config that carries the converted graph and, for the recogniser, its character
set; weights as safetensors; ``save_pretrained``/``from_pretrained`` like any other model.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel

from appliance.reader.ppocr.graph import GraphNet

TASKS = ("detection", "recognition", "orientation")


class PPOCRConfig(PretrainedConfig):
    """One converted PP-OCR network.

    ``task`` is detection (probability map of text), recognition (CTC over ``charset``,
    index 0 the blank) or orientation (0° / 180°). ``graph`` is the converted network
    (see :mod:`appliance.reader.ppocr.graph`); ``logits`` names the value before the final
    softmax, for training. ``origin`` records where the pretrained weights came from.
    """

    model_type = "nameplate_ppocr"

    def __init__(self, task: str = "recognition", graph: dict[str, Any] | None = None,
                 logits: str | None = None, charset: list[str] | None = None,
                 input_height: int = 48, mean: float = 0.5, std: float = 0.5,
                 origin: dict[str, str] | None = None, **kwargs: Any) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, not {task!r}")
        self.task = task
        self.graph = graph or {"inputs": ["x"], "outputs": ["x"], "nodes": [],
                               "literals": {}, "params": {}, "buffers": {}}
        self.logits = logits
        self.charset = list(charset or [])
        self.input_height = input_height
        self.mean = mean
        self.std = std
        self.origin = dict(origin or {})
        super().__init__(**kwargs)


class PPOCRModel(PreTrainedModel):
    """A PP-OCR network. ``forward(pixel_values)`` takes normalised B×3×H×W pixels and
    returns ``probs`` (the network's own output) or, with ``logits=True``, the values
    before its final softmax/sigmoid."""

    config_class = PPOCRConfig
    main_input_name = "pixel_values"
    base_model_prefix = "ppocr"

    def __init__(self, config: PPOCRConfig) -> None:
        super().__init__(config)
        self.net = GraphNet(config.graph)
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        """Nothing to initialise: every weight comes from the converted checkpoint."""

    def forward(self, pixel_values: torch.Tensor, *, logits: bool = False,
                classes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Run the network; see the class docstring for what comes back. ``classes``
        (with ``logits``): compute those logit columns only, in that order (the same values
        as indexing the full logits, without the rest of the output layer's work)."""
        if logits:
            if not self.config.logits:
                raise ValueError("this network has no logits output recorded")
            head = self.net.linear_head(self.config.logits) if classes is not None else None
            if head is not None:
                features, weight, bias = head
                hidden = self.net(pixel_values, until=features)[features]
                return {"logits": torch.nn.functional.linear(
                    hidden, self.net.tensor(weight).index_select(1, classes).t(),
                    self.net.tensor(bias).index_select(0, classes))}
            out = self.net(pixel_values, until=self.config.logits)[self.config.logits]
            return {"logits": out if classes is None else out.index_select(-1, classes)}
        out = self.net(pixel_values)
        return {"probs": out[self.config.graph["outputs"][0]]}
