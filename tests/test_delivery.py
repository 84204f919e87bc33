"""Exactly-once hand-off parts on real SQLite files: the camera's journal and the recorder's
de-duplication, spool and replay, reshoot escalation and the ERP shrink guard."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from appliance.record.service import Recorder
from appliance.settings import load_settings
from appliance.transport import FieldValue, ResultMessage, utc_now
from camera.journal import FrameJournal, JournalError
from tests.conftest import write_config
from tests.plates import FIELDS, demo_records, frame_for, plate_values


def test_journal_keeps_frames_until_acknowledged(tmp_path: Path) -> None:
    journal = FrameJournal(tmp_path / "j.db", max_frames=3)
    assert journal.add("I-0", 0, "{}", b"jpeg")
    assert not journal.add("I-0", 0, "{}", b"jpeg")  # the same attempt is kept once
    for i in (1, 2):
        assert journal.add(f"I-{i}", 0, "{}", b"jpeg")
    with pytest.raises(JournalError, match="journal full"):
        journal.add("I-9", 0, "{}", b"jpeg")
    first = journal.due(window=2)
    assert [e.inspection_id for e in first] == ["I-0", "I-1"]
    for entry in first:
        journal.sent(entry, redeliver_after_s=0.3)
    assert journal.due(window=2) == []               # the window is full
    assert [e.inspection_id for e in journal.due(window=3)] == ["I-2"]
    assert journal.ack("I-0", 0) and not journal.ack("I-0", 0)
    time.sleep(0.35)
    again = journal.due(window=3)                     # I-1 was not acknowledged in time
    assert [(e.inspection_id, e.deliveries) for e in again] == [("I-1", 1), ("I-2", 0)]
    journal.close()
    reopened = FrameJournal(tmp_path / "j.db")        # survives the process (kill -9)
    assert reopened.pending() == 2
    assert reopened.counters() == {"captured": 3, "acknowledged": 1}


def _recorder(tmp_path: Path, run_dir: Path, extra: str = "", erp: Path | None = None,
              ) -> Recorder:
    config = write_config(tmp_path, run_dir=run_dir, extra=extra)
    if erp is not None:
        text = config.read_text()
        start = text.index("erp_file")
        config.write_text(text[:start] + f'erp_file = "{erp}"' + text[text.index("\n", start):])
    return Recorder(load_settings(config))


def _result(unit: int = 0, attempt: int = 0, inspection_id: str | None = None,
            ) -> tuple[ResultMessage, bytes]:
    row = demo_records()[unit]
    frame, payload = frame_for(row["unit_id"], plate_values(row), attempt=attempt,
                               inspection_id=inspection_id)
    fields = {name: FieldValue(value=row.get(name) or None, confidence=0.99) for name in FIELDS}
    return ResultMessage(frame=frame, fields=fields, backend="test", device="cpu",
                         latency_ms=1.0, read_at=utc_now()), payload


def _attempts(recorder: Recorder) -> int:
    return int(recorder.store.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])


def test_recorder_stores_a_redelivered_result_once(tmp_path: Path, run_dir: Path) -> None:
    recorder = _recorder(tmp_path, run_dir)
    result, payload = _result()
    result = result.model_copy(update={"verify": {"serial": "verified", "model": "differs"}})
    assert recorder.handle(result, payload) is not None
    again = result.model_copy(update={"frame": result.frame.model_copy(update={"delivery": 2})})
    assert recorder.handle(again, payload) is None
    assert _attempts(recorder) == 1 and recorder.counts["duplicates"] == 1
    row = recorder.store.inspection(result.frame.inspection_id)
    assert row is not None
    assert row["fields"]["serial"]["verify"] == "verified"   # the reader's verify outcome
    assert row["fields"]["model"]["verify"] == "differs"
    assert row["fields"]["serial"]["source"] == "test"
    image = Path(row["image_path"])
    assert image.is_file() and image.parent.is_relative_to(tmp_path / "data" / "images")


def test_locked_database_spools_then_replays_once(tmp_path: Path, run_dir: Path) -> None:
    recorder = _recorder(tmp_path, run_dir)
    recorder.store.db.conn.execute("PRAGMA busy_timeout = 50")
    blocker = sqlite3.connect(recorder.store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    result, payload = _result(1)
    assert recorder.handle(result, payload) is not None
    assert recorder.counts["spooled"] == 1 and recorder.spool.count() == 1
    assert recorder.handle(result, payload) is None  # a re-delivery finds it in the spool
    assert recorder.replay_spool() == 0              # still locked: it waits, nothing lost
    blocker.execute("ROLLBACK")
    blocker.close()
    assert recorder.replay_spool() == 1
    assert recorder.spool.count() == 0 and _attempts(recorder) == 1
    row = recorder.store.inspection(result.frame.inspection_id)
    assert row is not None and Path(row["image_path"]).is_file()
    assert recorder.replay_spool() == 0


def test_unserved_reshoot_escalates_to_review(tmp_path: Path, run_dir: Path) -> None:
    recorder = _recorder(tmp_path, run_dir, extra="[health]\nreshoot_timeout_s = 3\n")
    result, payload = _result(2)
    unsure = {name: FieldValue(value=None, confidence=0.0) for name in FIELDS}
    decision = recorder.handle(result.model_copy(update={"fields": unsure}), payload)
    assert decision is not None and decision.verdict.value == "RESHOOT"
    assert recorder.store.escalate_stale_reshoots(older_than_s=3) == []
    time.sleep(3.1)
    assert recorder.store.escalate_stale_reshoots(older_than_s=3) == [
        result.frame.inspection_id]
    row = recorder.store.inspection(result.frame.inspection_id)
    assert row is not None and row["verdict"] == "REVIEW"
    assert "reshoot did not come within 3 s" in row["reason"]


def test_shrunken_or_header_only_erp_export_is_refused(tmp_path: Path, run_dir: Path) -> None:
    erp = tmp_path / "erp.csv"
    lines = (Path(__file__).parent.parent / "config" / "demo" / "erp.csv").read_text().splitlines()
    erp.write_text("\n".join(lines) + "\n")
    recorder = _recorder(tmp_path, run_dir, extra="erp_max_shrink = 0.3\n", erp=erp)
    assert recorder.store.expected_count() == 12 and recorder.erp["state"] == "ok"
    for content, why in ((lines[0] + "\n", "no records"),
                         ("\n".join(lines[:5]) + "\n", "lost more than 30%")):
        erp.write_text(content)
        recorder.erp_sync._mtime = 0.0  # as if the file changed
        recorder.sync_erp()
        assert recorder.erp["state"] == "refused" and why in recorder.erp["error"]
        assert recorder.store.expected_count() == 12  # the records in use stay
    erp.write_text("\n".join(lines[:11]) + "\n")       # 10 of 12: within the allowed shrink
    recorder.erp_sync._mtime = 0.0
    recorder.sync_erp()
    assert recorder.erp["state"] == "ok" and recorder.store.expected_count() == 10


def test_stored_result_logs_one_structured_json_line(tmp_path: Path, run_dir: Path) -> None:
    import io
    import json
    import logging

    from appliance.runtime import JsonLogFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter("record"))
    logger = logging.getLogger("record")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        recorder = _recorder(tmp_path, run_dir)
        result, payload = _result(3)
        recorder.handle(result, payload)
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    stored = [line for line in lines if line.get("inspection_id") == result.frame.inspection_id]
    assert len(stored) == 1
    line = stored[0]
    assert line["service"] == "record" and line["station"] == "line1"
    assert line["verdict"] in ("PASS", "MISMATCH", "REVIEW", "RESHOOT")
    assert len(line["frame_sha256"]) == 16 and line["latency_ms"] == 1.0
