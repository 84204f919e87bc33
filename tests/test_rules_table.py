"""Table-driven rule-engine cases: a reading, an ERP record, and the verdict QA wants."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance.transport import QualityIssue, ReshootReason
from rules import FieldStatus, Verdict, evaluate, load_rules

RULES = load_rules(Path(__file__).parent / "data" / "rules_table.toml")
RECORD = {
    "manufacturer": "VOLTREX", "model": "VX132M-4", "serial": "48213907KQ",
    "voltage": "230/400 V", "current": "15.2/8.8 A", "power": "4 kW", "frequency": "50 Hz",
    "speed": "1440 r/min", "manufactured": "03/2026", "ip_rating": "IP55",
}
Read = str | tuple[str | None, float | None] | None


@dataclass
class Case:
    """One row of the table."""

    name: str
    verdict: Verdict
    read: dict[str, Read] = field(default_factory=dict)      # changes to the perfect reading
    expect: dict[str, str | None] = field(default_factory=dict)  # changes to the ERP record
    statuses: dict[str, FieldStatus] = field(default_factory=dict)
    attempt: int = 0
    no_record: bool = False
    error: str | None = None
    confidence: float = 0.995
    family: str = "motor"
    causes: list[str] | None = None
    verify: dict[str, str] | None = None  # the reader's verify outcome per expected field


V, S = Verdict, FieldStatus
CASES = [
    # --- everything right ------------------------------------------------------------------
    Case("exact reading passes", V.PASS),
    Case("equal but low confidence still verifies", V.PASS, confidence=0.2),
    Case("confidence missing counts as zero but equal passes", V.PASS, read={"model": ("VX132M-4", None)}),
    Case("case folding", V.PASS, read={"model": "vx132m-4", "ip_rating": "ip55"}),
    Case("white space folding", V.PASS, read={"voltage": "230/400V", "current": "15.2/8.8A"}),
    Case("padding is ignored", V.PASS, read={"model": "  VX132M-4 "}),
    Case("space inside IP code", V.PASS, read={"ip_rating": "IP 55"}),
    Case("decimal comma", V.PASS, read={"current": "15,2/8,8 A"}),
    Case("trailing zero is the same number", V.PASS, read={"power": "4.0 kW"}),
    Case("decimal comma and trailing zero", V.PASS, read={"power": "4,0 kW"}),
    Case("rpm is r/min", V.PASS, read={"speed": "1440 rpm"}),
    Case("min-1 is r/min", V.PASS, read={"speed": "1440 min-1"}),
    Case("1/min is r/min", V.PASS, read={"speed": "1440 1/min"}),
    Case("unit case", V.PASS, read={"power": "4 KW", "frequency": "50 HZ"}),
    # --- dual values and tolerances ---------------------------------------------------------
    Case("plate dual voltage holds the expected single voltage", V.PASS,
         read={"voltage": "230/400 V"}, expect={"voltage": "400 V"}),
    Case("plate dual frequency holds the expected one", V.PASS, read={"frequency": "50/60 Hz"}),
    Case("dual voltage missing the expected value", V.MISMATCH,
         read={"voltage": "230/690 V"}, expect={"voltage": "400 V"}, statuses={"voltage": S.MISMATCH}),
    Case("single voltage where a dual one is expected", V.MISMATCH,
         read={"voltage": "400 V"}, statuses={"voltage": S.MISMATCH}),
    Case("range is not a dual voltage", V.MISMATCH, read={"voltage": "230-400 V"},
         statuses={"voltage": S.MISMATCH}),
    Case("dual values in the wrong order", V.MISMATCH, read={"voltage": "400/230 V"},
         statuses={"voltage": S.MISMATCH}),
    Case("current within 2 % tolerance", V.PASS, read={"current": "15.3/8.8 A"}),
    Case("current outside tolerance", V.MISMATCH, read={"current": "15.9/8.8 A"},
         statuses={"current": S.MISMATCH}),
    Case("power differs", V.MISMATCH, read={"power": "5.5 kW"}, statuses={"power": S.MISMATCH}),
    Case("power in HP instead of kW", V.MISMATCH, read={"power": "4 HP"}, statuses={"power": S.MISMATCH}),
    Case("60 Hz plate on a 50 Hz unit", V.MISMATCH, read={"frequency": "60 Hz"},
         statuses={"frequency": S.MISMATCH}),
    Case("speed differs by 5 r/min (no tolerance)", V.MISMATCH, read={"speed": "1445 r/min"},
         statuses={"speed": S.MISMATCH}),
    Case("speed without unit is a format error", V.RESHOOT, read={"speed": "1440"},
         statuses={"speed": S.FORMAT_ERROR}, causes=["speed"]),
    # --- look-alikes --------------------------------------------------------------------------
    Case("O in a digit position is fixed by the format", V.PASS, read={"serial": "482139O7KQ"},
         statuses={"serial": S.OK}),
    Case("Z and B in digit positions are fixed by the format", V.PASS,
         read={"serial": "4B21390ZKQ"}, expect={"serial": "48213902KQ"}),
    Case("S for 5 in an IP code is fixed by the format", V.PASS, read={"ip_rating": "IPS5"}),
    Case("fixed digit that still differs is a mismatch", V.MISMATCH, read={"serial": "4821390BKQ"},
         expect={"serial": "48213906KQ"}, statuses={"serial": S.MISMATCH}),
    Case("look-alike in a letters-and-digits field is confused", V.RESHOOT,
         read={"model": "VXI32M-4"}, statuses={"model": S.CONFUSED}, causes=["model"]),
    Case("S for 5 in a model code is confused", V.RESHOOT, read={"model": "AP-6S/160"},
         expect={"model": "AP-65/160"}, statuses={"model": S.CONFUSED}),
    Case("G for 6 in a model code is confused", V.RESHOOT, read={"model": "VX1G0L-4"},
         expect={"model": "VX160L-4"}, statuses={"model": S.CONFUSED}),
    Case("letter in digit position that is no look-alike", V.RESHOOT, read={"serial": "4821390TKQ"},
         statuses={"serial": S.FORMAT_ERROR}),
    Case("zero in a letter position fixed to O, still differs", V.MISMATCH,
         read={"serial": "48213907K0"}, statuses={"serial": S.MISMATCH}),
    Case("non-look-alike substitution in a model is a mismatch", V.MISMATCH,
         read={"model": "VX132M-A"}, statuses={"model": S.MISMATCH}),
    # --- wrong plates ---------------------------------------------------------------------------
    Case("swapped serial", V.MISMATCH, read={"serial": "48213908KQ"}, statuses={"serial": S.MISMATCH},
         causes=["serial"]),
    Case("wrong model", V.MISMATCH, read={"model": "VX160L-4"}, statuses={"model": S.MISMATCH}),
    Case("wrong IP rating", V.MISMATCH, read={"ip_rating": "IP54"}, statuses={"ip_rating": S.MISMATCH}),
    Case("wrong optional manufacturer still condemns", V.MISMATCH, read={"manufacturer": "NORDMOTOR"},
         statuses={"manufacturer": S.MISMATCH}),
    Case("two wrong fields", V.MISMATCH, read={"model": "VX160L-4", "serial": "48214011KR"},
         causes=["model", "serial"]),
    Case("mismatch beats unreadable fields", V.MISMATCH, read={"serial": "48213908KQ", "power": None},
         statuses={"power": S.NOT_READ}, causes=["serial"]),
    Case("mismatch after reshoots is still a mismatch", V.MISMATCH, read={"serial": "48213908KQ"},
         attempt=2),
    # --- confidence ----------------------------------------------------------------------------
    Case("differs at exactly the threshold is a mismatch", V.MISMATCH,
         read={"model": ("VX160L-4", 0.6)}, statuses={"model": S.MISMATCH}),
    Case("differs just under the threshold is confused", V.RESHOOT,
         read={"model": ("VX160L-4", 0.59)}, statuses={"model": S.CONFUSED}),
    Case("per-field threshold (serial 0.8)", V.RESHOOT, read={"serial": ("48213908KQ", 0.7)},
         statuses={"serial": S.CONFUSED}),
    Case("per-field threshold met", V.MISMATCH, read={"serial": ("48213908KQ", 0.85)},
         statuses={"serial": S.MISMATCH}),
    # --- fields the record leaves out, and verify ---------------------------------------------
    Case("a field the record leaves out and the plate lacks does not hold a pass", V.PASS,
         read={"power": None}, expect={"power": None}, statuses={"power": S.NOT_EXPECTED}),
    Case("a field the record lists but nobody read still asks for a reshoot", V.RESHOOT,
         read={"power": None}, statuses={"power": S.NOT_READ}),
    Case("a confident difference that verify confirms is a mismatch", V.MISMATCH,
         read={"serial": "48213908KQ"}, verify={"serial": "differs"},
         statuses={"serial": S.MISMATCH}),
    Case("a confident difference where verify finds the record's value is unsure", V.RESHOOT,
         read={"serial": "48213908KQ"}, verify={"serial": "verified"},
         statuses={"serial": S.CONFUSED}),
    Case("a confident difference verify cannot judge is unsure", V.RESHOOT,
         read={"serial": "48213908KQ"}, verify={"serial": "unreadable"},
         statuses={"serial": S.CONFUSED}),
    Case("verify never turns an unread field into a pass", V.RESHOOT,
         read={"serial": None}, verify={"serial": "verified"}, statuses={"serial": S.NOT_READ}),
    # --- not read, reshoot, review --------------------------------------------------------------
    Case("required field not read", V.RESHOOT, read={"model": None}, statuses={"model": S.NOT_READ},
         causes=["model"]),
    Case("empty string is not read", V.RESHOOT, read={"serial": ""}, statuses={"serial": S.NOT_READ}),
    Case("not read on the first reshoot", V.RESHOOT, read={"model": None}, attempt=1),
    Case("not read after the last reshoot goes to review", V.REVIEW, read={"model": None}, attempt=2,
         causes=["model"]),
    Case("format error after the last reshoot goes to review", V.REVIEW,
         read={"serial": "4821390TKQ"}, attempt=2),
    Case("confused after the last reshoot goes to review", V.REVIEW, read={"model": "VXI32M-4"},
         attempt=2),
    Case("optional manufacturer not read", V.PASS, read={"manufacturer": None},
         statuses={"manufacturer": S.NOT_READ}),
    Case("optional date with a bad format does not block", V.PASS, read={"manufactured": "2026/03"},
         statuses={"manufactured": S.FORMAT_ERROR}),
    Case("date compared by format only", V.PASS, read={"manufactured": "04/2026"},
         statuses={"manufactured": S.OK}),
    Case("blank frame", V.RESHOOT, read={k: None for k in RECORD}),
    Case("reader failure", V.RESHOOT, error="tesseract failed: timeout"),
    Case("reader failure after the last reshoot", V.REVIEW, error="tesseract failed", attempt=2),
    # --- ERP record -----------------------------------------------------------------------------
    Case("no ERP record for the unit", V.REVIEW, no_record=True),
    Case("no ERP record and nothing read", V.REVIEW, no_record=True, read={k: None for k in RECORD}),
    Case("ERP leaves a field blank: format only", V.PASS, expect={"power": None},
         statuses={"power": S.OK}),
    Case("extra fields in the reading are ignored", V.PASS, read={"cos_phi": "0.82"}),
    Case("a dropped decimal point is a misread, not a wrong plate", V.RESHOOT,
         read={"current": "152/8.8 A"}, statuses={"current": S.CONFUSED}),
    Case("a dropped dash in a code is a misread too", V.RESHOOT, read={"model": "VX132M4"},
         statuses={"model": S.CONFUSED}),
    Case("a decimal point with other digits still differs", V.MISMATCH,
         read={"current": "152/6.8 A"}, statuses={"current": S.MISMATCH}),
    Case("a border read as a 1 before a value is a misread, not a wrong plate (was MISMATCH)",
         V.RESHOOT, read={"speed": "11440 r/min"}, statuses={"speed": S.CONFUSED}),
    Case("a stroke after a code is a misread too (was MISMATCH)", V.RESHOOT,
         read={"model": "VX132M-4I"}, statuses={"model": S.CONFUSED}),
    Case("another digit before a value still differs", V.MISMATCH,
         read={"speed": "21440 r/min"}, statuses={"speed": S.MISMATCH}),
    Case("a stroke before a value after the last reshoot: REVIEW, never PASS", V.REVIEW,
         read={"power": "14 kW"}, statuses={"power": S.CONFUSED}, attempt=2),
    # --- one_of (pump family) -------------------------------------------------------------------
    Case("one_of accepts an allowed value", V.PASS, family="pump",
         read={"frequency": "60 Hz"}),
    Case("one_of rejects another value", V.MISMATCH, family="pump", read={"frequency": "55 Hz"},
         statuses={"frequency": S.MISMATCH}),
    Case("one_of unsure when not confident", V.RESHOOT, family="pump",
         read={"frequency": ("55 Hz", 0.3)}, statuses={"frequency": S.CONFUSED}),
]


def reading_for(case: Case) -> dict[str, dict[str, object]]:
    reading: dict[str, dict[str, object]] = {
        k: {"value": v, "confidence": case.confidence} for k, v in RECORD.items()}
    for name, change in case.read.items():
        if isinstance(change, tuple):
            reading[name] = {"value": change[0], "confidence": change[1]}
        else:
            reading[name] = {"value": change, "confidence": case.confidence}
    return reading


def test_table_is_large_and_covers_every_outcome() -> None:
    assert len(CASES) >= 60
    assert {c.verdict for c in CASES} == set(Verdict)
    assert {s for c in CASES for s in c.statuses.values()} == set(FieldStatus)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case) -> None:
    expected = None if case.no_record else {
        k: v for k, v in {**RECORD, **case.expect}.items() if v is not None}
    decision = evaluate(reading_for(case), expected, RULES, family=case.family,
                        attempt=case.attempt, read_error=case.error, verify=case.verify)
    assert decision.verdict is case.verdict, decision.reason
    for name, status in case.statuses.items():
        assert decision.fields[name].status is status, decision.fields[name].explanation
    if case.causes is not None:
        assert decision.causes == case.causes
    assert decision.reason
    for check in decision.fields.values():
        assert check.explanation


def test_unknown_family_is_an_error() -> None:
    with pytest.raises(KeyError, match="no rules for plate family 'lamp'"):
        evaluate({}, {}, RULES, family="lamp")


def test_frame_problems_explain_a_reshoot_but_never_change_the_verdict() -> None:
    problems = [QualityIssue(reason=ReshootReason.GLARE, detail="glare over the serial"),
                QualityIssue(reason=ReshootReason.BLUR, detail="blurred (sharpness 7 < 12)")]
    unsure = reading_for(Case("serial missing", V.RESHOOT, read={"serial": None}))
    decision = evaluate(unsure, RECORD, RULES, family="motor", quality=problems)
    assert decision.verdict is V.RESHOOT
    assert decision.reshoot_reason is ReshootReason.GLARE  # the camera acts on the first issue
    assert decision.reason.endswith("(frame: glare over the serial; blurred (sharpness 7 < 12))")
    clean = evaluate(reading_for(Case("exact", V.PASS)), RECORD, RULES, family="motor",
                     quality=problems)
    assert clean.verdict is V.PASS and "frame" not in clean.reason
    assert clean.reshoot_reason is None
    plain = evaluate(unsure, RECORD, RULES, family="motor")
    assert plain.reshoot_reason is ReshootReason.UNSURE


CONFIRMING = RULES.model_copy(update={"policy": RULES.policy.model_copy(
    update={"verified_confirms": True})})


@pytest.mark.parametrize("read, verify, verdict, status", [
    ({"serial": None}, "verified", V.PASS, S.OK),                       # unread, verified
    ({"serial": ("48213908KQ", 0.3)}, "verified", V.PASS, S.OK),        # unsure misread
    ({"serial": "48213908KQ"}, "verified", V.RESHOOT, S.CONFUSED),      # sure of another value
    ({"serial": None}, "unreadable", V.RESHOOT, S.NOT_READ),
    ({"serial": ("48213908KQ", 0.3)}, "differs", V.RESHOOT, S.CONFUSED),
    ({"serial": ("48213907KQX", 0.3)}, "verified", V.RESHOOT, S.FORMAT_ERROR),  # holds more
])
def test_verified_confirms_an_unsure_field_and_nothing_read_surely_otherwise(
        read: dict[str, Read], verify: str, verdict: Verdict, status: FieldStatus) -> None:
    case = Case("confirming", verdict, read=read, verify={"serial": verify})
    decision = evaluate(reading_for(case), RECORD, CONFIRMING, family="motor",
                        verify=case.verify)
    assert decision.verdict is verdict, decision.reason
    assert decision.fields["serial"].status is status
    if status is S.OK:
        assert "verify finds the expected value clearly" in decision.fields["serial"].explanation
