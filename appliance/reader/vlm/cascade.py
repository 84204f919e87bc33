"""Backend ``cascade``: the OCR reader reads every frame; the fields it is unsure of go to
the VLM (batched across the frames of a batch, so across stations), with the OCR's lines as
hints and the text region as the crop. The rules see one reading with each field's source.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from appliance.reader.base import PlateReading, Reader, load_reader
from appliance.reader.vlm.backend import VLMReader
from appliance.schema import PlateSchema
from appliance.transport.messages import FieldValue

CROP_MARGIN = 0.08


def text_crop(image: np.ndarray, boxes: list[list[int]] | None) -> np.ndarray:
    """The region holding the OCR's text boxes, with a margin (the whole frame without)."""
    if not boxes:
        return image
    h, w = image.shape[:2]
    xs = [b[0] for b in boxes] + [b[2] for b in boxes]
    ys = [b[1] for b in boxes] + [b[3] for b in boxes]
    mx, my = CROP_MARGIN * (max(xs) - min(xs)), CROP_MARGIN * (max(ys) - min(ys))
    x0, x1 = max(0, int(min(xs) - mx)), min(w, int(max(xs) + mx))
    y0, y1 = max(0, int(min(ys) - my)), min(h, int(max(ys) + my))
    if x1 - x0 < 28 or y1 - y0 < 28:
        return image
    return image[y0:y1, x0:x1]


class CascadeReader:
    """OCR first; the VLM for what the OCR is unsure of."""

    name = "cascade"

    def __init__(self, *, schema: PlateSchema, device: str = "cpu",
                 model_dir: Path | str | None = None, primary: str = "ppocr",
                 min_confidence: float = 0.6, primary_reader: Reader | None = None,
                 vlm_reader: VLMReader | None = None, **options: Any) -> None:
        self.schema = schema
        self.device = device
        self.min_confidence = min_confidence
        self.primary = primary_reader or load_reader(primary, schema=schema, device=device)
        self.vlm = vlm_reader or VLMReader(schema=schema, device=device, model_dir=model_dir,
                                           **options)
        self.asked = 0

    def unsure(self, reading: PlateReading) -> list[str]:
        """Fields the OCR did not read, read with low confidence, or read out of format."""
        out = []
        for name, spec in self.schema.fields.items():
            field = reading.fields.get(name)
            if field is None or field.value is None or field.confidence < self.min_confidence \
                    or not spec.matches(field.value):
                out.append(name)
        return out

    def read(self, images: Sequence[np.ndarray]) -> list[PlateReading]:
        """Read every image with the OCR reader, then ask the VLM about unsure fields."""
        readings = self.primary.read(images)
        asks = [(i, self.unsure(r)) for i, r in enumerate(readings)]
        asks = [(i, names) for i, names in asks if names]
        if not asks:
            return [self._sourced(r) for r in readings]
        crops = [text_crop(images[i], readings[i].extra.get("boxes"))  # type: ignore[arg-type]
                 for i, _ in asks]
        hints = [list(readings[i].extra.get("lines") or []) for i, _ in asks]  # type: ignore[call-overload]
        answers = self.vlm.read(crops, fields=[names for _, names in asks], hints=hints)
        self.asked += len(asks)
        merged = [self._sourced(r) for r in readings]
        for (i, names), answer in zip(asks, answers, strict=True):
            fields = dict(merged[i].fields)
            for name in names:
                got = answer.fields[name]
                if got.value is not None:
                    fields[name] = FieldValue(value=got.value, confidence=got.confidence,
                                              box=fields[name].box if name in fields else None,
                                              source=self.vlm.name)
            extra = dict(merged[i].extra, vlm_fields=names, vlm_error=answer.error)
            merged[i] = PlateReading(fields, merged[i].error, extra)
        return merged

    def _sourced(self, reading: PlateReading) -> PlateReading:
        fields = {n: f.model_copy(update={"source": f.source or self.primary.name})
                  for n, f in reading.fields.items()}
        return PlateReading(fields, reading.error, dict(reading.extra))

    def verify(self, image: np.ndarray, expected: dict[str, str]) -> dict[str, Any]:
        """Verify with the VLM's likelihood (one forward pass)."""
        return self.vlm.verify(image, expected)
