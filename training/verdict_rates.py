"""Product-level rates: what the rules decide on a reader's readings of rendered plates.

For each frame the true record is what the plate shows; the rules judge the reading against
it (good units: PASS is right, MISMATCH a false alarm that stops the line) and against the
same record with one character of the serial changed (a wrong plate: PASS there is the worst
failure). ``add`` judges one frame as the final attempt; ``add_unit`` takes the unit through
its reshoots (a new frame of the same plate each time, earlier frames' evidence combined as
the recorder combines it), as a line sees it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rules import Decision, FieldCheck, FieldStatus, RuleSet, Verdict, evaluate


@dataclass
class Shot:
    """One frame of a unit as the rules see it: the reading, the frame's quality issues and
    verify's outcomes on the true record and on the changed one (None: verify not run)."""

    reading: dict[str, Any]
    quality: list[Any] = field(default_factory=list)
    verify: dict[str, str] | None = None
    verify_changed: dict[str, str] | None = None


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
        self.frames_taken = 0
        self.units = 0
        #: each good unit that got MISMATCH: the fields that differed (what to look at)
        self.false_mismatches: list[list[dict[str, Any]]] = []
        #: good units left in REVIEW, by the unsure fields that left them there
        #: ("serial: not_read"): which fields to read better
        self.review_causes: Counter[str] = Counter()

    def add(self, reading: dict[str, Any], truth: dict[str, str],
            quality: list[Any] | None = None, *, verify: dict[str, str] | None = None,
            changed_serial: str | None = None,
            verify_changed: dict[str, str] | None = None, unit: int | None = None) -> None:
        """Judge one frame's reading against its true record and a changed one (the serial
        changed by ``changed_serial`` or one middle character); ``verify`` and
        ``verify_changed`` are the reader's verify outcomes on each record, when it ran.
        ``unit`` (the frame's seed) is kept with a false MISMATCH, so it can be looked at."""
        good = evaluate(reading, truth, self.rules, family=self.family,
                        attempt=self.final_attempt, quality=quality or [], verify=verify)
        self.good[good.verdict.value] += 1
        self._note_false_mismatch(good, unit)
        self._note_review(good)
        if truth.get("serial"):
            changed = dict(truth, serial=changed_serial or one_character_changed(truth["serial"]))
            wrong = evaluate(reading, changed, self.rules, family=self.family,
                             attempt=self.final_attempt, quality=quality or [],
                             verify=verify_changed)
            self.changed += 1
            self.changed_pass += int(wrong.verdict is Verdict.PASS)
            self.changed_mismatch += int(wrong.verdict is Verdict.MISMATCH)

    def add_unit(self, shot: Callable[[int], Shot], truth: dict[str, str], *,
                 changed_serial: str | None = None, unit: int | None = None) -> None:
        """Judge one unit through its reshoots: ``shot(k)`` is its frame of attempt ``k``
        (asked for only when a verdict calls for it; the good and the changed record share
        frames). Counts the final verdicts and the frames a good unit took; ``unit`` as in
        ``add``."""
        taken: dict[int, Shot] = {}

        def frame(k: int) -> Shot:
            if k not in taken:
                taken[k] = shot(k)
            return taken[k]

        good = self._through_reshoots(frame, truth, changed=False)
        self.good[good.verdict.value] += 1
        self._note_false_mismatch(good, unit)
        self._note_review(good)
        self.units += 1
        self.frames_taken += len(taken)  # what a good unit costs the line
        if truth.get("serial"):
            changed = dict(truth, serial=changed_serial or one_character_changed(truth["serial"]))
            wrong = self._through_reshoots(frame, changed, changed=True).verdict
            self.changed += 1
            self.changed_pass += int(wrong is Verdict.PASS)
            self.changed_mismatch += int(wrong is Verdict.MISMATCH)

    def _note_review(self, decision: Decision) -> None:
        if decision.verdict is Verdict.REVIEW:
            for name in decision.causes:
                self.review_causes[f"{name}: {decision.fields[name].status.value}"] += 1

    def _note_false_mismatch(self, decision: Decision, unit: int | None) -> None:
        if decision.verdict is Verdict.MISMATCH:
            self.false_mismatches.append([
                {"field": c.field, "expected": c.expected, "read": c.read,
                 "confidence": round(c.confidence, 4), "attempt": decision.attempt,
                 **({"unit": unit} if unit is not None else {})}
                for c in decision.fields.values() if c.status is FieldStatus.MISMATCH])

    def _through_reshoots(self, frame: Callable[[int], Shot], record: dict[str, str], *,
                          changed: bool) -> Decision:
        earlier: dict[int, Mapping[str, FieldCheck]] = {}
        for attempt in range(self.final_attempt + 1):
            shot = frame(attempt)
            decision = evaluate(shot.reading, record, self.rules, family=self.family,
                                attempt=attempt, quality=shot.quality,
                                verify=shot.verify_changed if changed else shot.verify,
                                earlier=earlier)
            if decision.verdict is not Verdict.RESHOOT:
                return decision
            earlier[attempt] = decision.fields
        raise AssertionError("the final attempt never asks for a reshoot")

    def summary(self) -> dict[str, Any]:
        """Rates of good units per verdict, and changed records that PASS."""
        total = max(1, sum(self.good.values()))
        return {"good_units": {v.value: round(self.good[v.value] / total, 4) for v in Verdict},
                "changed_records_pass": round(self.changed_pass / max(1, self.changed), 4),
                # the rest of the changed records end in REVIEW (which rejects by default)
                "changed_records_mismatch": round(self.changed_mismatch / max(1, self.changed),
                                                  4),
                "frames": sum(self.good.values()), "changed_records": self.changed,
                "attempt": self.final_attempt,
                "false_mismatches": self.false_mismatches,
                "review_causes": dict(self.review_causes.most_common()),
                # with add_unit: units taken through their reshoots, frames a good unit took
                **({"reshoots": "taken", "frames_per_good_unit":
                    round(self.frames_taken / self.units, 3)} if self.units else
                   {"reshoots": "judged at the final attempt"})}
