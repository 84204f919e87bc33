"""Fit the field-confidence calibration and measure it, from frames read once on the GPU.

``python -m training.calibrate.fit --reads reads/ --fit dev --test station --test heldout
--out models/ppocr-reader/calibration.json --plot docs/calibration.png``

The files come from ``training.calibrate.collect``. Fields are attached again with the
current code (so attachment changes are measured without reading frames again). Every value
the reader gives for a field is a sample: right when the plate shows that field and the value
equals it (white space and case folded). One isotonic curve per field kind is fitted on the
``--fit`` split; expected calibration error (ECE, 10 bins) is reported before and after on
each ``--test`` split, and a reliability plot drawn.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from appliance.reader.calibration import POOLED, Calibration, Curve, ece, field_kind, reliability
from appliance.reader.fields import FieldValue, assign_fields
from appliance.reader.lines import group_lines
from appliance.reader.textmatch import fold
from appliance.schema import PlateSchema, load_schema
from training.calibrate.collect import word_from_record
from training.calibrate.plot import plot_bins

Sample = tuple[float, bool]  # raw score, value right


def frames(path: Path) -> Iterator[dict[str, Any]]:
    """The records of one collected split."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def attach(record: dict[str, Any], schema: PlateSchema) -> dict[str, FieldValue]:
    """The fields of a collected frame, attached with the current code."""
    return assign_fields(group_lines([word_from_record(w) for w in record["words"]]), schema)


def samples(path: Path, schema: PlateSchema) -> dict[str, list[Sample]]:
    """(raw score, right) of every value the reader gave, per field kind."""
    out: dict[str, list[Sample]] = defaultdict(list)
    for record in frames(path):
        for name, got in attach(record, schema).items():
            if got.value is None:
                continue
            truth = record["fields"][name]
            right = bool(truth["shown"]) and fold(got.value) == fold(truth["value"])
            out[field_kind(schema.fields[name])].append((got.confidence, right))
    return out


def isotonic(points: list[Sample]) -> Curve:
    """Pool-adjacent-violators fit of P(right | score); knots at block centres."""
    blocks: list[list[float]] = []  # [sum of right, count, sum of scores]
    for score, right in sorted(points):
        blocks.append([float(right), 1.0, score])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            top = blocks.pop()
            for i in range(3):
                blocks[-1][i] += top[i]
    x = tuple(round(b[2] / b[1], 5) for b in blocks)
    y = tuple(round(b[0] / b[1], 5) for b in blocks)
    return Curve(x, y)


def fit(points: dict[str, list[Sample]], *, minimum: int = 50) -> Calibration:
    """One curve per kind with at least ``minimum`` samples, and a pooled one."""
    curves = {kind: isotonic(p) for kind, p in points.items() if len(p) >= minimum}
    curves[POOLED] = isotonic([s for p in points.values() for s in p])
    return Calibration(curves)


def calibrated(points: dict[str, list[Sample]], calibration: Calibration,
               schema: PlateSchema) -> list[tuple[float, bool]]:
    """Samples with their scores mapped through ``calibration``."""
    spec_of = {field_kind(spec): spec for spec in schema.fields.values()}
    return [(calibration.probability(spec_of[kind], s), r)
            for kind, p in points.items() for s, r in p]


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=Path, required=True)
    parser.add_argument("--schema", type=Path, default=Path("config/schemas/motor.toml"))
    parser.add_argument("--fit", action="append", required=True, help="split(s) to fit on")
    parser.add_argument("--test", action="append", default=[], help="split(s) to measure on")
    parser.add_argument("--out", type=Path, default=None, help="write the calibration here")
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    schema = load_schema(args.schema)
    train: dict[str, list[Sample]] = defaultdict(list)
    for split in args.fit:
        for kind, found in samples(args.reads / f"{split}.jsonl", schema).items():
            train[kind].extend(found)
    calibration = fit(train)
    report: dict[str, Any] = {"fit": args.fit, "samples": {k: len(v) for k, v in train.items()}}
    shown: dict[str, list[tuple[float, bool]]] = {}
    for split in args.test:
        points = samples(args.reads / f"{split}.jsonl", schema)
        raw = [p for v in points.values() for p in v]
        after = calibrated(points, calibration, schema)
        report[split] = {"values": len(raw), "ece_raw": round(ece(raw), 4),
                         "ece_calibrated": round(ece(after), 4),
                         "reliability": [[round(c, 3), round(a, 3), n]
                                         for c, a, n in reliability(after)]}
        shown[f"{split} raw"] = raw
        shown[f"{split} calibrated"] = after
    if args.out:
        args.out.write_text(json.dumps(calibration.to_json(), indent=1) + "\n")
    if args.plot and shown:
        plot_bins({name: reliability(points) for name, points in shown.items()}, args.plot)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
