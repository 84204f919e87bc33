"""Measure the field attachment on its own: oracle text runs in, fields out, per layout kind.

``python -m training.attach.evaluate --split dev --split heldout -n 1000``

A field counts when its value is drawn on the plate; it is attached right when
``assign_fields`` returns exactly that value (white space and case folded). Wrong values
(another run taken) are counted apart from values not found, because a wrong value is what
turns into a false MISMATCH.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from appliance.reader.fields import assign_fields
from appliance.reader.textmatch import fold
from appliance.schema import PlateSchema, load_schema
from training.attach.oracle import RUN_MODES, oracle_plate


def evaluate_attachment(schema: PlateSchema, *, split: str, n: int, seed: int = 2026,
                        runs: str = "items", failures: int = 30) -> dict[str, Any]:
    """Attach the oracle runs of plates 0..n-1 of ``split``; rates overall, per layout kind
    and per field, and the first ``failures`` misses."""
    right: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    total: Counter[str] = Counter()
    per_field: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    missed: list[dict[str, Any]] = []
    for index in tqdm(range(n), desc=f"attach {split}/{runs}", leave=False, disable=None):
        plate = oracle_plate(schema, seed=seed, split=split, index=index, runs=runs)
        found = assign_fields(plate.lines, schema)
        for name in plate.shown:
            got = found[name].value if name in found else None
            ok = fold(got) == fold(plate.values[name])
            for key in ("all", plate.layout_kind):
                total[key] += 1
                right[key] += int(ok)
                wrong[key] += int(not ok and got is not None)
            per_field[name][0] += int(ok)
            per_field[name][1] += 1
            if not ok and len(missed) < failures:
                missed.append({"index": index, "layout": plate.layout_kind, "field": name,
                               "truth": plate.values[name], "got": got,
                               "lines": [[w.text for w in line.words] for line in plate.lines]})
    return {
        "split": split, "runs": runs, "plates": n, "seed": seed,
        "attached_right": round(right["all"] / max(1, total["all"]), 4),
        "attached_wrong": round(wrong["all"] / max(1, total["all"]), 4),
        "fields": total["all"],
        "per_layout": {k: {"right": round(right[k] / total[k], 4),
                           "wrong": round(wrong[k] / total[k], 4), "fields": total[k]}
                       for k in sorted(total) if k != "all"},
        "per_field": {k: round(v[0] / v[1], 4) for k, v in sorted(per_field.items())},
        "failures": missed,
    }


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schema", type=Path, default=Path("config/schemas/motor.toml"))
    parser.add_argument("--split", action="append", default=None)
    parser.add_argument("--runs", choices=RUN_MODES, action="append", default=None)
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--failures", type=int, default=30)
    args = parser.parse_args()
    schema = load_schema(args.schema)
    reports = [evaluate_attachment(schema, split=split, n=args.n, seed=args.seed, runs=runs,
                                   failures=args.failures)
               for split in args.split or ["dev"] for runs in args.runs or ["items"]]
    for report in reports:
        print(f"{report['split']:8s} {report['runs']:7s} right {report['attached_right']:.2%}"
              f"  wrong {report['attached_wrong']:.2%}  ({report['fields']} fields)  "
              + "  ".join(f"{k} {v['right']:.1%}" for k, v in report["per_layout"].items()))
    text = json.dumps(reports, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
