"""Rules files: errors name file, section and key; a failed reload keeps the previous rules;
`nameplate check` prints the verdict as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rules import RulesError, RulesHolder, load_rules

REPO = Path(__file__).resolve().parent.parent
KNOWN = {"motor": ["model", "serial", "voltage"]}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[families.motor.fields.serial]\nformat = '[0-9'\n",
         "families.motor.fields.serial.format: Value error, bad regex"),
        ("[families.motor.fields.serial]\ncompare = 'fuzzy'\n",
         "families.motor.fields.serial.compare: Input should be"),
        ("[families.motor.fields.serial]\ntolerance = 'a lot'\n",
         "families.motor.fields.serial.tolerance: Input should be a valid number"),
        ("[families.motor.fields.serial]\nrequird = true\n",
         "families.motor.fields.serial.requird: Extra inputs are not permitted"),
        ("[families.motor.fields.colour]\nrequired = true\n",
         "families.motor.fields.colour: unknown field"),
        ("[families.lamp.fields.model]\n", "families.lamp: no schema named 'lamp'"),
        ("[policy]\nmax_reshoots = -1\n[families.motor.fields.model]\n",
         "policy.max_reshoots: Input should be greater than or equal to 0"),
        ("[families.motor.fields.model\n", "cannot read rules"),
    ],
)
def test_errors_name_file_section_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "rules.toml", text)
    with pytest.raises(RulesError) as err:
        load_rules(path, known_fields=KNOWN)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_failed_reload_keeps_previous_rules(tmp_path: Path) -> None:
    path = write(tmp_path / "rules.toml", "[families.motor.fields.serial]\nrequired = true\n")
    holder = RulesHolder(path, known_fields=KNOWN)
    before = holder.rules
    time.sleep(0.01)
    write(path, "[families.motor.fields.serial]\nformat = '('\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert holder.reload_if_changed() is False
    assert holder.rules is before
    assert holder.last_error and "bad regex" in holder.last_error
    write(path, "[families.motor.fields.serial]\nrequired = false\n")
    os.utime(path, (time.time() + 10, time.time() + 10))
    assert holder.reload_if_changed() is True
    assert holder.rules.families["motor"].fields["serial"].required is False
    assert holder.last_error is None


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMEPLATE_")}
    return subprocess.run([sys.executable, "-m", "appliance.cli", "check", *args],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=60)


def test_nameplate_check_prints_verdict_json(tmp_path: Path) -> None:
    record = {"model": "VX132M-4", "serial": "48213907KQ", "voltage": "230/400 V",
              "current": "15.2/8.8 A", "power": "4 kW", "frequency": "50 Hz",
              "speed": "1440 r/min", "ip_rating": "IP55"}
    fields = {k: {"value": v, "confidence": 0.995, "box": None} for k, v in record.items()}
    fields["serial"]["value"] = "48213908KQ"
    reading = write(tmp_path / "r.json", json.dumps({"image": "x.jpg", "fields": fields}))
    expected = write(tmp_path / "e.json", json.dumps(record))
    out = run_check("--reading", str(reading), "--expected", str(expected))
    assert out.returncode == 0, out.stderr
    decision = json.loads(out.stdout)  # the shipped rules confirm with a second frame
    assert decision["verdict"] == "RESHOOT" and decision["reshoot_reason"] == "confirm"
    out = run_check("--reading", str(reading), "--reading", str(reading),
                    "--expected", str(expected))
    decision = json.loads(out.stdout)
    assert decision["verdict"] == "MISMATCH" and decision["attempt"] == 1
    assert decision["causes"] == ["serial"]
    assert decision["fields"]["serial"]["status"] == "mismatch"
    assert decision["fields"]["serial"]["expected"] == "48213907KQ"
    # without an expected record the unit goes to a person
    out = run_check("--reading", str(reading))
    assert json.loads(out.stdout)["verdict"] == "REVIEW"


def test_nameplate_check_reports_bad_inputs(tmp_path: Path) -> None:
    bad_json = write(tmp_path / "r.json", "{not json")
    out = run_check("--reading", str(bad_json))
    assert out.returncode != 0 and "r.json: not JSON" in out.stderr
    for content, where in (('{"fields": {"serial": {"value": 7}}}', "fields.serial.value"),
                           ('{"fields": {"serial": {"confidence": "high"}}}',
                            "fields.serial.confidence"),
                           ('{"fields": [1, 2]}', "fields"), ("[]", "(top level)")):
        wrong = write(tmp_path / "wrong.json", content)
        out = run_check("--reading", str(wrong))
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and f"wrong.json: {where}:" in lines[0], out.stderr
    good = write(tmp_path / "good.json", '{"fields": {}}')
    expected = write(tmp_path / "e.json", '{"serial": 48213907}')
    out = run_check("--reading", str(good), "--expected", str(expected))
    assert out.returncode == 1 and "e.json: fields.serial: Input should be a valid string" \
        in out.stderr
    reading = write(tmp_path / "ok.json", json.dumps({"fields": {}}))
    bad_rules = write(tmp_path / "rules.toml", "[families.motor.fields.serial]\nformat = '('\n")
    out = run_check("--reading", str(reading), "--rules", str(bad_rules))
    assert out.returncode != 0
    assert "families.motor.fields.serial.format" in out.stderr
