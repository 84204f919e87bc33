"""Product-level verdict rates from frames read once, for a sweep of confidence thresholds.

``python -m training.calibrate.verdicts --reads reads/ --split station
--calibration models/ppocr-reader/calibration.json --threshold 0.6 --threshold 0.9 [--verify]``

For each threshold (the rules' ``policy.min_confidence``): good units PASS / MISMATCH /
RESHOOT / REVIEW at the final attempt, and records with one serial character changed that
PASS (``training.verdict_rates``). Without ``--calibration`` the reader's raw scores
are judged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from appliance.reader.calibration import Calibration
from appliance.schema import PlateSchema, load_schema
from appliance.transport.messages import QualityIssue
from rules import RuleSet, load_rules
from training.calibrate.fit import attach, frames
from training.calibrate.verify_margin import restate
from training.evaluate import shown_values
from training.verdict_rates import VerdictRates


def rates(path: Path, schema: PlateSchema, rules: RuleSet, *,
          calibration: Calibration | None, threshold: float, use_verify: bool = False,
          field_thresholds: dict[str, float] | None = None,
          verified_confirms: bool | None = None, verify_margin: float | None = None,
          family: str = "motor") -> dict[str, Any]:
    """Verdict rates of one collected split under ``threshold`` (and per-field ones);
    ``verified_confirms`` overrides the rules' policy of that name, ``verify_margin``
    re-decides verify from the collected margins (None: as collected)."""
    update: dict[str, Any] = {"min_confidence": threshold}
    if verified_confirms is not None:
        update["verified_confirms"] = verified_confirms
    policy = rules.policy.model_copy(update=update)
    judged = rules.model_copy(update={"policy": policy})
    if field_thresholds:
        rule_set = rules.families[family]
        rules_of = {name: rule.model_copy(update={"min_confidence": field_thresholds[name]})
                  if name in field_thresholds else rule
                  for name, rule in rule_set.fields.items()}
        judged = judged.model_copy(update={"families": {
            **rules.families, family: rule_set.model_copy(update={"fields": rules_of})}})
    counter = VerdictRates(judged, family=family)
    for record in frames(path):
        fields = attach(record, schema)
        reading = {}
        for name, got in fields.items():
            conf = got.confidence if calibration is None or got.value is None \
                else calibration.probability(schema.fields[name], got.confidence)
            reading[name] = {"value": got.value, "confidence": conf}
        truth = shown_values(record["fields"])
        quality = [QualityIssue.model_validate(q) for q in record.get("quality", [])
                   if isinstance(q, dict)]
        if not use_verify:
            counter.add(reading, truth, quality, unit=record.get("seed"))
            continue
        checked = record.get("verify", {})
        read = record.get("reading", {})
        seen = {name: {kind: restate(v[kind], v.get(f"{kind}_margin"), verify_margin,
                                     read.get(name), want)
                       for kind, want in (("true", truth.get(name, "")),
                                          ("changed", v["changed_value"]))}
                for name, v in checked.items()}
        # the changed record's serial is the value verify was run on (one random change)
        serial = checked.get("serial")
        counter.add(reading, truth, quality,
                    verify={name: v["true"] for name, v in seen.items()},
                    changed_serial=serial["changed_value"] if serial else None,
                    verify_changed={name: (v["changed"] if name == "serial" else v["true"])
                                    for name, v in seen.items()},
                    unit=record.get("seed"))
    return {"threshold": threshold, **counter.summary()}


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=Path, required=True)
    parser.add_argument("--split", default="station")
    parser.add_argument("--schema", type=Path, default=Path("config/schemas/motor.toml"))
    parser.add_argument("--rules", type=Path, default=Path("config/rules.toml"))
    parser.add_argument("--calibration", type=Path, default=None)
    parser.add_argument("--threshold", type=float, action="append", default=None)
    parser.add_argument("--field-threshold", action="append", default=[],
                        metavar="FIELD=T", help="a field's own threshold (repeatable)")
    parser.add_argument("--verify", action="store_true",
                        help="use the collected verify outcomes, as reader.verify_known does")
    parser.add_argument("--verify-margin", type=float, default=None,
                        help="re-decide verify at this margin (log odds) from the collected "
                             "margins")
    parser.add_argument("--verified-confirms", choices=["yes", "no"], default=None,
                        help="override the rules' policy.verified_confirms")
    args = parser.parse_args()
    schema, rules = load_schema(args.schema), load_rules(args.rules)
    calibration = Calibration.load(args.calibration) if args.calibration else None
    per_field = {name: float(value) for name, _, value in
                 (item.partition("=") for item in args.field_threshold)}
    for threshold in args.threshold or [rules.policy.min_confidence]:
        print(json.dumps(rates(args.reads / f"{args.split}.jsonl", schema, rules,
                               calibration=calibration, threshold=threshold,
                               use_verify=args.verify, field_thresholds=per_field,
                               verified_confirms=None if args.verified_confirms is None
                               else args.verified_confirms == "yes",
                               verify_margin=args.verify_margin)))


if __name__ == "__main__":
    main()
