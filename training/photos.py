"""A plant's labelled photos (the panel's correction format) as training lines, and the
guard that keeps a fine-tuned reader only when the synthetic dev set holds.

A labelled photo is an image with a JSON file of the same name beside it; this is the format
the panel's "correct this reading" action writes::

    0001.jpg
    0001.json   {"version": 1, "fields": {"serial": "48213907KQ", "model": "KM-100"},
                 "boxes": {"serial": [410, 220, 690, 262]}}        # boxes: optional

Each labelled value is looked for among the text runs the shipped detector finds (inside its
box when one is given): the run holding the closest match is read again with the labelled
value in place of what the model read, and that run's crop becomes a training line. Photos
are split (every fifth one by name is kept out of training) to show the gain on the plant's
own plates. ``training.ppocr.plant`` is the fine-tuning that uses them.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from appliance.geometry import quad_box
from appliance.reader.images import ImageError, load_image
from appliance.reader.ppocr.pipeline import PPOCRReader
from appliance.reader.textmatch import best_substring, fold
from appliance.schema import PlateSchema

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
CHECK_EVERY = 5  # every fifth photo (by name) is kept out of training to measure the gain


class FinetuneError(RuntimeError):
    """Fine-tuning cannot start (bad folder, nothing usable, output already there)."""


class PhotoLabel(BaseModel):
    """The JSON beside a labelled photo (version 1)."""

    model_config = ConfigDict(extra="ignore")  # the panel may add who/when; not needed here
    version: Literal[1] = 1
    image: str | None = None  # file name beside the JSON (default: same stem, image suffix)
    fields: dict[str, str] = Field(min_length=1)
    boxes: dict[str, tuple[int, int, int, int]] = Field(default_factory=dict)


@dataclass
class LabelledPhoto:
    """One photo and what its fields say."""

    image: Path
    label: PhotoLabel


@dataclass
class PhotoLines:
    """Training lines found in photos, and what could not be used (with the reason)."""

    lines: list[tuple[np.ndarray, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_labelled_photos(folder: Path, schema: PlateSchema,
                         ) -> tuple[list[LabelledPhoto], list[str]]:
    """Every usable labelled photo in ``folder``, and one line per file that is not usable."""
    if not folder.is_dir():
        raise FinetuneError(f"{folder}: no such folder")
    photos, problems = [], []
    for sidecar in sorted(folder.glob("*.json")):
        try:
            label = PhotoLabel.model_validate_json(sidecar.read_bytes())
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "file"
            problems.append(f"{sidecar}: {where}: {error['msg']}")
            continue
        unknown = sorted(set(label.fields) - set(schema.fields))
        if unknown:
            problems.append(f"{sidecar}: fields not in schema {schema.name!r}: "
                            f"{', '.join(unknown)}")
            continue
        candidates = [folder / label.image] if label.image else \
            [sidecar.with_suffix(s) for s in IMAGE_SUFFIXES]
        image = next((c for c in candidates if c.is_file()), None)
        if image is None:
            problems.append(f"{sidecar}: no image beside it "
                            f"({label.image or sidecar.stem + '.jpg/.png/…'})")
            continue
        photos.append(LabelledPhoto(image, label))
    return photos, problems


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def photo_lines(reader: PPOCRReader, photo: LabelledPhoto) -> PhotoLines:
    """The training lines one labelled photo gives (its values written into the runs)."""
    found = PhotoLines()
    try:
        image = load_image(photo.image)
    except ImageError as exc:
        found.problems.append(str(exc))
        return found
    analysis = reader.analyse([image])[0]
    targets: dict[int, str] = {}
    for name, value in photo.label.fields.items():
        box = photo.label.boxes.get(name)
        best: tuple[int, int, str] | None = None  # edits, line, new text
        for i, line in enumerate(analysis.lines):
            if box is not None and not _overlaps(quad_box(analysis.quads[i]), box):
                continue
            text = targets.get(i, line.text)
            s, e, edits = best_substring(text, value)
            if fold(text[s:e]) == fold(value):
                edits = 0
            if best is None or edits < best[0]:
                best = (edits, i, text[:s] + value + text[e:])
        if best is None or best[0] > max(1, len(value) // 3):
            found.problems.append(f"{photo.image}: {name} {value!r} not found in the text "
                                  "the detector found")
            continue
        targets[best[1]] = best[2]
    found.lines = [(analysis.crops[i], text.strip()) for i, text in targets.items()]
    return found


def photo_accuracy(reader: PPOCRReader, photos: list[LabelledPhoto]) -> float | None:
    """Share of labelled fields read exactly (white-space/case folded) on ``photos``."""
    right = total = 0
    for photo in photos:
        try:
            image = load_image(photo.image)
        except ImageError:
            continue
        fields = reader.read([image])[0].fields
        for name, value in photo.label.fields.items():
            total += 1
            right += int(fold(fields[name].value) == fold(value))
    return round(right / total, 4) if total else None


def augment(crop: np.ndarray, rng: random.Random) -> np.ndarray:
    """A photo's line as another exposure might show it: gain, offset, blur, width, trim."""
    out = crop.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-30, 30)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (3, 3), rng.uniform(0.3, 1.0))
    h, w = out.shape[:2]
    out = cv2.resize(out, (max(8, int(w * rng.uniform(0.9, 1.1))), h))
    trim = rng.randint(0, max(0, min(2, out.shape[1] // 20)))
    return out[:, trim: out.shape[1] - trim] if trim else out


def prepare_photos(folder: Path, out: Path, schema: PlateSchema,
                   ) -> tuple[list[LabelledPhoto], list[str], list[LabelledPhoto]]:
    """Refuse an ``out`` that exists; load ``folder``'s labelled photos (problems named) and
    set every fifth aside to check the gain. Returns (photos, problems, check photos)."""
    if out.exists():
        raise FinetuneError(f"{out}: already exists; give a new folder for the fine-tuned "
                            "reader")
    photos, problems = load_labelled_photos(folder, schema)
    if not photos:
        raise FinetuneError(f"{folder}: no usable labelled photos"
                            + "".join(f"\n  {p}" for p in problems))
    return photos, problems, photos[CHECK_EVERY - 1::CHECK_EVERY]


def settle(report: dict[str, Any], staging: Path, out: Path, tolerance: float,
           ) -> dict[str, Any]:
    """The guard: move ``staging`` to ``out`` when the synthetic dev set fell at most
    ``tolerance``, else delete it; the report says which (``accepted``, ``refused``)."""
    drop = report["before"]["dev_field_exact"] - report["after"]["dev_field_exact"]
    report["accepted"] = drop <= tolerance
    if report["accepted"]:
        staging.rename(out)
        report["out"] = str(out)
        (out / "finetune.json").write_text(json.dumps(report, indent=2))
    else:
        shutil.rmtree(staging)
        report["refused"] = (f"synthetic dev field exact fell {drop:.1%} "
                             f"(more than the {tolerance:.1%} allowed); nothing written")
    return report
