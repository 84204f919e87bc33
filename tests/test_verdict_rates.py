"""Product-level verdict rates over readings: the numbers `nameplate eval` adds (#11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules import RuleSet, load_rules
from tests.plates import REPO, demo_records, plate_values
from training.verdict_rates import VerdictRates, one_character_changed

RULES = load_rules(REPO / "config" / "rules.toml")


def _reading(values: dict[str, str], confidence: float = 0.995) -> dict[str, object]:
    return {name: {"value": value, "confidence": confidence} for name, value in values.items()}


def test_one_character_changed_keeps_the_kind() -> None:
    assert one_character_changed("48213907KQ") == "48213007KQ"
    assert one_character_changed("SN-AB") == "SN0AB"
    assert one_character_changed("AAAA") == "AABA"
    assert sum(a != b for a, b in zip("48213907KQ", one_character_changed("48213907KQ"),
                                      strict=True)) == 1


AT_ONCE = RULES.model_copy(update={"policy": RULES.policy.model_copy(
    update={"confirm_mismatch": False})})


@pytest.mark.parametrize("rules, verdict", [
    (AT_ONCE, "MISMATCH"),  # a sure difference is a MISMATCH at once
    (RULES, "REVIEW"),      # shipped: one frame cannot confirm it at the final attempt
])
def test_rates_count_false_alarms_and_passed_wrong_plates(rules: RuleSet, verdict: str) -> None:
    rates = VerdictRates(rules, family="motor")
    records = [plate_values(r) for r in demo_records()[:4]]
    for values in records[:3]:                 # read right
        rates.add(_reading(values), values)
    wrong = dict(records[3], serial="99999999ZZ")
    rates.add(_reading(wrong), records[3], unit=42)  # a confident misread: a false alarm
    summary = rates.summary()
    assert summary["frames"] == 4 and summary["attempt"] == RULES.policy.max_reshoots
    assert summary["good_units"]["PASS"] == 0.75
    assert summary["good_units"][verdict] == 0.25
    assert summary["changed_records_pass"] == 0.0  # no changed record passed
    assert summary["changed_records"] == 4
    if verdict == "MISMATCH":  # the false alarm is listed with what differed
        assert summary["false_mismatches"] == [[{
            "field": "serial", "expected": records[3]["serial"], "read": "99999999ZZ",
            "confidence": 0.995, "attempt": RULES.policy.max_reshoots,
            "unit": 42}]]  # the unit's seed, to render it again and look
        assert summary["review_causes"] == {}
    else:  # unconfirmed at the final attempt: the REVIEW names the field that held it
        assert summary["false_mismatches"] == []
        assert summary["review_causes"] == {"serial: mismatch": 1}


def test_verify_confirms_an_unsure_field_but_never_a_changed_record() -> None:
    rates = VerdictRates(RULES, family="motor")
    values = plate_values(demo_records()[0])
    reading = _reading(values)
    reading["serial"] = {"value": values["serial"][:-1] + "Z", "confidence": 0.4}  # unsure
    changed = one_character_changed(values["serial"])
    rates.add(reading, values, verify=dict.fromkeys(values, "verified"),
              changed_serial=changed,
              verify_changed={**dict.fromkeys(values, "verified"), "serial": "differs"})
    summary = rates.summary()
    assert summary["good_units"]["PASS"] == 1.0          # the shipped rules confirm
    assert summary["changed_records_pass"] == 0.0        # verify found the change


def test_nameplate_eval_reports_verdicts_and_calibration_with_a_plot(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from PIL import Image

    plot = tmp_path / "reliability.png"
    done = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "eval", "--split", "station", "-n", "2",
         "--workers", "1", "--device", "cpu", "--no-compile", "--reliability-plot", str(plot)],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=True)
    report = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    assert set(report["verdicts"]["good_units"]) == {"PASS", "MISMATCH", "RESHOOT", "REVIEW"}
    calibration = report["calibration"]
    assert calibration["values"] > 0 and 0.0 <= calibration["ece"] <= 1.0
    assert sum(k for _, _, k in calibration["reliability"]) == calibration["values"]
    assert Image.open(plot).size[0] > 300
