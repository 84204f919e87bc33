"""Safe verify's threshold, measured: true values verified against one-character changes
verified, for a sweep of margins (log odds of the expected value over its best rival).

``python -m training.calibrate.verify_margin --reads reads/ --split station [--plot out.png]``

Reads files written by ``training.calibrate.collect`` (which keeps each verify margin). A
change the rules cannot tell from the true value (``0.75 kW`` -> ``0.75kW``, ``575 V`` ->
``575``: same value once normalised) is not a wrong record, so it is left out of the
changed side; how many were left out is printed.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from appliance.reader.ppocr.verify import DIFFERS_MARGIN
from appliance.reader.textmatch import fold
from rules import FieldStatus, RuleSet, load_rules
from rules.engine import check_field
from training.calibrate.fit import frames

MARGINS = (0.0, 0.5, 1.0, 1.39, 1.5, 2.0, 2.5, 3.0, 4.0)


def restate(status: str, margin: float | None, threshold: float | None,
            read: dict[str, Any] | None, want: str, *,
            differs_margin: float = DIFFERS_MARGIN) -> str:
    """The verify outcome had the margin threshold been ``threshold`` (None: as collected)
    and "differs" needed the expected value ``differs_margin`` (log odds) below its best
    rival, as ``appliance.reader.ppocr.verify`` decides now."""
    if threshold is not None and margin is not None and margin >= threshold:
        return "verified"
    if threshold is not None and status == "verified":
        value, confidence = (read or {}).get("value"), float((read or {}).get("confidence") or 0)
        differs = value is not None and fold(str(value)) != fold(want)
        status = "differs" if differs and confidence >= 0.5 else "unreadable"
    if status == "differs" and margin is not None and margin > -differs_margin:
        return "unreadable"
    return status


def real_change(rules: RuleSet, family: str, name: str, truth: str, changed: str) -> bool:
    """Whether ``changed`` is a really wrong record: the rules tell it from ``truth`` and it
    is not the same value with its unit or a space dropped (``575 V`` -> ``575``)."""
    rule = rules.families[family].fields.get(name)
    if rule is None:
        return truth != changed
    if rule.compare in ("numeric", "contains") and \
            re.findall(r"\d+", truth) == re.findall(r"\d+", changed) and \
            re.sub(r"[\d\s.,/]", "", changed) in re.sub(r"[\d\s.,/]", "", truth):
        return False
    check = check_field(name, rule, {"value": truth, "confidence": 1.0}, changed, rules.policy)
    return check.status is not FieldStatus.OK


def sweep(path: Path, rules: RuleSet, *, family: str = "motor",
          margins: tuple[float, ...] = MARGINS) -> dict[str, Any]:
    """Per margin: share of true values verified, and of real changes verified."""
    pairs: list[tuple[float | None, float | None, bool]] = []
    for record in frames(path):
        for name, seen in record.get("verify", {}).items():
            truth = str(record["fields"][name]["value"])
            pairs.append((seen.get("true_margin"), seen.get("changed_margin"),
                          real_change(rules, family, name, truth, seen["changed_value"])))
    if pairs and all(t is None and c is None for t, c, _ in pairs):
        raise ValueError(f"{path}: no verify margins (collected before margins were kept)")
    real = [c for _, c, is_real in pairs if is_real]
    rows = []
    for threshold in margins:
        true = sum(t is not None and t >= threshold for t, _, _ in pairs)
        changed = sum(c is not None and c >= threshold for c in real)
        rows.append({"margin": threshold, "true_verified": round(true / max(1, len(pairs)), 4),
                     "changed_verified": round(changed / max(1, len(real)), 5),
                     "changed_verified_count": changed})
    return {"file": str(path), "values": len(pairs), "real_changes": len(real),
            "not_real_changes": len(pairs) - len(real), "sweep": rows}


def plot(reports: list[dict[str, Any]], out: Path) -> Path:
    """True values verified against real changes verified, one point per margin."""
    from training.calibrate.plot import plot_tradeoff

    curves = {f"{Path(report['file']).parent.name}: {report['values']} values": [
        (row["changed_verified"] * 100, row["true_verified"] * 100, f"{row['margin']:g}")
        for row in report["sweep"]] for report in reports}
    return plot_tradeoff(curves, out, x_label="one-character changes verified (%)",
                         y_label="true values verified (%)", x_max=0.2, y_range=(60, 100),
                         x_target=0.1)


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=Path, action="append", required=True,
                        help="a folder of collected files (repeatable)")
    parser.add_argument("--split", default="station")
    parser.add_argument("--rules", type=Path, default=Path("config/rules.toml"))
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    rules = load_rules(args.rules)
    reports = [sweep(folder / f"{args.split}.jsonl", rules) for folder in args.reads]
    for report in reports:
        print(json.dumps(report))
    if args.plot:
        plot(reports, args.plot)


if __name__ == "__main__":
    main()
