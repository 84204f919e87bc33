"""Text and plate detector: a small U-Net that marks text cores and the plate in a frame.

Channel 0 marks the middle band of every text run (shrunk so that neighbouring lines stay
apart), channel 1 the plate. Segments are recovered as rotated rectangles and grown back.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

BAND = 0.6        # share of a text run's height kept in the training target
END_INSET = 0.15  # inset at both ends, in text heights


class TextDetectorConfig(PretrainedConfig):
    """Size of the detector and of the frames it looks at."""

    model_type = "nameplate_text_detector"

    def __init__(self, channels: tuple[int, ...] | list[int] = (16, 32, 64, 128),
                 input_width: int = 640, input_height: int = 480, **kwargs: Any) -> None:
        self.channels = list(channels)
        self.input_width = input_width
        self.input_height = input_height
        super().__init__(**kwargs)


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


class TextDetector(PreTrainedModel):
    """U-Net: 4 stages down (stride 2 each), up with skips to full input resolution."""

    config_class = TextDetectorConfig
    main_input_name = "pixel_values"

    def __init__(self, config: TextDetectorConfig) -> None:
        super().__init__(config)
        ch = config.channels
        self.down = nn.ModuleList([_block(3 if i == 0 else ch[i - 1], ch[i], 2)
                                   for i in range(len(ch))])
        self.up = nn.ModuleList([_block(ch[i] + ch[i - 1], ch[i - 1], 1)
                                 for i in range(len(ch) - 1, 0, -1)])
        self.head = nn.Sequential(nn.Conv2d(ch[0] + 3, 16, 3, 1, 1), nn.ReLU(True),
                                  nn.Conv2d(16, 2, 1))
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                ) -> dict[str, torch.Tensor]:
        """``pixel_values`` B×3×H×W in 0..1; ``labels`` B×2×H×W targets. Returns logits/loss."""
        x = pixel_values - 0.5
        skips = [x]
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        skips.pop()
        for stage in self.up:
            skip = skips.pop()
            x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear",
                                          align_corners=False)
            x = stage(torch.cat([x, skip], 1))
        skip = skips.pop()
        x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear",
                                      align_corners=False)
        logits = self.head(torch.cat([x, skip], 1))
        out = {"logits": logits}
        if labels is not None:
            bce = nn.functional.binary_cross_entropy_with_logits(logits, labels)
            prob = torch.sigmoid(logits)
            inter = (prob * labels).sum((2, 3))
            dice = 1 - (2 * inter + 1) / (prob.sum((2, 3)) + labels.sum((2, 3)) + 1)
            out["loss"] = bce + dice.mean()
        return out


def letterbox(image: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float]:
    """``image`` scaled to fit ``width``×``height`` (top-left, zero padding), as a 3×H×W float
    array in 0..1, and the scale applied: the detector's input."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    resized = cv2.resize(image, (round(w * scale), round(h * scale)),
                         interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.float32)
    canvas[: resized.shape[0], : resized.shape[1]] = resized / 255.0
    return canvas.transpose(2, 0, 1), scale


def shrink_quad(quad: np.ndarray) -> np.ndarray:
    """The middle band of a text quad (TL, TR, BR, BL): the detector's training target."""
    q = np.asarray(quad, np.float32)
    top_mid, bottom_mid = (q[0] + q[3]) / 2, (q[1] + q[2]) / 2
    height = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    along = (bottom_mid - top_mid) / max(1e-6, float(np.linalg.norm(bottom_mid - top_mid)))
    inset = END_INSET * height
    cut = (1 - BAND) / 2
    left_t, left_b = q[0] + cut * (q[3] - q[0]), q[3] - cut * (q[3] - q[0])
    right_t, right_b = q[1] + cut * (q[2] - q[1]), q[2] - cut * (q[2] - q[1])
    return np.array([left_t + inset * along, right_t - inset * along,
                     right_b - inset * along, left_b + inset * along], np.float32)


def target_maps(quads: list[np.ndarray], plate: np.ndarray, width: int, height: int,
                scale: float) -> np.ndarray:
    """2×H×W float targets (text bands, plate) for quads given in frame pixels."""
    text = np.zeros((height, width), np.float32)
    plate_map = np.zeros((height, width), np.float32)
    for quad in quads:
        cv2.fillPoly(text, [np.round(shrink_quad(quad) * scale).astype(np.int32)], 1.0)
    cv2.fillPoly(plate_map, [np.round(np.asarray(plate) * scale).astype(np.int32)], 1.0)
    return np.stack([text, plate_map])


def order_corners(box: np.ndarray) -> np.ndarray:
    """Corners of a rotated rectangle as TL, TR, BR, BL: long side along the reading
    direction, read left to right, top edge first (a 180° plate is turned later)."""
    pts = np.asarray(box, np.float32)
    edges = [float(np.linalg.norm(pts[(i + 1) % 4] - pts[i])) for i in range(4)]
    pts = np.roll(pts, -(0 if edges[0] >= edges[1] else 1), axis=0)  # p0→p1 is a long edge
    if pts[1][0] - pts[0][0] < 0:
        pts = np.roll(pts, -2, axis=0)                                # p0→p1 runs rightwards
    if (pts[0][1] + pts[1][1]) > (pts[2][1] + pts[3][1]):
        pts = pts[[3, 2, 1, 0]]                                       # p0→p1 is the top edge
    return pts


def segments_from_maps(text_prob: np.ndarray, plate_prob: np.ndarray, *, scale: float,
                       threshold: float = 0.5, min_area: int = 6,
                       ) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Text quads and the plate quad (frame pixels) from the detector's probability maps."""
    binary = (text_prob > threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    quads = []
    for i in range(1, count):
        if stats[i, cv2.CC_STAT_AREA] < min_area:
            continue
        bx, by, bw, bh = (int(v) for v in stats[i, :4])
        ys, xs = np.nonzero(labels[by:by + bh, bx:bx + bw] == i)  # its own box: O(area)
        xs, ys = xs + bx, ys + by
        (cx, cy), (w, h), angle = cv2.minAreaRect(np.stack([xs, ys], 1).astype(np.float32))
        long_side, short_side = max(w, h), max(min(w, h), 1.0)
        full_h = short_side / BAND  # fillPoly includes its border: extent ≈ band height
        full_w = long_side + 2 * END_INSET * full_h
        if w >= h:
            rect = ((cx, cy), (full_w, full_h), angle)
        else:
            rect = ((cx, cy), (full_h, full_w), angle)
        quads.append(order_corners(cv2.boxPoints(rect)) / scale)
    plate = None
    pbin = (plate_prob > threshold).astype(np.uint8)
    contours, _ = cv2.findContours(pbin, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if contours:
        biggest = max(contours, key=cv2.contourArea)
        if cv2.contourArea(biggest) > 0.01 * pbin.size:
            plate = cv2.boxPoints(cv2.minAreaRect(biggest)).astype(np.float32) / scale
    return quads, plate
