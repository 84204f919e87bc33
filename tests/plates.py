"""Helpers that build real frames from the demo ERP records."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from appliance.reader import encode_jpeg
from appliance.synth import render_demo_plate
from appliance.transport import FrameMessage, ImageInfo, new_id, utc_now

REPO = Path(__file__).resolve().parent.parent
ERP = REPO / "config" / "demo" / "erp.csv"
SCHEMA_FILE = REPO / "config" / "schemas" / "motor.toml"
#: tests of the reader the repository ships (skipped in a checkout without its weights)
shipped = pytest.mark.skipif(not (REPO / "models" / "ppocr-reader" / "recognizer").is_dir(),
                             reason="no shipped reader weights")
FIELDS = ("manufacturer", "model", "serial", "voltage", "current", "power", "frequency",
          "speed", "manufactured", "ip_rating")


def demo_records() -> list[dict[str, str]]:
    """The demo ERP file's rows."""
    with ERP.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def plate_values(row: dict[str, str]) -> dict[str, str]:
    """The plate fields of an ERP row."""
    return {k: row[k] for k in FIELDS if row.get(k)}


def frame_for(unit_id: str, values: dict[str, str], *, seed: int = 0, station: str = "line1",
              attempt: int = 0, inspection_id: str | None = None) -> tuple[FrameMessage, bytes]:
    """A frame header and JPEG payload showing ``values`` for ``unit_id``."""
    image = render_demo_plate(values, seed=seed).image
    header = FrameMessage(
        frame_id=new_id("F"), inspection_id=inspection_id or new_id("I-test"), station=station,
        unit_id=unit_id, attempt=attempt, captured_at=utc_now(), monotonic_ns=0,
        image=ImageInfo(encoding="jpeg", width=image.shape[1], height=image.shape[0]))
    return header, encode_jpeg(image)


def plate_and_bad_file(folder: Path, values: dict[str, str], *, seed: int,
                       bad_name: str, bad_bytes: bytes) -> tuple[Path, Path]:
    """A PNG of a demo plate and a file that is not a usable image, for CLI tests."""
    from PIL import Image

    good = folder / "plate.png"
    Image.fromarray(render_demo_plate(values, seed=seed).image).save(good)
    bad = folder / bad_name
    bad.write_bytes(bad_bytes)
    return good, bad
