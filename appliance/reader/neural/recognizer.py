"""Text-line recognizer: ``VisionEncoderDecoderModel`` = a line encoder (CNN stem +
transformer, with a CTC head) + a character-level TrOCR decoder for ``generate``.

CTC reads a whole batch of lines in one forward pass and scores any candidate string exactly
(verify mode); the attention decoder (``generate``, capped ``max_new_tokens``) is the second
opinion for lines CTC is unsure of.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    PretrainedConfig,
    PreTrainedModel,
    TrOCRConfig,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
)
from transformers.modeling_outputs import BaseModelOutput

from appliance.reader.neural.vocab import BOS_ID, EOS_ID, PAD_ID, CharVocab

LINE_HEIGHT = 32
MAX_WIDTH = 640
STRIDE = 4  # input pixels per encoder position


class LineEncoderConfig(PretrainedConfig):
    """Size of the line encoder."""

    model_type = "nameplate_line_encoder"

    def __init__(self, hidden_size: int = 256, num_hidden_layers: int = 4,
                 num_attention_heads: int = 4, intermediate_size: int = 1024,
                 ctc_vocab_size: int = 200, max_positions: int = MAX_WIDTH // STRIDE + 8,
                 dropout: float = 0.1, **kwargs: Any) -> None:
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.ctc_vocab_size = ctc_vocab_size
        self.max_positions = max_positions
        self.dropout = dropout
        super().__init__(**kwargs)


def _conv(cin: int, cout: int, kernel: tuple[int, int], stride: tuple[int, int],
          pad: tuple[int, int] | None = None) -> nn.Sequential:
    pad = pad if pad is not None else (kernel[0] // 2, kernel[1] // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, pad, bias=False),
                         nn.BatchNorm2d(cout), nn.GELU())


class LineEncoder(PreTrainedModel):
    """32×W grey line image → W/4 feature vectors (+ CTC logits through ``ctc_head``)."""

    config_class = LineEncoderConfig
    main_input_name = "pixel_values"

    def __init__(self, config: LineEncoderConfig) -> None:
        super().__init__(config)
        d = config.hidden_size
        self.stem = nn.Sequential(
            _conv(1, 64, (3, 3), (2, 2)),      # 16 × W/2
            _conv(64, 128, (3, 3), (2, 2)),    # 8 × W/4
            _conv(128, 192, (3, 3), (2, 1)),   # 4 × W/4
            _conv(192, d, (4, 3), (4, 1), (0, 1)),  # 1 × W/4
        )
        self.positions = nn.Parameter(torch.zeros(1, config.max_positions, d))
        layer = nn.TransformerEncoderLayer(d, config.num_attention_heads,
                                           config.intermediate_size, config.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, config.num_hidden_layers,
                                            enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.ctc_head = nn.Linear(d, config.ctc_vocab_size)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, LineEncoder):
            nn.init.normal_(module.positions, std=0.02)
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, pixel_values: torch.Tensor, output_attentions: bool | None = None,
                output_hidden_states: bool | None = None, return_dict: bool | None = None,
                **_: object) -> BaseModelOutput:
        """``pixel_values``: B×1×32×W (normalised per line)."""
        x = self.stem(pixel_values).squeeze(2).transpose(1, 2)  # B × T × d
        x = x + self.positions[:, : x.shape[1]]
        x = self.norm(self.layers(x))
        return BaseModelOutput(last_hidden_state=x)

    def ctc_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """CTC logits (B × T × vocab) from the encoder's hidden states."""
        logits: torch.Tensor = self.ctc_head(hidden)
        return logits


AutoConfig.register(LineEncoderConfig.model_type, LineEncoderConfig)
AutoModel.register(LineEncoderConfig, LineEncoder)


