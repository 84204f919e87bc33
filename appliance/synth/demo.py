"""Clean demo plates for the embedded default: the values of an ERP record on a metal plate.

Plates are drawn big and sharp so that every reader, Tesseract included, reads them; the
variety needed for training lives in the synthetic engine (``nameplate synth``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from appliance.synth.fonts import DEMO_FONT, font_path

Box = tuple[int, int, int, int]

LABELS = {
    "model": "Type",
    "serial": "S/N",
    "voltage": "Voltage",
    "current": "Current",
    "power": "Power",
    "frequency": "Frequency",
    "speed": "Speed",
    "manufactured": "Date",
    "ip_rating": "Protection",
}


@dataclass
class RenderedPlate:
    """A rendered frame with the box of every drawn field value."""

    image: np.ndarray
    boxes: dict[str, Box]


def render_demo_plate(values: dict[str, str], *, seed: int = 0,
                      size: tuple[int, int] = (1280, 960),
                      labels: dict[str, str] | None = None) -> RenderedPlate:
    """Render ``values`` (schema field → text) as a clean plate in a camera-sized frame.

    ``labels`` replaces the label words of some fields (e.g. another language).
    """
    rng = random.Random(seed)
    width, height = size
    frame = Image.new("RGB", size, (70 + rng.randint(0, 20),) * 3)
    plate_w, plate_h = 980, 780
    px = (width - plate_w) // 2 + rng.randint(-30, 30)
    py = (height - plate_h) // 2 + rng.randint(-30, 30)
    metal = np.full((plate_h, plate_w, 3), 205, np.float32)
    metal += np.random.default_rng(seed).normal(0, 4, (plate_h, 1, 1)).astype(np.float32)
    plate = Image.fromarray(np.clip(metal, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(plate)
    draw.rectangle((8, 8, plate_w - 9, plate_h - 9), outline=(40, 40, 40), width=4)
    title = ImageFont.truetype(str(font_path(DEMO_FONT)), 52)
    body = ImageFont.truetype(str(font_path(DEMO_FONT)), 38)
    boxes: dict[str, Box] = {}
    ink = (20, 20, 25)
    if values.get("manufacturer"):
        text = values["manufacturer"]
        draw.text((40, 30), text, font=title, fill=ink)
        boxes["manufacturer"] = _offset(draw.textbbox((40, 30), text, font=title), px, py)
    y = 120
    for field, label in {**LABELS, **(labels or {})}.items():
        value = values.get(field)
        if not value:
            continue
        draw.text((40, y), f"{label}:", font=body, fill=ink)
        draw.text((330, y), value, font=body, fill=ink)
        boxes[field] = _offset(draw.textbbox((330, y), value, font=body), px, py)
        y += 70
    frame.paste(plate.filter(ImageFilter.GaussianBlur(0.6)), (px, py))
    return RenderedPlate(np.asarray(frame), boxes)


def _offset(box: tuple[float, float, float, float], dx: int, dy: int) -> Box:
    return (int(box[0]) + dx, int(box[1]) + dy, int(box[2]) + dx, int(box[3]) + dy)
