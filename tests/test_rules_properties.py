"""Properties of the rule engine under the product's rules (config/rules.toml)."""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import Verdict, evaluate, load_rules
from rules.normalise import fold_lookalikes, lookalike_map

RULES = load_rules(Path(__file__).resolve().parent.parent / "config" / "rules.toml")
FIELDS = RULES.families["motor"].fields


def _num(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(str)


# Speeds are written "rpm": "r/min" is one substitution away from its own aliases
# "u/min" and "1/min", which are the same unit, not a different plate.
records = st.fixed_dictionaries({
    "manufacturer": st.from_regex(r"[A-Z]{3,10}", fullmatch=True),
    "model": st.from_regex(r"[A-Z]{2}[0-9]{2,3}[A-Z]?-[0-9]", fullmatch=True),
    "serial": st.from_regex(r"[0-9]{8}[A-Z]{2}", fullmatch=True),
    "voltage": st.one_of(_num(100, 999).map(lambda v: f"{v} V"),
                         st.tuples(_num(100, 499), _num(500, 999)).map(
                             lambda t: f"{t[0]}/{t[1]} V")),
    "current": st.tuples(_num(1, 99), _num(0, 9)).map(lambda t: f"{t[0]}.{t[1]} A"),
    "power": st.tuples(_num(1, 90), st.sampled_from(["kW", "HP"])).map(lambda t: f"{t[0]} {t[1]}"),
    "frequency": st.sampled_from(["50 Hz", "60 Hz"]),
    "speed": _num(700, 3600).map(lambda v: f"{v} rpm"),
    "manufactured": st.tuples(st.integers(1, 12), st.integers(2000, 2030)).map(
        lambda t: f"{t[0]:02d}/{t[1]}"),
    "ip_rating": st.tuples(st.integers(0, 6), st.integers(0, 9)).map(lambda t: f"IP{t[0]}{t[1]}"),
})


@settings(max_examples=300, deadline=None)
@given(record=records, confidence=st.floats(0.0, 1.0))
def test_reading_equal_to_the_record_always_passes(record: dict[str, str],
                                                   confidence: float) -> None:
    reading = {k: {"value": v, "confidence": confidence} for k, v in record.items()}
    decision = evaluate(reading, record, RULES, family="motor")
    assert decision.verdict is Verdict.PASS, decision.reason


SUBSTITUTES = string.ascii_letters + string.digits + "./-+#"


@settings(max_examples=500, deadline=None)
@given(record=records, data=st.data())
def test_single_confident_substitution_never_passes(record: dict[str, str],
                                                    data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(record)))
    value = record[name]
    positions = [i for i, ch in enumerate(value) if not ch.isspace()]
    index = data.draw(st.sampled_from(positions))
    mapping = lookalike_map(FIELDS[name].lookalikes)
    original = value[index]

    def changes_meaning(ch: str) -> bool:
        return (ch.casefold() != original.casefold()   # case is folded by design
                and fold_lookalikes(ch, mapping) != fold_lookalikes(original, mapping)
                and not (original == "." and ch == ","))   # decimal comma by design

    substitute = data.draw(st.sampled_from([c for c in SUBSTITUTES if changes_meaning(c)]))
    changed = value[:index] + substitute + value[index + 1:]
    reading = {k: {"value": v, "confidence": 0.995} for k, v in record.items()}
    reading[name] = {"value": changed, "confidence": 0.995}
    decision = evaluate(reading, record, RULES, family="motor")
    assert decision.verdict is not Verdict.PASS, (name, value, changed, decision.reason)
