"""Text detection with PP-OCR's DB network: frame → probability map → text-run quads.

Pre-processing bounds the cost for frames of any size (the longer side is scaled to
``limit``, both sides to multiples of 32); post-processing follows DB's recipe: threshold,
connected regions, minimum-area rectangles scored on the map, grown back ("unclipped") by a
distance proportional to area / perimeter. Quads are ordered TL, TR, BR, BL along the
frame's dominant text direction (the 0°/180° question is left to the orientation model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch


@dataclass(frozen=True)
class DetectorSettings:
    """Knobs of the DB post-processing (PaddleOCR's defaults, a stricter box score and a
    tighter unclip)."""

    limit: int = 960          # longer side of the detector's input, pixels
    threshold: float = 0.3    # probability that makes a pixel "text"
    box_score: float = 0.55   # mean probability a box needs to be kept
    # growth: area × unclip / perimeter on every side. 1.2, not RapidOCR's 1.6: the
    # fine-tuned recogniser reads tighter crops better (about 2 points more values in text,
    # sessions 13 and 14). The calibration (calibration.json) is fitted on reads made at
    # this setting: change the two together.
    unclip: float = 1.2
    min_side: float = 3.0     # shorter side of a kept box, detector pixels
    max_boxes: int = 400


def _input_side(side: float) -> int:
    return max(32, round(side / 32) * 32)


def usual_frame_input(limit: int) -> tuple[int, int]:
    """The detector's input height and width for a camera's usual 4:3 landscape frame at
    the longest side ``limit`` (what compiling and capturing at start prepare for)."""
    return _input_side(limit * 3 / 4), _input_side(limit)


def detector_input(image: np.ndarray, limit: int) -> tuple[np.ndarray, float, float]:
    """Resize an RGB frame for the detector; returns (H×W×3 uint8 RGB array, x scale,
    y scale) where a detector pixel × scale is a frame pixel. Normalising to the network's
    -1..1 BGR input happens on the device (a quarter of the bytes to copy)."""
    h, w = image.shape[:2]
    ratio = min(1.0, limit / max(h, w))
    new_h, new_w = _input_side(h * ratio), _input_side(w * ratio)
    interpolation = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    return resized, w / new_w, h / new_h


def stack_inputs(arrays: list[np.ndarray]) -> torch.Tensor:
    """Batch resized uint8 frames of different sizes as B×3×H×W, padded bottom/right with
    mid-grey (the network's zero) to the largest."""
    height = max(a.shape[0] for a in arrays)
    width = max(a.shape[1] for a in arrays)
    batch = np.full((len(arrays), height, width, 3), 127, np.uint8)
    for i, a in enumerate(arrays):
        batch[i, : a.shape[0], : a.shape[1]] = a
    return torch.from_numpy(batch).permute(0, 3, 1, 2)


def _box_score(prob: np.ndarray, box: np.ndarray) -> float:
    # plain Python on the four corners: numpy's per-call cost was most of this (it runs
    # for every region of every frame)
    h, w = prob.shape
    xs, ys = box[:, 0].tolist(), box[:, 1].tolist()
    x0, y0 = min(max(math.floor(min(xs)), 0), w - 1), min(max(math.floor(min(ys)), 0), h - 1)
    x1, y1 = min(max(math.ceil(max(xs)), 0), w - 1), min(max(math.ceil(max(ys)), 0), h - 1)
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [np.round(box - np.array([x0, y0])).astype(np.int32)], 1)
    return float(cv2.mean(prob[y0: y1 + 1, x0: x1 + 1], mask)[0])


def boxes_from_map(prob: np.ndarray, settings: DetectorSettings,
                   ) -> list[tuple[tuple[float, float], tuple[float, float], float]]:
    """Rotated rectangles ((cx, cy), (w, h), angle) of text in a probability map,
    grown back to the full text size, in detector pixels."""
    bitmap = (prob > settings.threshold).view(np.uint8)  # 0/1 bytes, no copy
    grown = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(grown, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    contours = sorted(contours, key=cv2.contourArea, reverse=True)[: settings.max_boxes]
    rects = []
    for contour in contours:
        if len(contour) < 4:
            continue
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if min(w, h) < settings.min_side:
            continue
        if _box_score(prob, cv2.boxPoints(((cx, cy), (w, h), angle))) < settings.box_score:
            continue
        grow = w * h * settings.unclip / (2 * (w + h))
        w, h = w + 2 * grow, h + 2 * grow
        if min(w, h) < settings.min_side + 2:
            continue
        rects.append(((cx, cy), (w, h), angle))
    return rects


def text_direction(rects: list[tuple[tuple[float, float], tuple[float, float], float]],
                   ) -> float:
    """The frame's reading direction in radians (modulo π), from the long axes of elongated
    boxes, weighted by length; 0 (left to right) when no box is elongated."""
    sx = sy = 0.0
    for _, (w, h), angle in rects:
        long_side, short_side = max(w, h), min(w, h)
        if long_side < 2 * short_side:
            continue
        theta = math.radians(angle) + (0 if w >= h else math.pi / 2)
        sx += long_side * math.cos(2 * theta)
        sy += long_side * math.sin(2 * theta)
    if sx == 0 and sy == 0:
        return 0.0
    return 0.5 * math.atan2(sy, sx)


def ordered_quads(rects: list[tuple[tuple[float, float], tuple[float, float], float]],
                  direction: float) -> np.ndarray:
    """Each rectangle's corners as TL, TR, BR, BL, reading along ``direction``: N×4×2.
    All at once: numpy's cost per call, not the arithmetic, was the price of one at a
    time."""
    if not rects:
        return np.zeros((0, 4, 2), np.float32)
    corners = np.stack([cv2.boxPoints(rect) for rect in rects]).astype(np.float32)
    u = np.array([math.cos(direction), math.sin(direction)], np.float32)
    v = np.array([-u[1], u[0]], np.float32)
    offsets = corners - corners.mean(1, keepdims=True)
    along, down = offsets @ u, offsets @ v
    by_down = np.argsort(down, axis=1)
    rows = np.arange(len(rects))[:, None]
    top, bottom = by_down[:, :2], by_down[:, 2:]
    top = np.take_along_axis(top, np.argsort(along[rows, top], axis=1), 1)
    bottom = np.take_along_axis(bottom, np.argsort(along[rows, bottom], axis=1), 1)
    order = np.concatenate([top, bottom[:, ::-1]], axis=1)  # TL, TR, BR, BL
    return np.take_along_axis(corners, order[:, :, None], 1)


def detect_quads(prob: np.ndarray, scale_x: float, scale_y: float,
                 settings: DetectorSettings) -> list[np.ndarray]:
    """Text-run quads (TL, TR, BR, BL) in frame pixels from one probability map."""
    rects = boxes_from_map(prob, settings)
    quads = ordered_quads(rects, text_direction(rects)) * np.array([scale_x, scale_y],
                                                                    np.float32)
    centres = quads.mean(1)
    order = sorted(range(len(quads)), key=lambda i: (float(centres[i, 1]),
                                                     float(centres[i, 0])))
    return [quads[i] for i in order]
