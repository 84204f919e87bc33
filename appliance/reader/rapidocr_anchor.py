"""RapidOCR (PP-OCRv4 through onnxruntime, as its wheel ships it) behind our field
attachment: the anchor the model card measures the ``ppocr`` reader against.

Optional: ``pip install --no-deps rapidocr-onnxruntime pyclipper shapely pyyaml six`` (its
declared dependency on the full opencv-python clashes with the headless build we use).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from appliance.geometry import upright_boxes
from appliance.reader.base import PlateReading
from appliance.reader.fields import assign_fields
from appliance.reader.lines import Word, group_lines
from appliance.schema import PlateSchema


class RapidOCRMissing(ImportError):
    """rapidocr-onnxruntime is not installed (it is a development aid, not a dependency)."""


class RapidOCRReader:
    """Reads frames with RapidOCR's own pipeline; attaches its lines with our schema code."""

    name = "rapidocr"

    def __init__(self, *, schema: PlateSchema, device: str = "cpu", **_: object) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise RapidOCRMissing("the rapidocr backend needs rapidocr-onnxruntime: pip "
                                  "install --no-deps rapidocr-onnxruntime pyclipper shapely "
                                  "pyyaml six") from exc
        self.schema = schema
        self.device = "cpu"  # onnxruntime's CPU provider, as the wheel ships it
        self.engine = RapidOCR()

    def words(self, image: np.ndarray) -> list[Word]:
        """RapidOCR's text runs of one RGB image, with their boxes and scores."""
        result, _ = self.engine(np.ascontiguousarray(image[:, :, ::-1]))
        runs = result or []
        quads = [np.asarray(quad, np.float32) for quad, _, _ in runs]
        # boxes in the plate's own frame, as the ppocr reader gives them
        return [Word(str(text), box, float(score), quad=quad)
                for (_, text, score), quad, box in zip(runs, quads, upright_boxes(quads),
                                                       strict=True)]

    def read(self, images: Sequence[np.ndarray]) -> list[PlateReading]:
        """Read each RGB image; one reading per image."""
        readings = []
        for image in images:
            words = self.words(image)
            readings.append(PlateReading(assign_fields(group_lines(words), self.schema),
                                         extra={"lines": [w.text for w in words]}))
        return readings
