"""Geometry shared by the synthetic engine and the reader: quads, rectified text crops."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np


def padded_quad(quad: np.ndarray | list[list[float]], pad: float) -> np.ndarray:
    """``quad`` (TL, TR, BR, BL) grown by ``pad`` × its height on every side."""
    q = np.asarray(quad, np.float32).reshape(4, 2)
    top = q[1] - q[0]
    side = q[3] - q[0]
    text_h = max(1.0, float(np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2)
    ux = top / max(1e-6, float(np.linalg.norm(top)))
    uy = side / max(1e-6, float(np.linalg.norm(side)))
    m = pad * text_h
    return np.array([q[0] - m * ux - m * uy, q[1] + m * ux - m * uy,
                     q[2] + m * ux + m * uy, q[3] - m * ux + m * uy], np.float32)


def sub_quad(quad: np.ndarray, start: float, end: float) -> np.ndarray:
    """The part of ``quad`` between fractions ``start`` and ``end`` of its length."""
    q = np.asarray(quad, np.float32)
    s, e = max(0.0, min(1.0, start)), max(0.0, min(1.0, end))
    return np.array([q[0] + s * (q[1] - q[0]), q[0] + e * (q[1] - q[0]),
                     q[3] + e * (q[2] - q[3]), q[3] + s * (q[2] - q[3])], np.float32)


def quad_box(quad: np.ndarray) -> tuple[int, int, int, int]:
    """Axis-aligned integer box around ``quad``."""
    q = np.asarray(quad, np.float32)
    return (int(q[:, 0].min()), int(q[:, 1].min()), int(np.ceil(q[:, 0].max())),
            int(np.ceil(q[:, 1].max())))


def upright_boxes(quads: Sequence[np.ndarray]) -> list[tuple[int, int, int, int]]:
    """Each text quad's box in the plate's own frame: turned back by the median slope of
    the quads' top edges, so that the rows of a tilted plate stay rows (a value at the far
    right of a row otherwise sits lower than its label by most of a line)."""
    angles = [math.atan2(*(np.asarray(q)[1] - np.asarray(q)[0])[::-1]) for q in quads]
    angle = float(np.median(angles)) if angles else 0.0
    turn = np.array([[math.cos(-angle), -math.sin(-angle)],
                     [math.sin(-angle), math.cos(-angle)]])
    boxes = []
    for quad in quads:
        q = np.asarray(quad) @ turn.T
        boxes.append((int(q[:, 0].min()), int(q[:, 1].min()), int(q[:, 0].max()),
                      int(q[:, 1].max())))
    return boxes


def rectify_quad(image: np.ndarray, quad: np.ndarray | list[list[float]], *, height: int = 32,
                 pad: float = 0.12, max_width: int = 1024) -> np.ndarray:
    """Cut the quadrilateral ``quad`` (TL, TR, BR, BL) out of ``image``, upright, ``height`` px.

    The crop keeps the text's aspect ratio and adds ``pad`` × text height around it.
    """
    q = np.asarray(quad, np.float32).reshape(4, 2)
    text_w = max(1.0, float(np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2)
    text_h = max(1.0, float(np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2)
    m = pad * text_h
    src = padded_quad(q, pad)
    out_w = round((text_w + 2 * m) / (text_h + 2 * m) * height)
    out_w = max(8, min(max_width, out_w))
    dst = np.array([[0, 0], [out_w, 0], [out_w, height], [0, height]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(image, matrix, (out_w, height), flags=cv2.INTER_AREA
                               if text_h > height else cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
