"""Reader and attachment numbers from frames read once (``training.calibrate.collect``).

``python -m training.attach.reads --reads reads/ --split station --split dev
[--against other-reads/]``

Per split: legible values found verbatim in the reader's text runs, field exact match through
the current attachment code, values attached right where the text holds them (attachment
behind this reader), plates with model and serial both exact, and values in text per
plate style. ``SPLIT-rapidocr.jsonl`` files (RapidOCR's engine) are measured the same way.
``--against`` compares with another model's reads of the same frames value by value: values
in text gained and lost (a difference that is noise shows as gains and losses alike).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from appliance.reader.textmatch import fold
from appliance.schema import PlateSchema, load_schema
from training.calibrate.fit import attach, frames
from training.evaluate import scoreable


def held_values(record: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Each legible field of a collected frame: its folded value, and whether it is verbatim
    in one of the reader's runs."""
    runs = [fold(w["text"]) or "" for w in record["words"]]
    held = {}
    for name, truth in record["fields"].items():
        if scoreable(truth):
            value = fold(truth["value"]) or ""
            held[name] = (value, any(value in run for run in runs))
    return held


def measure(path: Path, schema: PlateSchema) -> dict[str, Any]:
    """The numbers of one collected file (see the module docstring)."""
    total = in_text = exact = wrong = 0
    attached = [0, 0]
    both = [0, 0]
    styles: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    plates = 0
    for record in frames(path):
        plates += 1
        found = attach(record, schema)
        key_fields = 0
        key_right = True
        for name, (value, held) in held_values(record).items():
            got = fold(found[name].value)
            right = got == value
            total += 1
            in_text += held
            exact += right
            wrong += got is not None and not right
            if held:
                attached[0] += right
                attached[1] += 1
            style = styles[str(record.get("params", {}).get("style"))]
            style[0] += held
            style[1] += 1
            if name in ("model", "serial"):
                key_fields += 1
                key_right &= right
        if key_fields == 2:
            both[0] += key_right
            both[1] += 1
    share = lambda a, b: round(a / max(1, b), 4)  # noqa: E731
    return {"file": path.name, "plates": plates, "values": total,
            "values_in_text": share(in_text, total), "field_exact": share(exact, total),
            "field_wrong": share(wrong, total),
            "attached_right_when_in_text": share(*attached),
            "model_and_serial_exact": share(*both),
            "values_in_text_by_style": {k: share(*v) for k, v in sorted(styles.items())}}


def values_in_text(path: Path) -> dict[tuple[int, str], bool]:
    """(frame index, field) → the legible value is verbatim in one of the reader's runs."""
    return {(int(record["index"]), name): held for record in frames(path)
            for name, (_, held) in held_values(record).items()}


def compare(path: Path, baseline: Path) -> dict[str, Any]:
    """Values in text of ``path`` against ``baseline`` on the (frame, field) pairs both hold."""
    new, old = values_in_text(path), values_in_text(baseline)
    both = sorted(set(new) & set(old))
    share = lambda found: round(sum(found[k] for k in both) / max(1, len(both)), 4)  # noqa: E731
    return {"file": path.name, "against": str(baseline), "values": len(both),
            "values_in_text": share(new), "baseline_values_in_text": share(old),
            "gained": sum(new[k] and not old[k] for k in both),
            "lost": sum(old[k] and not new[k] for k in both)}


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=Path, required=True)
    parser.add_argument("--schema", type=Path, default=Path("config/schemas/motor.toml"))
    parser.add_argument("--split", action="append", required=True,
                        help="a collected file's name without .jsonl (station, "
                             "station-rapidocr, ...)")
    parser.add_argument("--against", type=Path, default=None,
                        help="another model's reads of the same frames (same file names)")
    args = parser.parse_args()
    schema = load_schema(args.schema)
    for split in args.split:
        print(json.dumps(measure(args.reads / f"{split}.jsonl", schema)))
        if args.against is not None:
            print(json.dumps(compare(args.reads / f"{split}.jsonl",
                                     args.against / f"{split}.jsonl")))


if __name__ == "__main__":
    main()
