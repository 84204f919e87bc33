"""The reader interface every backend implements, and the registry that loads one by name."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from appliance.schema import PlateSchema
from appliance.transport.messages import FieldValue


@dataclass
class PlateReading:
    """What a reader made of one image: a value (or None) per schema field."""

    fields: dict[str, FieldValue]
    error: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @classmethod
    def empty(cls, schema: PlateSchema, error: str | None = None) -> PlateReading:
        """A reading with every field not read."""
        return cls({n: FieldValue(value=None, confidence=0.0) for n in schema.fields}, error)


class Reader(Protocol):
    """A loaded reader. ``read`` takes a batch of RGB uint8 images."""

    name: str
    device: str

    def read(self, images: Sequence[np.ndarray]) -> list[PlateReading]:
        """Read each image of the batch; one reading per image, in order."""
        ...


ReaderFactory = Callable[..., Reader]
_BACKENDS: dict[str, str] = {
    "tesseract": "appliance.reader.tesseract:TesseractReader",
    "ppocr": "appliance.reader.ppocr.pipeline:PPOCRReader",
    "rapidocr": "appliance.reader.rapidocr_anchor:RapidOCRReader",
    "vlm": "appliance.reader.vlm.backend:VLMReader",
    "cascade": "appliance.reader.vlm.cascade:CascadeReader",
}


def available_backends() -> list[str]:
    """Names accepted by :func:`load_reader`."""
    return sorted(_BACKENDS)


def resolve_device(device: str) -> str:
    """Turn ``auto`` into ``cuda`` when a GPU is usable, else ``cpu``."""
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def compile_gains(device: str, *, workers: int = 1) -> bool:
    """Whether compiling the reader's networks was measured to gain on ``device``: every
    reader on a CPU, and networks served to ``workers > 1`` on a GPU (an in-process GPU
    reader was not measured; docs/benchmarks.md, session 16)."""
    return resolve_device(device) == "cpu" or workers > 1


def reader_class(backend: str) -> ReaderFactory:
    """The class of the reader ``backend`` (imported, nothing loaded)."""
    if backend not in _BACKENDS:
        raise ValueError(f"unknown reader backend {backend!r} "
                         f"(available: {', '.join(available_backends())})")
    module_name, class_name = _BACKENDS[backend].split(":")
    factory: ReaderFactory = getattr(importlib.import_module(module_name), class_name)
    return factory


def load_reader(backend: str, *, schema: PlateSchema, device: str = "auto",
                **options: object) -> Reader:
    """Load the reader ``backend`` once (weights, engines) for ``schema`` on ``device``."""
    return reader_class(backend)(schema=schema, device=resolve_device(device), **options)


def verify_statuses(scores: dict[str, object]) -> dict[str, str]:
    """A reader's ``verify`` scores reduced to what travels in a result: per field
    ``verified`` / ``differs`` / ``unreadable`` (anything else is left out)."""
    return {name: str(score["status"]) for name, score in scores.items()
            if isinstance(score, dict) and score.get("status") in
            ("verified", "differs", "unreadable")}
