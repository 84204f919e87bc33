"""The synthetic nameplate engine: one seed → one camera frame and its complete labels.

Pipeline: values (per schema field) → layout → glyphs → material → camera. Every random
choice comes from the sample's seed, so the same seed gives the same image.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from appliance.schema import PlateSchema
from appliance.synth.camera import background, occlude, photograph, placement
from appliance.synth.glyphs import draw_items
from appliance.synth.layout import build_layout, plate_values
from appliance.synth.legibility import (
    INK_STYLES,
    character_visibility,
    characters_clear,
    legible,
    warp_mask,
)
from appliance.synth.material import compose, plate_base, wear, worn_ink

SPLITS = ("train", "dev", "heldout", "station", "station-heldout")
#: splits rendered as a fixed inspection station sees plates: whole plate, capitals ≥ 14 px,
#: mild tilt, glare, blur and noise (fonts, layouts, materials and label words as in dev;
#: ``station-heldout`` with the held-out fonts and layouts, as ``heldout`` is to dev)
STATION_SPLITS = ("station", "station-heldout")


@dataclass
class Sample:
    """A rendered frame: RGB pixels, the JPEG bytes they came from, and the labels."""

    image: np.ndarray
    jpeg: bytes
    labels: dict[str, Any]


def sample_seed(seed: int, split: str, index: int) -> int:
    """The seed of sample ``index`` of a dataset: splits never share a seed."""
    digest = hashlib.sha256(f"{seed}/{split}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def shot_rngs(seed: int, shot: int) -> tuple[random.Random, np.random.Generator]:
    """The random streams of reshoot ``shot`` of sample ``seed`` (its camera, not its plate)."""
    digest = hashlib.sha256(f"{seed}/shot/{shot}".encode()).digest()
    derived = int.from_bytes(digest[:8], "big")
    return random.Random(derived), np.random.default_rng(derived)


def _quad(matrix: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    x0, y0, x1, y1 = box
    pts = np.array([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]], np.float32)
    return cv2.perspectiveTransform(pts, matrix)[0]


def _aabb(quad: np.ndarray) -> list[int]:
    return [math.floor(quad[:, 0].min()), math.floor(quad[:, 1].min()),
            math.ceil(quad[:, 0].max()), math.ceil(quad[:, 1].max())]


def _inside(quad: np.ndarray, w: int, h: int) -> bool:
    return bool((quad[:, 0] >= 0).all() and (quad[:, 0] <= w).all()
                and (quad[:, 1] >= 0).all() and (quad[:, 1] <= h).all())


def _overlap(box: list[int], other: tuple[float, float, float, float] | None) -> float:
    if other is None:
        return 0.0
    ix = max(0.0, min(box[2], other[2]) - max(box[0], other[0]))
    iy = max(0.0, min(box[3], other[3]) - max(box[1], other[1]))
    area = max(1.0, (box[2] - box[0]) * (box[3] - box[1]))
    return round(ix * iy / area, 3)


def _like_the_plate(image: np.ndarray, shrink: float) -> np.ndarray:
    """A plate-space image anti-aliased before the bilinear warp shrinks it into the frame, as
    a camera pixel integrates light (the plate, and the masks that must match it)."""
    if shrink >= 1:
        return image
    return cv2.GaussianBlur(image, (0, 0), 0.5 * math.sqrt(1 / shrink**2 - 1))


def render_sample(seed: int, *, schema: PlateSchema, split: str = "train",
                  size: tuple[int, int] = (1280, 960),
                  omit: frozenset[int] = frozenset(), shot: int = 0) -> Sample:
    """Render one frame. ``omit`` leaves out text items by index (for render-and-compare).

    ``shot`` > 0 is a reshoot at a fixed station: the same plate in the same place, photographed
    again (new light, glare, blur, noise and compression); ``shot`` 0 is the seed's own frame.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (one of {', '.join(SPLITS)})")
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    frame_w, frame_h = size
    values = plate_values(schema, rng)
    layout = build_layout(schema, values, rng, split=split)
    ink, relief, text, boxes = draw_items(layout, rng, omit=omit)
    marks = np.maximum(ink, relief)  # before wear: where a person expects a mark
    worn = worn_ink(ink, rng, nrng)
    base, ink_colour, material = plate_base(layout.height, layout.width, rng, nrng)
    plate = compose(base, ink_colour, ink, relief, rng)
    wear_params = wear(plate, rng, nrng)

    body_size = float(np.median([it.size for it in layout.items])) if layout.items else 20.0
    station = split in STATION_SPLITS
    char_px = math.exp(rng.uniform(math.log(10), math.log(60)))
    if station:
        char_px = math.exp(rng.uniform(math.log(16), math.log(40)))
    if "dotmatrix" in (layout.params.get("style"), layout.params.get("value_style")):
        char_px = max(char_px, rng.uniform(18, 40))  # finer dots than a camera resolves: no
    matrix, place_params = placement(layout.width, layout.height, frame_w, frame_h,
                                     char_px / (0.72 * body_size), rng, station=station)
    char_px = float(place_params["scale"]) * 0.72 * body_size  # type: ignore[arg-type]
    frame = background(frame_h, frame_w, rng, nrng)
    alpha = cv2.warpPerspective(np.ones((layout.height, layout.width), np.float32), matrix,
                                (frame_w, frame_h))
    if rng.random() < 0.5:  # drop shadow under the plate
        shadow = cv2.GaussianBlur(np.roll(alpha, (6, 6), (0, 1)), (0, 0), 6)
        frame *= (1 - 0.45 * shadow)[..., None]
    shrink = float(place_params["scale"])  # type: ignore[arg-type]
    plate = _like_the_plate(plate, shrink)
    warped = cv2.warpPerspective(plate, matrix, (frame_w, frame_h), flags=cv2.INTER_LINEAR)
    frame = frame * (1 - alpha[..., None]) + warped * alpha[..., None]
    plate_quad = _quad(matrix, (0, 0, layout.width, layout.height))
    covered = None if station else occlude(frame, rng, plate_quad)
    if shot:
        rng, nrng = shot_rngs(seed, shot)
    frame, camera_params = photograph(frame.astype(np.float32), rng, nrng, plate_quad,
                                      station=station)
    quality = rng.randint(60, 95) if station else rng.randint(30, 95)
    rgb = (frame * 255 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    jpeg = buf.tobytes()
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    assert decoded is not None
    image = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    text_in_frame = warp_mask(_like_the_plate(text, shrink), matrix, (frame_w, frame_h))
    marks_in_frame = warp_mask(_like_the_plate(marks, shrink), matrix, (frame_w, frame_h))
    items = []
    for item, box in zip(layout.items, boxes, strict=True):
        quad = _quad(matrix, box)
        aabb = _aabb(quad)
        cut = not _inside(quad, frame_w, frame_h)
        seen = (character_visibility(grey, text_in_frame, marks_in_frame, quad)
                if item.style in INK_STYLES and not cut else None)
        items.append({"text": item.text, "role": item.role, "field": item.field,
                      "quad": quad.round(1).tolist(), "box": aabb, "style": item.style,
                      "font": item.font.stem, "cut": cut,
                      "occluded": _overlap(aabb, covered),
                      "visibility": None if seen is None else [seen.contrast, seen.snr]})
    fields: dict[str, Any] = {}
    for name in schema.fields:
        value_item = next((it for it in items if it["field"] == name and it["role"] == "value"),
                          None)
        label_item = next((it for it in items if it["field"] == name and it["role"] == "label"),
                          None)
        within = value_item is not None and legible(image, value_item["box"], char_px,
                                                     camera_params)
        visibility = value_item["visibility"] if value_item else None
        fields[name] = {
            "value": values[name], "shown": value_item is not None,
            "box": value_item["box"] if value_item else None,
            "quad": value_item["quad"] if value_item else None,
            "label": label_item["text"] if label_item else None,
            "label_box": label_item["box"] if label_item else None,
            "cut": bool(value_item and value_item["cut"]),
            "occluded": value_item["occluded"] if value_item else 0.0,
            "within_limits": within,
            "visibility": visibility,
            "legible": within and characters_clear(visibility),
        }
    labels = {
        "seed": seed, **({"shot": shot} if shot else {}), "split": split, "width": frame_w,
        "height": frame_h, "schema": schema.name,
        "fields": fields, "items": items,
        "plate": {"corners": plate_quad.round(1).tolist(),
                  "cut": not _inside(plate_quad, frame_w, frame_h)},
        "params": {**layout.params, **place_params, **camera_params, **wear_params,
                   "material": material, "worn_ink": worn, "jpeg_quality": quality,
                   "char_height_px": round(char_px, 1), "occlusion": covered,
                   "plate_size": [layout.width, layout.height]},
    }
    return Sample(image, jpeg, labels)