def build_recognizer(vocab: CharVocab, *, hidden: int = 256, encoder_layers: int = 4,
                     decoder_layers: int = 3, max_new_tokens: int = 48,
                     ) -> VisionEncoderDecoderModel:
    """A fresh (untrained) recognizer for ``vocab``."""
    encoder = LineEncoderConfig(hidden_size=hidden, num_hidden_layers=encoder_layers,
                                num_attention_heads=max(1, hidden // 64),
                                intermediate_size=4 * hidden, ctc_vocab_size=len(vocab))
    decoder = TrOCRConfig(vocab_size=len(vocab), d_model=hidden, decoder_layers=decoder_layers,
                          decoder_attention_heads=max(1, hidden // 64),
                          decoder_ffn_dim=4 * hidden, max_position_embeddings=128,
                          pad_token_id=PAD_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID,
                          decoder_start_token_id=BOS_ID, use_learned_position_embeddings=True,
                          layernorm_embedding=True, scale_embedding=True,
                          is_decoder=True, add_cross_attention=True)  # type: ignore[call-arg]
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = BOS_ID
    config.pad_token_id = PAD_ID
    config.eos_token_id = EOS_ID
    model = VisionEncoderDecoderModel(config=config)
    model.generation_config.decoder_start_token_id = BOS_ID
    model.generation_config.bos_token_id = BOS_ID
    model.generation_config.eos_token_id = EOS_ID
    model.generation_config.pad_token_id = PAD_ID
    model.generation_config.max_new_tokens = max_new_tokens
    return model


def prepare_lines(crops: list[np.ndarray]) -> torch.Tensor:
    """Grey, 32 px high, per-line standardised crops padded into one B×1×32×W batch."""
    lines = []
    for crop in crops:
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
        if grey.shape[0] != LINE_HEIGHT:
            width = max(8, round(grey.shape[1] * LINE_HEIGHT / grey.shape[0]))
            grey = cv2.resize(grey, (width, LINE_HEIGHT), interpolation=cv2.INTER_AREA)
        if grey.shape[1] > MAX_WIDTH:
            grey = cv2.resize(grey, (MAX_WIDTH, LINE_HEIGHT), interpolation=cv2.INTER_AREA)
        values = grey.astype(np.float32)
        values = (values - values.mean()) / (values.std() + 8.0)
        lines.append(values)
    width = max(line.shape[1] for line in lines)
    width = ((width + 15) // 16) * 16
    batch = np.zeros((len(lines), 1, LINE_HEIGHT, width), np.float32)
    for i, line in enumerate(lines):
        batch[i, 0, :, : line.shape[1]] = line
    return torch.from_numpy(batch)


@dataclass
class LineReading:
    """What CTC made of one line: text, per-character confidence and encoder position."""

    text: str
    char_conf: list[float]
    char_pos: list[int]      # encoder position (× STRIDE input pixels) of each character
    width: int               # encoder positions covering the real (unpadded) line

    @property
    def confidence(self) -> float:
        """The least confident character (0 when nothing was read)."""
        return min(self.char_conf) if self.char_conf else 0.0


def ctc_greedy(log_probs: torch.Tensor, vocab: CharVocab, widths: list[int]) -> list[LineReading]:
    """Best-path decoding of B×T×V log-probabilities."""
    probs, best = log_probs.exp().max(-1)
    out = []
    for b in range(log_probs.shape[0]):
        ids = best[b, : widths[b]].tolist()
        conf = probs[b, : widths[b]].tolist()
        text, confs, positions = [], [], []
        previous = PAD_ID
        for t, token in enumerate(ids):
            if token != PAD_ID and token != previous:
                text.append(token)
                confs.append(conf[t])
                positions.append(t)
            elif token != PAD_ID and token == previous and confs:
                confs[-1] = max(confs[-1], conf[t])
            previous = token
        out.append(LineReading(vocab.decode(text), confs, positions, widths[b]))
    return out


def ctc_score(log_probs: torch.Tensor, widths: list[int], candidates: list[tuple[int, str]],
              vocab: CharVocab) -> list[float]:
    """Log-likelihood of each (line index, text) candidate under CTC (summed over paths)."""
    if not candidates:
        return []
    index = torch.tensor([c[0] for c in candidates])
    lp = log_probs[index].transpose(0, 1).float()  # T × N × V
    targets = [torch.tensor(vocab.encode(text) or [PAD_ID]) for _, text in candidates]
    target_lengths = torch.tensor([len(vocab.encode(text)) for _, text in candidates])
    input_lengths = torch.tensor([widths[i] for i, _ in candidates])
    loss = nn.functional.ctc_loss(lp.cpu(), torch.cat(targets), input_lengths, target_lengths,
                                  blank=PAD_ID, reduction="none", zero_infinity=False)
    return [-float(v) for v in loss]
