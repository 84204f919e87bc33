"""Evidence pictures: field boxes drawn on the frame, a field's crop enlarged."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

STATUS_COLOURS = {"ok": (21, 128, 61), "mismatch": (185, 28, 28)}
OTHER = (180, 83, 9)


def draw_boxes(rgb: np.ndarray, fields: dict[str, dict[str, Any]]) -> np.ndarray:
    """A copy of the frame with each field's box in its status colour and its name."""
    out = rgb.copy()
    scale = max(1.0, rgb.shape[1] / 1000)
    for name, field in fields.items():
        box = field.get("box")
        if not box:
            continue
        x0, y0, x1, y1 = (int(v) for v in box)
        colour = STATUS_COLOURS.get(str(field.get("status")), OTHER)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, max(2, int(2 * scale)))
        label = f"{name}: {field.get('status')}"
        size, base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, 1)
        top = max(0, y0 - size[1] - base - 2)
        cv2.rectangle(out, (x0, top), (x0 + size[0] + 4, top + size[1] + base + 2), colour, -1)
        cv2.putText(out, label, (x0 + 2, top + size[1] + 1), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * scale, (255, 255, 255), max(1, int(scale)), cv2.LINE_AA)
    return out


def crop_box(rgb: np.ndarray, box: list[int], *, height: int = 96) -> np.ndarray:
    """The box with a 25 % margin, scaled to ``height`` pixels."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in box)
    mx, my = (x1 - x0) // 4 + 2, (y1 - y0) // 4 + 2
    crop = rgb[max(0, y0 - my):min(h, y1 + my), max(0, x0 - mx):min(w, x1 + mx)]
    if crop.size == 0:
        crop = rgb
    scale = height / crop.shape[0]
    return cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


def jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    """JPEG bytes of an RGB array."""
    _, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                          [cv2.IMWRITE_JPEG_QUALITY, quality])
    return bytes(buf.tobytes())
