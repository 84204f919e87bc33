"""Product-level rates: what the rules decide on a reader's readings of rendered plates.

For each frame the true record is what the plate shows; the rules judge the reading against
it (good units: PASS is right, MISMATCH a false alarm that stops the line) and against the
same record with one character of the serial changed (a wrong plate: PASS there is the worst
failure). Judged at the final attempt, as a line sees it after its reshoots.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rules import RuleSet, Verdict, evaluate


def one_character_changed(value: str) -> str:
    """``value`` with its middle character replaced by another of the same kind."""
    if not value:
        return "X"
    i = len(value) // 2
    char = value[i]
    if char.isdigit():
        other = str((int(char) + 1) % 10)
    elif char.isalpha():
        other = "B" if char.upper() == "A" else "A"
    else:
        other = "0"
    return value[:i] + other + value[i + 1:]


class VerdictRates:
    """Counts verdicts over frames; ``summary`` gives the rates."""

    def __init__(self, rules: RuleSet, *, family: str) -> None:
        self.rules = rules
        self.family = family
        self.good: Counter[str] = Counter()
        self.changed_pass = 0
        self.changed_mismatch = 0
        self.changed = 0
        self.final_attempt = rules.policy.max_reshoots

    def add(self, reading: dict[str, Any], truth: dict[str, str],
            quality: list[Any] | None = None, *, verify: dict[str, str] | None = None,
            changed_serial: str | None = None,
            verify_changed: dict[str, str] | None = None) -> None:
        """Judge one frame's reading against its true record and a changed one (the serial
        changed by ``changed_serial`` or one middle character); ``verify`` and
        ``verify_changed`` are the reader's verify outcomes on each record, when it ran."""
        good = evaluate(reading, truth, self.rules, family=self.family,
                        attempt=self.final_attempt, quality=quality or [], verify=verify)
        self.good[good.verdict.value] += 1
        if truth.get("serial"):
            changed = dict(truth, serial=changed_serial or one_character_changed(truth["serial"]))
            wrong = evaluate(reading, changed, self.rules, family=self.family,
                             attempt=self.final_attempt, quality=quality or [],
                             verify=verify_changed)
            self.changed += 1
            self.changed_pass += int(wrong.verdict is Verdict.PASS)
            self.changed_mismatch += int(wrong.verdict is Verdict.MISMATCH)

    def summary(self) -> dict[str, Any]:
        """Rates of good units per verdict, and changed records that PASS."""
        total = max(1, sum(self.good.values()))
        return {"good_units": {v.value: round(self.good[v.value] / total, 4) for v in Verdict},
                "changed_records_pass": round(self.changed_pass / max(1, self.changed), 4),
                # the rest of the changed records end in REVIEW (which rejects by default)
                "changed_records_mismatch": round(self.changed_mismatch / max(1, self.changed),
                                                  4),
                "frames": sum(self.good.values()), "changed_records": self.changed,
                "attempt": self.final_attempt}
