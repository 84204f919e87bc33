"""Detector fine-tuning pieces: DB's shrunk text targets from synthetic labels, frame crops,
and the loss (balanced cross-entropy with hard negatives, plus dice) on the probability map.

The exported detector keeps only DB's probability branch (the threshold branch is a training
aid PaddleOCR drops at export), so that is what is trained: text cores shrunk by
D = A(1 − r²)/L as in DB (r calibrated below), which the reader's unclip step grows back.
"""

from __future__ import annotations

import random
from typing import Any

import cv2
import numpy as np
import torch

# DB shrinks by r = 0.4 on its own labels' tight boxes; our labels' boxes are the fonts'
# full line height, on which the pretrained detector's cores measure about half the height
# (median of 108 station runs): r = 0.7 asks for that, so the reader's unclip still fits
SHRINK_RATIO = 0.7
CROP = 640


def shrunk_quad(quad: np.ndarray, ratio: float = SHRINK_RATIO) -> np.ndarray | None:
    """The quad moved inwards by DB's offset on every side; None when nothing is left."""
    q = np.asarray(quad, np.float32).reshape(4, 2)
    area = abs(float(cv2.contourArea(q)))
    perimeter = float(cv2.arcLength(q, True))
    if area < 1 or perimeter < 1:
        return None
    offset = area * (1 - ratio**2) / perimeter
    centre = q.mean(0)
    along = (q[1] - q[0] + q[2] - q[3]) / 2
    down = (q[3] - q[0] + q[2] - q[1]) / 2
    width, height = float(np.linalg.norm(along)), float(np.linalg.norm(down))
    if width <= 2 * offset + 1 or height <= 2 * offset + 0.5:
        return None
    u, v = along / width, down / height
    sign = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float32)
    corners = q - centre
    moved = corners - offset * (sign[:, :1] * u + sign[:, 1:] * v)
    return moved + centre


def text_target(labels: dict[str, Any], height: int, width: int, scale: float,
                offset: tuple[float, float]) -> np.ndarray:
    """Binary map (H×W uint8) of the shrunk text cores of a frame's visible text items,
    after scaling the frame by ``scale`` and cropping at ``offset`` (x, y)."""
    target = np.zeros((height, width), np.uint8)
    for item in labels["items"]:
        if not item["text"].strip() or item["occluded"] > 0.5:
            continue
        quad = np.asarray(item["quad"], np.float32) * scale - np.array(offset, np.float32)
        core = shrunk_quad(quad)
        if core is not None:
            cv2.fillPoly(target, [np.round(core).astype(np.int32)], 1)
    return target


def detector_sample(image: np.ndarray, labels: dict[str, Any], rng: random.Random,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """A CROP×CROP training crop (uint8 RGB) of a frame at a random scale, near the plate,
    and its target map."""
    scale = rng.uniform(0.6, 1.0)
    h, w = image.shape[:2]
    scaled = cv2.resize(image, (max(CROP, round(w * scale)), max(CROP, round(h * scale))),
                        interpolation=cv2.INTER_AREA)
    sy, sx = scaled.shape[0] / h, scaled.shape[1] / w
    corners = np.asarray(labels["plate"]["corners"], np.float32) * [sx, sy]
    cx, cy = corners.mean(0) + np.array([rng.uniform(-150, 150), rng.uniform(-150, 150)])
    x0 = int(np.clip(cx - CROP / 2, 0, scaled.shape[1] - CROP))
    y0 = int(np.clip(cy - CROP / 2, 0, scaled.shape[0] - CROP))
    crop = np.ascontiguousarray(scaled[y0: y0 + CROP, x0: x0 + CROP])
    # the quads are in frame pixels: map with the same (anisotropic) scale
    items = {**labels, "items": [{**it, "quad": (np.asarray(it["quad"], np.float32)
                                                 * [sx, sy]).tolist()}
                                 for it in labels["items"]]}
    return crop, text_target(items, CROP, CROP, 1.0, (x0, y0))


def detector_loss(model: Any, pixels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Balanced BCE (every positive, the hardest negatives up to 3× as many) plus dice."""
    logits = model(pixels, logits=True)["logits"][:, 0]
    targets = targets.float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets,
                                                               reduction="none")
    positive = targets > 0.5
    n_pos = int(positive.sum())
    negatives = bce[~positive]
    n_neg = min(int(negatives.numel()), max(3 * n_pos, 1000))
    hard = torch.topk(negatives.flatten(), n_neg).values if n_neg else negatives.sum() * 0
    balanced = (bce[positive].sum() + hard.sum()) / max(1, n_pos + n_neg)
    prob = torch.sigmoid(logits)
    dice = 1 - (2 * (prob * targets).sum() + 1) / (prob.sum() + targets.sum() + 1)
    return balanced + dice


def detector_batch(samples: list[tuple[np.ndarray, np.ndarray]], device: str,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised B×3×H×W BGR pixels in -1..1 and B×H×W targets."""
    pixels = np.stack([s[0][:, :, ::-1] for s in samples]).astype(np.float32) / 127.5 - 1.0
    targets = np.stack([s[1] for s in samples])
    return (torch.from_numpy(pixels.transpose(0, 3, 1, 2).copy()).to(device),
            torch.from_numpy(targets).to(device))
