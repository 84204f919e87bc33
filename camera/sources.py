"""Frame sources behind one interface: synthetic plates, an image folder, OpenCV capture."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from appliance.schema import PlateSchema
from appliance.synth import render_demo_plate
from camera.responses import CameraResponse
from erp_bridge import load_erp_csv

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


class SourceError(RuntimeError):
    """A source that cannot deliver frames (bad URL, missing folder, camera gone)."""


@dataclass
class Capture:
    """One captured image (RGB uint8) and the unit it shows, when the source knows it."""

    image: np.ndarray
    unit_id: str | None = None


class FrameSource(Protocol):
    """What the camera daemon needs from a source."""

    def capture(self, unit_id: str | None = None) -> Capture | None:
        """Capture one frame (of ``unit_id`` when re-shooting); None when nothing is left."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


class SyntheticSource:
    """Renders plates for the ERP's units; every ``fault_every``-th unit carries a wrong plate."""

    def __init__(self, *, erp_file: Path, schema: PlateSchema, seed: int = 0,
                 fault_every: int = 4) -> None:
        self.records = load_erp_csv(erp_file, field_names=schema.field_names())
        if not self.records:
            raise SourceError(f"{erp_file}: no ERP records to render plates for")
        self.rng = random.Random(seed)
        self.fault_every = fault_every
        self.count = 0
        self.plates: dict[str, dict[str, str]] = {}

    def _plate_values(self, index: int) -> tuple[str, dict[str, str]]:
        record = self.records[index % len(self.records)]
        values = dict(record.fields)
        if self.fault_every and index % self.fault_every == self.fault_every - 1:
            other = self.records[(index + 1) % len(self.records)].fields
            if index // self.fault_every % 2 == 0 and other.get("serial") != values.get("serial"):
                values["serial"] = other.get("serial", values.get("serial", ""))
            else:
                values["model"] = values.get("model", "X") + "X"
        return record.unit_id, values

    def capture(self, unit_id: str | None = None) -> Capture:
        """Render ``unit_id``'s plate (the same plate again for a reshoot), or the next unit's
        when no unit or an unknown one is named."""
        if unit_id is None or unit_id not in self.plates:
            index = self.count
            known = [i for i, r in enumerate(self.records) if r.unit_id == unit_id]
            if known:  # a trigger that names a unit of the ERP file
                index += (known[0] - index) % len(self.records)
            unit_id, values = self._plate_values(index)
            self.plates[unit_id] = values
            self.count = index + 1
        plate = render_demo_plate(self.plates[unit_id], seed=self.rng.randrange(1 << 30))
        return Capture(plate.image, unit_id)

    def close(self) -> None:
        """Nothing to release."""


class FolderSource:
    """Replays the images of a folder in name order; ``U1001__x.jpg`` is unit ``U1001``."""

    def __init__(self, folder: Path, *, loop: bool = True) -> None:
        if not folder.is_dir():
            raise SourceError(f"{folder}: image folder not found")
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
        self.loop = loop
        self.index = 0
        self.by_unit: dict[str, Path] = {}

    def capture(self, unit_id: str | None = None) -> Capture | None:
        """The next image (or ``unit_id``'s image again); None at the end when not looping."""
        if unit_id is not None and unit_id in self.by_unit:
            path = self.by_unit[unit_id]
        else:
            if self.index >= len(self.files):
                if not self.loop:
                    return None
                self.index = 0
            path = self.files[self.index]
            self.index += 1
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SourceError(f"{path}: not a readable image")
        unit = path.stem.split("__")[0] if "__" in path.stem else None
        if unit:
            self.by_unit[unit] = path
        return Capture(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), unit)

    def close(self) -> None:
        """Nothing to release."""


class OpenCVSource:
    """A V4L2 device (``0`` or ``/dev/video0``), a stream URL, a GStreamer pipeline or a file."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        target: int | str = int(uri) if uri.isdigit() else uri
        if "!" in uri:
            self.cap = cv2.VideoCapture(uri, cv2.CAP_GSTREAMER)
        elif "://" in uri:  # a network stream: never block the daemon for long
            self.cap = cv2.VideoCapture(uri, cv2.CAP_FFMPEG, [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 3000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 3000])
        else:
            self.cap = cv2.VideoCapture(target)
        if not self.cap.isOpened():
            raise SourceError(f"cannot open video source {uri!r}")

    def adjust_for(self, response: CameraResponse) -> bool:
        """Before a reshoot: change exposure and gain as ``response`` says, where the device
        supports it. Returns True when a setting changed."""
        changed = False
        if response.exposure_factor != 1.0:
            exposure = self.cap.get(cv2.CAP_PROP_EXPOSURE)
            changed |= bool(exposure and self.cap.set(cv2.CAP_PROP_EXPOSURE,
                                                      exposure * response.exposure_factor))
        if response.gain_step:
            gain = self.cap.get(cv2.CAP_PROP_GAIN)
            changed |= bool(self.cap.set(cv2.CAP_PROP_GAIN, (gain or 0) + response.gain_step))
        return changed

    def capture(self, unit_id: str | None = None) -> Capture | None:
        """Grab the current frame."""
        ok, bgr = self.cap.read()
        if not ok or bgr is None:
            raise SourceError(f"no frame from {self.uri!r}")
        return Capture(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), unit_id)

    def close(self) -> None:
        """Release the capture device."""
        self.cap.release()
