"""Calibrated field confidence: the reader's raw score mapped to the chance the value is right.

A reader's raw confidence (the lowest character probability of a value) is not a
probability: misreads often score 0.9. A calibration file, fitted on rendered plates the
reader never trained on (``python -m training.calibrate.fit``), holds one monotone curve per
field kind (codes, unit values, dates, names); ``confidence`` becomes the measured share of
values read right at that score. The rules' thresholds are then set in those terms.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from pathlib import Path

from appliance.schema import FieldSpec

FILE_NAME = "calibration.json"
POOLED = "pooled"


class CalibrationError(ValueError):
    """A calibration file that cannot be used (names the file and what is wrong)."""


def field_kind(spec: FieldSpec) -> str:
    """The kind a field is calibrated with: ``unit`` (found by its format), ``name`` (the
    title), ``date``, or ``code`` (model numbers, serials: everything else)."""
    if spec.unlabelled == "anywhere":
        return "unit"
    if spec.unlabelled == "first_line":
        return "name"
    if spec.name in ("manufactured", "date") or "date" in spec.name:
        return "date"
    return "code"


@dataclass(frozen=True)
class Curve:
    """A monotone map from raw score to probability, linear between its knots."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def __call__(self, score: float) -> float:
        """The calibrated probability of ``score``."""
        if not self.x:
            return score
        i = bisect.bisect_left(self.x, score)
        if i == 0:
            return self.y[0]
        if i >= len(self.x):
            return self.y[-1]
        x0, x1, y0, y1 = self.x[i - 1], self.x[i], self.y[i - 1], self.y[i]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (score - x0) / (x1 - x0)


@dataclass(frozen=True)
class Calibration:
    """Curves per field kind (and a pooled one for kinds the file lacks)."""

    curves: dict[str, Curve]

    def probability(self, spec: FieldSpec, score: float) -> float:
        """The calibrated confidence of a value of field ``spec`` read with ``score``."""
        curve = self.curves.get(field_kind(spec)) or self.curves.get(POOLED)
        return round(curve(score), 4) if curve is not None else score

    def to_json(self) -> dict[str, object]:
        """The file's content."""
        return {"version": 1, "curves": {k: {"x": list(c.x), "y": list(c.y)}
                                         for k, c in sorted(self.curves.items())}}

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """Read a calibration file; :class:`CalibrationError` names what is wrong."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            curves = {}
            for kind, curve in data["curves"].items():
                x, y = tuple(map(float, curve["x"])), tuple(map(float, curve["y"]))
                if len(x) != len(y) or list(x) != sorted(x) or list(y) != sorted(y) \
                        or any(not 0.0 <= v <= 1.0 for v in y):
                    raise CalibrationError(f"{path}: curve {kind!r} is not a monotone map "
                                           "into 0..1 with as many x as y")
                curves[kind] = Curve(x, y)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, CalibrationError):
                raise
            raise CalibrationError(f"{path}: not a calibration file ({exc})") from exc
        return cls(curves)


def reliability(points: list[tuple[float, bool]], bins: int = 10,
                ) -> list[tuple[float, float, int]]:
    """Per equal-width confidence bin: mean confidence, share right, count."""
    table: list[list[float]] = [[0.0, 0.0, 0.0] for _ in range(bins)]
    for conf, right in points:
        row = table[min(bins - 1, int(conf * bins))]
        row[0] += conf
        row[1] += right
        row[2] += 1
    return [(r[0] / r[2], r[1] / r[2], int(r[2])) for r in table if r[2]]


def ece(points: list[tuple[float, bool]], bins: int = 10) -> float:
    """Expected calibration error: count-weighted gap between confidence and accuracy."""
    total = max(1, len(points))
    return sum(n * abs(conf - acc) for conf, acc, n in reliability(points, bins)) / total


def load_for(model_dir: Path) -> Calibration | None:
    """The calibration that ships beside a model, or None when it has none."""
    path = model_dir / FILE_NAME
    return Calibration.load(path) if path.is_file() else None
