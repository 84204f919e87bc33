"""The rule engine: compare a reading with the ERP record and decide a verdict.

``evaluate`` is a pure function of (reading, expected record, rules, attempt); the inference
pipeline's recorder and ``nameplate check`` call the same function.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from appliance.transport.messages import QualityIssue, ReshootReason
from rules.dates import parse_date
from rules.models import Decision, FieldCheck, FieldRule, FieldStatus, Policy, RuleSet, Verdict
from rules.normalise import (
    alternatives,
    close,
    fold_lookalikes,
    lookalike_map,
    lookalike_variants,
    normalise,
    numbers,
    shape,
)

ReadField = Mapping[str, object]  # {"value": str | None, "confidence": float, ...}
#: statuses of a field the reader could not read surely
UNSURE_STATUSES = (FieldStatus.NOT_READ, FieldStatus.FORMAT_ERROR, FieldStatus.CONFUSED)


def _for_format(rule: FieldRule, value: str) -> str:
    """The value as the format sees it: upper case / without spaces when the rule folds them."""
    if "case" in rule.normalise:
        value = value.upper()
    if "space" in rule.normalise:
        value = re.sub(r"\s+", "", value)
    return value


def _format_ok(rule: FieldRule, value: str) -> bool:
    return rule.format is None or re.fullmatch(rule.format, _for_format(rule, value)) is not None


def _repair_by_format(rule: FieldRule, value: str) -> str | None:
    """The single look-alike variant of ``value`` that fits the format, if exactly one does."""
    if rule.format is None:
        return None
    candidates = lookalike_variants(_for_format(rule, value), rule.lookalikes)
    fits = {_for_format(rule, v) for v in candidates if _format_ok(rule, v)}
    return fits.pop() if len(fits) == 1 else None


def _same_value(read: str, expected: str, tolerance: float) -> bool:
    """Equal structure and, number by number, equal within ``tolerance`` (both normalised)."""
    if shape(read) != shape(expected):
        return False
    a, b = numbers(read), numbers(expected)
    return all(close(x, y, tolerance) for x, y in zip(a, b, strict=True))


def _values_equal(rule: FieldRule, read: str, expected: str) -> bool:
    if rule.compare == "date":  # by meaning: 05/2024 == 2024-05 == MAY 2024
        plate, erp = parse_date(read), parse_date(expected)
        return plate is not None and erp is not None and plate.agrees(erp)
    a, b = normalise(read, rule.normalise), normalise(expected, rule.normalise)
    if rule.compare == "numeric":
        return _same_value(a, b, rule.tolerance)
    if rule.compare == "contains":
        present, wanted = alternatives(a), alternatives(b)
        if len(present) == len(wanted):  # same number of values: same values, same order
            return all(_same_value(p, w, rule.tolerance)
                       for p, w in zip(present, wanted, strict=True))
        return all(any(_same_value(p, w, rule.tolerance) for p in present) for w in wanted)
    return a == b


def _punctuation_dropped(read: str, expected: str) -> bool:
    """Whether the two differ only by punctuation marks one of them lacks (``614 A`` for
    ``61.4 A``), not by a mark put for another (``230-400 V`` for ``230/400 V``)."""
    def marks(value: str) -> str:
        return re.sub(r"[0-9A-Za-z\s]", "", value)

    if re.sub(r"[^0-9A-Za-z]", "", read) != re.sub(r"[^0-9A-Za-z]", "", expected):
        return False
    fewer, more = sorted((marks(read), marks(expected)), key=len)
    rest = iter(more)
    return all(mark in rest for mark in fewer)  # the fewer marks, in order, within the more


#: what a table cell's border, the plate's edge or a scratch beside a value reads as
EDGE_STROKES = "1Iil|!"


def _edge_stroke_added(read: str, expected: str) -> bool:
    """Whether the reading is the expected value with one stroke more at either end
    (``1952 r/min`` for ``952 r/min``, ``E22-112L-81`` for ``E22-112L-8``)."""
    r, e = re.sub(r"\s", "", read), re.sub(r"\s", "", expected)
    return len(r) == len(e) + 1 and ((r[0] in EDGE_STROKES and r[1:] == e)
                                     or (r[-1] in EDGE_STROKES and r[:-1] == e))


def _holds_more(read: str | None, expected: str | None) -> bool:
    """Whether the reading is the expected value with more around it (``VX132M-4X`` for
    ``VX132M-4``): the plate may well carry more than the record, so verify cannot
    confirm it."""
    if not read or not expected:
        return False
    a, b = normalise(read, ("case", "space")), normalise(expected, ("case", "space"))
    return b in a and a != b


def check_field(name: str, rule: FieldRule, read: ReadField | None, expected: str | None,
                policy: Policy) -> FieldCheck:
    """Check one field; returns its status with a one-line explanation."""
    value = None if read is None else read.get("value")
    confidence = 0.0 if read is None else float(read.get("confidence") or 0.0)  # type: ignore[arg-type]
    threshold = rule.min_confidence if rule.min_confidence is not None else policy.min_confidence

    def result(status: FieldStatus, why: str, shown: str | None = None) -> FieldCheck:
        return FieldCheck(field=name, status=status, expected=expected,
                          read=shown if shown is not None else (str(value) if value else None),
                          confidence=confidence, required=rule.required, explanation=why)

    if not value:
        return result(FieldStatus.NOT_READ, "nothing was read for this field")
    text = str(value).strip()
    repaired = ""
    if not _format_ok(rule, text):
        fixed = _repair_by_format(rule, text)
        if fixed is None:
            return result(FieldStatus.FORMAT_ERROR, f"{text!r} does not match the format "
                          f"{rule.format}")
        repaired, text = f" (read {value!r}, fixed by the format)", fixed
    if rule.compare == "format":
        return result(FieldStatus.OK, f"format ok{repaired}", text)
    if rule.compare == "one_of":
        allowed = {normalise(a, rule.normalise): a for a in rule.allowed}
        if normalise(text, rule.normalise) in allowed:
            return result(FieldStatus.OK, f"allowed value{repaired}", text)
        return result(FieldStatus.MISMATCH if confidence >= threshold else FieldStatus.CONFUSED,
                      f"{text!r} is not one of {', '.join(rule.allowed)}", text)
    if expected is None:
        return result(FieldStatus.OK, "no expected value: format checked only", text)
    if _values_equal(rule, text, expected):
        return result(FieldStatus.OK, f"matches the expected value{repaired}", text)
    mapping = lookalike_map(rule.lookalikes)
    a = fold_lookalikes(normalise(text, rule.normalise), mapping)
    b = fold_lookalikes(normalise(expected, rule.normalise), mapping)
    if a == b:
        return result(FieldStatus.CONFUSED, f"read {text!r}, expected {expected!r}: differs only "
                      "in look-alike characters", text)
    if rule.compare != "date" and _punctuation_dropped(a, b):
        # a dropped decimal point or dash is far likelier a misread than a misprinted plate
        return result(FieldStatus.CONFUSED, f"read {text!r}, expected {expected!r}: differs only "
                      "by a dropped or extra punctuation mark", text)
    if _edge_stroke_added(a, b):
        # a border or the plate's edge read as a "1" beside the value: seen behind false
        # MISMATCHes (`1952 r/min`, `162,53 A`); a plate with such a value still is no PASS
        return result(FieldStatus.CONFUSED, f"read {text!r}, expected {expected!r}: differs only "
                      "by a stroke at one end (an edge or border read as a 1)", text)
    if confidence < threshold:
        return result(FieldStatus.CONFUSED, f"read {text!r} with low confidence "
                      f"{confidence:.2f} < {threshold:.2f}, expected {expected!r}", text)
    return result(FieldStatus.MISMATCH, f"read {text!r}, expected {expected!r}", text)


def _first_seen(earlier: Mapping[int, Mapping[str, FieldCheck]], check: FieldCheck,
                *statuses: FieldStatus, same_reading: bool = False,
                min_confidence: float = 0.0) -> int | None:
    """The first earlier attempt that gave ``check``'s field one of ``statuses`` against the
    same expected value (at least ``min_confidence``; with ``same_reading``, also read as
    the same value)."""
    def same(a: str | None, b: str | None) -> bool:
        return a is not None and b is not None and normalise(a, ("case", "space")) == \
            normalise(b, ("case", "space"))

    return next((k for k, frame in sorted(earlier.items())
                 if (old := frame.get(check.field)) is not None and old.status in statuses
                 and old.expected == check.expected and old.confidence >= min_confidence
                 and (not same_reading or same(old.read, check.read))), None)


def _confirmed_by_earlier(checks: dict[str, FieldCheck],
                          earlier: Mapping[int, Mapping[str, FieldCheck]],
                          verify: Mapping[str, str], policy: Policy) -> list[str]:
    """Fields whose difference from the record an earlier frame of the plate confirms: it
    read them surely as other than the record too, or read the same value nearly surely
    (``policy.agree_confidence``: the frames agree). A field this frame reads nearly surely
    as an earlier frame's sure difference becomes that MISMATCH (never where verify finds
    the record clearly)."""
    floor = policy.agree_confidence
    confirmed = []
    for name, check in checks.items():
        if check.status is FieldStatus.MISMATCH:
            if _first_seen(earlier, check, FieldStatus.MISMATCH) is not None or \
                    _first_seen(earlier, check, FieldStatus.CONFUSED, same_reading=True,
                                min_confidence=floor) is not None:
                confirmed.append(name)
        elif check.status is FieldStatus.CONFUSED and check.confidence >= floor \
                and verify.get(name) != "verified" \
                and _first_seen(earlier, check, FieldStatus.OK) is None \
                and (k := _first_seen(earlier, check, FieldStatus.MISMATCH,
                                      same_reading=True)) is not None:
            checks[name] = check.model_copy(update={
                "status": FieldStatus.MISMATCH,
                "explanation": f"{check.explanation}; attempt {k} read it the same, surely: "
                               "the frames agree"})
            confirmed.append(name)
    return confirmed


def with_earlier_frames(checks: Mapping[str, FieldCheck],
                        earlier: Mapping[int, Mapping[str, FieldCheck]]) -> dict[str, FieldCheck]:
    """This frame's field checks with the evidence of earlier frames of the same plate.

    A field an earlier frame read as the expected value (``ok`` against the same expected
    value) stays ``ok`` when this frame could not read it surely. Two frames that disagree
    make the field ``confused``: one read the expected value and the other surely something
    else, in either order (never a MISMATCH or a PASS on a contradicted reading). The other
    statuses of an earlier frame were not sure of anything and carry nothing.
    """
    merged = dict(checks)
    for name, check in checks.items():
        matched = _first_seen(earlier, check, FieldStatus.OK)
        differed = _first_seen(earlier, check, FieldStatus.MISMATCH)
        if check.status is FieldStatus.MISMATCH and matched is not None:
            disagree = f"attempt {matched} read the expected value on this plate"
        elif check.status is FieldStatus.OK and differed is not None:
            disagree = (f"attempt {differed} read {earlier[differed][name].read!r} surely on "
                        "this plate")
        else:
            if check.status in UNSURE_STATUSES and matched is not None and differed is None:
                merged[name] = check.model_copy(update={
                    "status": FieldStatus.OK,
                    "explanation": f"{check.explanation}; attempt {matched} read the expected "
                                   "value on this plate"})
            continue
        merged[name] = check.model_copy(update={
            "status": FieldStatus.CONFUSED,
            "explanation": f"{check.explanation}; but {disagree}: the frames disagree"})
    return merged


def evaluate(reading: Mapping[str, ReadField], expected: Mapping[str, str] | None,
             rules: RuleSet, *, family: str, attempt: int = 0,
             read_error: str | None = None, quality: Sequence[QualityIssue] = (),
             verify: Mapping[str, str] | None = None,
             earlier: Mapping[int, Mapping[str, FieldCheck]] | None = None) -> Decision:
    """Decide the verdict of one inspection.

    ``reading`` maps field → {"value", "confidence"}; ``expected`` is the ERP record's fields
    (None when the unit has no record); ``attempt`` counts reshoots already made;
    ``quality`` lists what the reader found wrong with the frame, added to the reason of a
    reshoot or review so the operator (and the camera) knows what to change. ``verify``
    (``reader.verify_known``) maps fields to the reader's verdict on the expected value:
    a MISMATCH stands only where verify also says ``differs``; where it found the expected
    value plausible or could not tell, the field is unsure (a reshoot, never a PASS).
    ``earlier`` maps the attempts of this unit's current run of automatic reshoots (the same
    plate in the same place) to their field checks: see :func:`with_earlier_frames`.
    """
    if family not in rules.families:
        raise KeyError(f"no rules for plate family {family!r}")
    policy = rules.policy
    checks = {
        name: check_field(name, rule, reading.get(name),
                          None if expected is None else (expected.get(name) or None), policy)
        for name, rule in rules.families[family].fields.items()
    }
    if expected is not None:  # a field the record leaves out is not on this unit's plate
        for name, check in checks.items():
            if check.status is FieldStatus.NOT_READ and not expected.get(name):
                checks[name] = check.model_copy(update={
                    "status": FieldStatus.NOT_EXPECTED,
                    "explanation": "not read, and the ERP record does not list it"})
    for name, check in checks.items():
        seen = (verify or {}).get(name)
        if policy.verified_confirms and seen == "verified" and check.status in UNSURE_STATUSES \
                and not _holds_more(check.read, check.expected):
            checks[name] = check.model_copy(update={
                "status": FieldStatus.OK,
                "explanation": f"{check.explanation}; verify finds the expected value clearly "
                               "on the plate"})
        if check.status is FieldStatus.MISMATCH and seen is not None and seen != "differs":
            checks[name] = check.model_copy(update={
                "status": FieldStatus.CONFUSED,
                "explanation": f"{check.explanation}; but verify finds the expected value "
                               f"{seen}: not sure"})
    confirming = policy.confirm_mismatch and policy.combine_reshoots
    confirmed: list[str] = []
    if policy.combine_reshoots:
        checks = with_earlier_frames(checks, earlier or {})
        if confirming:
            confirmed = _confirmed_by_earlier(checks, earlier or {}, verify or {}, policy)
    required = [c for c in checks.values() if c.required]
    # A field read confidently and wrong condemns the plate even if the field is optional.
    mismatched = [c.field for c in checks.values() if c.status is FieldStatus.MISMATCH]
    unsure = [c.field for c in required if c.status not in (
        FieldStatus.OK, FieldStatus.MISMATCH, FieldStatus.NOT_EXPECTED)]

    def decide(verdict: Verdict, reason: str, causes: list[str],
               reshoot_reason: ReshootReason | None = None) -> Decision:
        return Decision(verdict=verdict, reason=reason, causes=causes, fields=checks,
                        attempt=attempt, reshoot_reason=reshoot_reason)

    if expected is None and policy.review_without_record:
        unread = [c.field for c in required if c.status is not FieldStatus.OK]
        return decide(Verdict.REVIEW, "no ERP record for this unit", unread)
    if mismatched:
        details = "; ".join(checks[f].explanation for f in mismatched)
        if not confirming or any(f in confirmed for f in mismatched):
            return decide(Verdict.MISMATCH, f"wrong plate: {details}", mismatched)
        if attempt < policy.max_reshoots:
            return decide(Verdict.RESHOOT, f"to confirm with a second frame: {details}",
                          mismatched, ReshootReason.CONFIRM)
        return decide(Verdict.REVIEW, f"one frame only, no reshoot left to confirm it: "
                      f"{details}", mismatched)
    if read_error or unsure:
        what = read_error or "not sure of " + ", ".join(
            f"{f} ({checks[f].status.value})" for f in unsure)
        if quality:
            what += " (frame: " + "; ".join(str(q) for q in quality) + ")"
        if attempt < policy.max_reshoots:
            why = (quality[0].reason if quality
                   else ReshootReason.READ_ERROR if read_error else ReshootReason.UNSURE)
            return decide(Verdict.RESHOOT, what, unsure, why)
        return decide(Verdict.REVIEW, f"{what}; still unsure after {attempt} reshoot(s)", unsure)
    return decide(Verdict.PASS, "every required field matches", [])
