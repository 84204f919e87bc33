"""A unit's automatic reshoots are frames of one plate: what an earlier frame read as the ERP
value stays read, a later frame that disagrees makes the field unsure (never a MISMATCH), and
nothing carries over an operator's reshoot of a finished verdict. Rules, store, recorder and
the measure of it (``VerdictRates.add_unit``, rendered reshoots)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.record.service import Recorder
from appliance.schema import load_schema
from appliance.settings import load_settings
from appliance.synth.engine import render_sample, sample_seed
from appliance.transport import FieldValue, ReshootReason, ResultMessage, utc_now
from rules import FieldStatus, Verdict, evaluate, load_rules
from tests.conftest import write_config
from tests.plates import FIELDS, REPO, demo_records, frame_for, plate_values
from tests.test_rules_table import RECORD, RULES, Case, Read, reading_for
from training.verdict_rates import Shot, VerdictRates

V, S = Verdict, FieldStatus
SERIAL_UNREAD: dict[str, Read] = {"serial": None}
MODEL_UNREAD: dict[str, Read] = {"model": None}


def _checks(read: dict[str, Read], attempt: int, expected: dict[str, str] | None = None,
            ) -> dict[str, object]:
    return dict(evaluate(reading_for(Case("earlier", V.RESHOOT, read=read)), expected or RECORD,
                         RULES, family="motor", attempt=attempt).fields)


@pytest.mark.parametrize("earlier_read, now_read, verdict, status", [
    # the serial was read right on attempt 0, the model on attempt 1: one plate, both read
    (MODEL_UNREAD, SERIAL_UNREAD, V.PASS, S.OK),
    # read right before, read unsurely as something else now: still the expected value
    (MODEL_UNREAD, {"serial": ("48213908KQ", 0.3)}, V.PASS, S.OK),
    # read right before, read surely as something else now: the frames disagree
    (MODEL_UNREAD, {"serial": "48213908KQ"}, V.RESHOOT, S.CONFUSED),
    # never read right: nothing to carry
    ({"serial": None, "model": None}, SERIAL_UNREAD, V.RESHOOT, S.NOT_READ),
    ({"serial": ("48213908KQ", 0.3)}, {"serial": "48213908KQ"}, V.MISMATCH, S.MISMATCH),
])
def test_an_earlier_frame_of_the_plate_counts(earlier_read: dict[str, Read],
                                              now_read: dict[str, Read], verdict: Verdict,
                                              status: FieldStatus) -> None:
    earlier = {0: _checks(earlier_read, 0)}
    now = reading_for(Case("now", verdict, read=now_read))
    decision = evaluate(now, RECORD, RULES, family="motor", attempt=1,
                        earlier=earlier)  # type: ignore[arg-type]
    assert decision.verdict is verdict, decision.reason
    assert decision.fields["serial"].status is status
    if status is S.OK and now_read["serial"] is None:
        assert "attempt 0 read the expected value" in decision.fields["serial"].explanation
    if status is S.CONFUSED:
        assert "the frames disagree" in decision.fields["serial"].explanation
    alone = evaluate(now, RECORD, RULES, family="motor", attempt=1)
    assert alone.verdict is not V.PASS  # the earlier frame made the difference


def test_evidence_is_kept_only_for_the_same_expected_value_and_policy() -> None:
    earlier = {0: _checks(MODEL_UNREAD, 0)}
    now = reading_for(Case("now", V.RESHOOT, read=SERIAL_UNREAD))
    changed = dict(RECORD, serial="48213908KQ")  # the ERP record changed between frames
    decision = evaluate(now, changed, RULES, family="motor", attempt=1,
                        earlier=earlier)  # type: ignore[arg-type]
    assert decision.fields["serial"].status is S.NOT_READ
    strict = RULES.model_copy(update={"policy": RULES.policy.model_copy(
        update={"combine_reshoots": False})})
    decision = evaluate(now, RECORD, strict, family="motor", attempt=1,
                        earlier=earlier)  # type: ignore[arg-type]
    assert decision.verdict is V.RESHOOT


CONFIRMING = RULES.model_copy(update={"policy": RULES.policy.model_copy(
    update={"confirm_mismatch": True, "agree_confidence": 0.5})})  # the table's serial: 0.8
MISREAD: dict[str, Read] = {"serial": "48213908KQ"}  # read surely, one digit off the record


def test_a_mismatch_needs_a_second_frame_that_also_differs() -> None:
    def judge(read: dict[str, Read], attempt: int, earlier: dict[int, object]) -> object:
        return evaluate(reading_for(Case("frame", V.RESHOOT, read=read)), RECORD, CONFIRMING,
                        family="motor", attempt=attempt,
                        earlier=earlier)  # type: ignore[arg-type]

    first = judge(MISREAD, 0, {})
    assert first.verdict is V.RESHOOT and first.reshoot_reason is ReshootReason.CONFIRM
    assert first.fields["serial"].status is S.MISMATCH and first.causes == ["serial"]
    run = {0: first.fields}
    confirmed = judge(MISREAD, 1, run)
    assert confirmed.verdict is V.MISMATCH, confirmed.reason
    # the second frame reads the record's value: the frames disagree, never a PASS
    disagree = judge({}, 1, run)
    assert disagree.verdict is V.RESHOOT
    assert disagree.fields["serial"].status is S.CONFUSED
    assert "read '48213908KQ' surely" in disagree.fields["serial"].explanation
    # the second frame reads the same value, only less surely but nearly: the frames agree
    agree = judge({"serial": ("48213908KQ", 0.6)}, 1, run)
    assert agree.verdict is V.MISMATCH and "the frames agree" in agree.reason
    assert judge({"serial": ("48213908KQ", 0.3)}, 1, run).verdict is V.RESHOOT  # a guess
    # ... and the other way round: a nearly sure first frame, then a sure one
    for first_confidence, verdict in ((0.6, V.MISMATCH), (0.3, V.RESHOOT)):
        unsure_first = judge({"serial": ("48213908KQ", first_confidence)}, 0, {})
        assert unsure_first.verdict is V.RESHOOT
        assert judge(MISREAD, 1, {0: unsure_first.fields}).verdict is verdict
    then = judge({}, 2, {**run, 1: disagree.fields})
    assert then.verdict is V.REVIEW and then.fields["serial"].status is S.CONFUSED
    # no reshoot left to confirm: a person decides
    last = judge(MISREAD, 2, {})
    assert last.verdict is V.REVIEW and "no reshoot left to confirm" in last.reason
    # without the policy the first sure difference is a MISMATCH at once
    at_once = evaluate(reading_for(Case("frame", V.MISMATCH, read=MISREAD)), RECORD, RULES,
                       family="motor")
    assert at_once.verdict is V.MISMATCH


def _result(attempt: int, unread: str, inspection_id: str | None = None,
            ) -> tuple[ResultMessage, bytes]:
    row = demo_records()[0]
    frame, payload = frame_for(row["unit_id"], plate_values(row), attempt=attempt,
                               inspection_id=inspection_id)
    fields = {name: FieldValue(value=None if name == unread else row.get(name) or None,
                               confidence=0.99) for name in FIELDS}
    return ResultMessage(frame=frame, fields=fields, backend="test", device="cpu",
                         latency_ms=1.0, read_at=utc_now()), payload


def test_recorder_combines_a_reshoot_run_and_forgets_it_after_a_verdict(
        tmp_path: Path, run_dir: Path) -> None:
    recorder = Recorder(load_settings(write_config(tmp_path, run_dir=run_dir)))
    first, payload = _result(0, unread="serial")
    decision = recorder.handle(first, payload)
    assert decision is not None and decision.verdict is V.RESHOOT
    inspection = first.frame.inspection_id
    second, payload = _result(1, unread="model", inspection_id=inspection)
    decision = recorder.handle(second, payload)
    assert decision is not None and decision.verdict is V.PASS, decision.reason
    stored = recorder.store.inspection(inspection)
    assert stored is not None and stored["verdict"] == "PASS"
    assert stored["fields"]["model"]["status"] == "ok"
    assert "attempt 0 read the expected value" in stored["fields"]["model"]["explanation"]
    assert [r["attempt"] for r in recorder.store.reshoot_run(inspection, before=2)] == []
    # an operator's reshoot after the PASS starts afresh: the PASS frame is not evidence
    third, payload = _result(2, unread="serial", inspection_id=inspection)
    decision = recorder.handle(third, payload)
    assert decision is not None and decision.verdict is not V.PASS
    assert recorder.store.reshoot_run(inspection, before=1)[0]["attempt"] == 0


def test_a_rendered_reshoot_is_the_same_plate_in_new_light() -> None:
    schema = load_schema(REPO / "config" / "schemas" / "motor.toml")
    seed = sample_seed(2026, "station", 3)
    first = render_sample(seed, schema=schema, split="station")
    again = render_sample(seed, schema=schema, split="station", shot=0)
    reshot = render_sample(seed, schema=schema, split="station", shot=1)
    assert np.array_equal(first.image, again.image)
    assert [i["quad"] for i in reshot.labels["items"]] == \
        [i["quad"] for i in first.labels["items"]]
    assert {k: f["value"] for k, f in reshot.labels["fields"].items()} == \
        {k: f["value"] for k, f in first.labels["fields"].items()}
    assert reshot.labels["shot"] == 1 and "shot" not in first.labels
    assert np.abs(reshot.image.astype(int) - first.image).mean() > 2  # not the same photo


def test_rates_through_reshoots_take_frames_only_when_asked() -> None:
    rules = load_rules(REPO / "config" / "rules.toml")
    values = plate_values(demo_records()[0])
    asked: list[int] = []

    def shot(k: int) -> Shot:
        asked.append(k)
        unread = "serial" if k == 0 else "model"
        return Shot({n: {"value": None if n == unread else v, "confidence": 0.995}
                     for n, v in values.items()})

    rates = VerdictRates(rules, family="motor")
    rates.add_unit(shot, values)
    summary = rates.summary()
    # the good and the changed record share frames; the changed one took a third frame to
    # confirm the difference it saw on the second
    assert asked == [0, 1, 2]
    assert summary["good_units"]["PASS"] == 1.0
    assert summary["changed_records_pass"] == 0.0
    assert summary["changed_records_mismatch"] == 1.0
    assert summary["reshoots"] == "taken" and summary["frames_per_good_unit"] == 2.0


def test_policy_variants_are_judged_from_collected_shots(tmp_path: Path) -> None:
    import json

    from training.calibrate.reshoots import rates

    values = plate_values(demo_records()[0])
    misread = dict(values, serial=values["serial"][:-1] + ("A" if values["serial"][-1] != "A"
                                                             else "B"))
    shots = [{"reading": {n: {"value": v, "confidence": 0.995} for n, v in read.items()},
              "quality": [], "verify": None, "verify_changed": None}
             for read in (misread, values, values)]  # a sure misread, then two right frames
    path = tmp_path / "shots.jsonl"
    path.write_text(json.dumps({"seed": 1, "index": 0, "truth": values,
                                "changed_serial": None, "shots": shots}) + "\n")
    by_variant = rates([path], load_rules(REPO / "config" / "rules.toml"))
    assert by_variant["first frame as final"]["good_units"]["MISMATCH"] == 1.0
    assert by_variant["reshoots, frames combined"]["good_units"]["MISMATCH"] == 1.0
    confirmed = by_variant["reshoots, combined, MISMATCH confirmed"]
    assert confirmed["good_units"]["REVIEW"] == 1.0  # the frames disagree: a person decides
    assert confirmed["frames_per_good_unit"] == 3.0
