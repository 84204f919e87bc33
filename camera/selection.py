"""Choosing frames: the sharpest of a burst, and whether a part (a plate) is in view at all."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

MIN_TEXT_BLOBS = 20


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian on a grey copy at most 640 px wide (higher is sharper)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    scale = 640 / max(grey.shape)
    if scale < 1:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def select_sharpest(frames: Sequence[np.ndarray]) -> tuple[int, list[float]]:
    """Index of the sharpest frame of a burst, and every frame's sharpness."""
    if not frames:
        raise ValueError("empty burst")
    scores = [sharpness(f) for f in frames]
    return int(np.argmax(scores)), scores


def text_blobs(rgb: np.ndarray) -> int:
    """How many character-sized, high-contrast blobs the frame holds (dark or light text)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    scale = 960 / max(grey.shape)
    if scale < 1:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    count = 0
    for polarity in (cv2.THRESH_BINARY_INV, cv2.THRESH_BINARY):
        binary = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, polarity, 31, 18)
        _, _, stats, centres = cv2.connectedComponentsWithStats(binary, connectivity=8)
        w, h, area = stats[1:, 2], stats[1:, 3], stats[1:, 4]
        fill = area / np.maximum(1, w * h)
        glyph = (h >= 6) & (h <= 60) & (w >= 2) & (w <= 1.5 * h) & (fill > 0.15) & (fill < 0.9)
        xy, hh = centres[1:][glyph], h[glyph].astype(np.float32)
        if len(hh) < 2:
            continue
        # text: glyphs with a neighbour of similar height on the same row, close beside them
        dx = np.abs(xy[:, None, 0] - xy[None, :, 0])
        dy = np.abs(xy[:, None, 1] - xy[None, :, 1])
        ratio = hh[:, None] / hh[None, :]
        near = (dx > 0) & (dx < 2.5 * hh[:, None]) & (dy < 0.4 * hh[:, None]) \
            & (ratio > 0.6) & (ratio < 1.6)
        count += int(near.any(axis=1).sum())
    return count


def part_present(rgb: np.ndarray, *, min_blobs: int = MIN_TEXT_BLOBS) -> bool:
    """True when the frame shows text-like structure (a plate), not an empty background."""
    return text_blobs(rgb) >= min_blobs


def glare_fraction(rgb: np.ndarray) -> float:
    """Share of saturated pixels (≥ 250 grey) in the frame."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    return float(np.mean(grey >= 250))


def select_frame(frames: Sequence[np.ndarray], keep: str) -> int:
    """The frame to send: least glare first when ``keep`` says so, else the sharpest."""
    best, scores = select_sharpest(frames)
    if keep == "least_glare":
        return min(range(len(frames)), key=lambda i: (round(glare_fraction(frames[i]), 3),
                                                      -scores[i]))
    return best
