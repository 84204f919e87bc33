"""Tesseract reader: the CPU baseline and optional cross-check (pytesseract + the schema)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pytesseract

from appliance.reader.base import PlateReading
from appliance.reader.fields import assign_fields
from appliance.reader.lines import Line, Word, group_lines
from appliance.schema import PlateSchema


class TesseractReader:
    """Reads whole frames with Tesseract, then attaches words to fields by label and format."""

    name = "tesseract"

    def __init__(self, *, schema: PlateSchema, device: str = "cpu", psm: int = 3,
                 **_: object) -> None:
        self.schema = schema
        self.device = "cpu"  # Tesseract has no GPU path; the requested device is ignored.
        self.psm = psm
        self.version = str(pytesseract.get_tesseract_version())

    def read(self, images: Sequence[np.ndarray]) -> list[PlateReading]:
        """Read each RGB image; an engine failure becomes that image's error, not an exception."""
        readings = []
        for image in images:
            try:
                lines = self._lines(image)
            except (pytesseract.TesseractError, RuntimeError) as exc:
                readings.append(PlateReading.empty(self.schema, f"tesseract failed: {exc}"))
                continue
            readings.append(PlateReading(assign_fields(lines, self.schema)))
        return readings

    def _lines(self, image: np.ndarray) -> list[Line]:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        data = pytesseract.image_to_data(gray, config=f"--psm {self.psm}",
                                         output_type=pytesseract.Output.DICT)
        words: list[Word] = []
        for i, text in enumerate(data["text"]):
            text = text.strip()
            conf = float(data["conf"][i])
            if not text or conf < 0:
                continue
            x, y, w, h = (int(data[k][i]) for k in ("left", "top", "width", "height"))
            words.append(Word(text, (x, y, x + w, y + h), conf / 100.0))
        return group_lines(words)
