"""End to end: real `nameplate infer` and `nameplate record` processes, real ZeroMQ sockets,
a real SQLite file. Frames are rendered from the demo ERP records; some carry wrong plates."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import zmq

from appliance.runtime import read_status
from appliance.settings import load_settings
from appliance.transport import FrameMessage, Sender
from tests.conftest import Services, wait_for, wait_ready, write_config
from tests.plates import demo_records, frame_for, plate_values

pytestmark = pytest.mark.slow


def stored(db: Path) -> list[tuple[str, str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute(
                "SELECT id, unit_id, verdict FROM inspections ORDER BY stored_at").fetchall()
        except sqlite3.OperationalError:
            return []


def at_least(db: Path, n: int) -> list[tuple[str, str, str]] | None:
    rows = stored(db)
    return rows if len(rows) >= n else None


def judged(db: Path, ids: set[str]) -> bool | None:
    """True once none of the inspections ``ids`` waits for a reshoot."""
    return all(row[2] != "RESHOOT" for row in stored(db) if row[0] in ids) or None


def twenty_frames() -> list[tuple[FrameMessage, bytes, str, dict[str, str]]]:
    """20 frames: every 4th plate is wrong (swapped serial or wrong model); each with the
    values its plate shows."""
    rows = demo_records()
    frames = []
    for i in range(20):
        row = rows[i % len(rows)]
        values = plate_values(row)
        verdict = "PASS"
        if i % 4 == 3:
            if i % 8 == 3:
                values["serial"] = rows[(i + 1) % len(rows)]["serial"]
            else:
                values["model"] = values["model"] + "X"
            verdict = "MISMATCH"
        header, payload = frame_for(row["unit_id"], values, seed=100 + i)
        frames.append((header, payload, verdict, values))
    return frames


def start_pipeline(services: Services) -> tuple[Path, Path]:
    settings = load_settings(services.config)
    services.start("record", "record")
    services.start("infer", "infer")
    assert settings.run_dir is not None
    wait_ready(settings.run_dir, "record")
    wait_ready(settings.run_dir, "infer")
    return settings.run_dir, settings.data_dir / "appliance.db"


def test_twenty_frames_give_twenty_inspections_with_expected_verdicts(
        services: Services) -> None:
    run_dir, db = start_pipeline(services)
    sender = Sender(f"ipc://{run_dir}/frames.sock")
    frames = twenty_frames()
    for header, payload, _, _ in frames:
        assert sender.send(header, payload, timeout_ms=5000)
    rows = wait_for(lambda: at_least(db, 20), 180,
                    "20 stored inspections")
    by_id = {row[0]: row for row in rows}  # type: ignore[union-attr]
    assert len(by_id) == 20
    for header, _, verdict, _ in frames:
        inspection = by_id[header.inspection_id]
        assert inspection[1] == header.unit_id
        # a wrong plate is never a PASS: the shipped rules confirm a sure difference with a
        # second frame before MISMATCH (an unsure reading is a reshoot too)
        allowed = {"RESHOOT"} if verdict == "MISMATCH" else {verdict}
        assert inspection[2] in allowed, (header.unit_id, services.log("record"))
    with sqlite3.connect(db) as conn:
        to_confirm = {r[0] for r in conn.execute(
            "SELECT inspection_id FROM attempts WHERE reshoot_reason = 'confirm'")}
    assert to_confirm  # the camera is asked for a second frame of a plate read surely wrong
    for header, _, verdict, values in frames:  # as the camera answers those reshoot orders
        if header.inspection_id in to_confirm:
            assert verdict == "MISMATCH"
            again, payload = frame_for(header.unit_id or "", values, seed=7, attempt=1,
                                       inspection_id=header.inspection_id)
            assert sender.send(again, payload, timeout_ms=5000)
    wait_for(lambda: judged(db, to_confirm), 120, "the second frames judged")
    with sqlite3.connect(db) as conn:
        n_readings = conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
        images = [r[0] for r in conn.execute("SELECT image_path FROM inspections")]
        mismatch = conn.execute(
            "SELECT field, value, expected, status FROM readings r JOIN inspections i "
            "ON r.inspection_id = i.id WHERE i.verdict = 'MISMATCH' AND r.status = 'mismatch'"
        ).fetchall()
    assert n_readings == (20 + len(to_confirm)) * 10  # one row per field and attempt
    assert all(Path(p).is_file() for p in images)
    assert {m[0] for m in mismatch} <= {"serial", "model"} and mismatch
    sender.close()


def test_malformed_messages_are_rejected_while_pipeline_keeps_working(
        tmp_path: Path, run_dir: Path) -> None:
    # read by two reader worker processes (reader.workers): bad frames go through them too
    config = write_config(tmp_path, run_dir=run_dir, extra="[reader]\nworkers = 2\n")
    services = Services(config, tmp_path / "logs")
    try:
        _malformed_messages_are_rejected(services)
        status = read_status(run_dir, "infer")
        assert status and status["workers"] == 2
        assert status["networks"] == "per worker"   # a CPU host: each worker its own reader
    finally:
        services.stop()


def _malformed_messages_are_rejected(services: Services) -> None:
    run_dir, db = start_pipeline(services)
    raw = zmq.Context.instance().socket(zmq.PUSH)
    raw.connect(f"ipc://{run_dir}/frames.sock")
    header, payload = frame_for("U1001", plate_values(demo_records()[0]), seed=7)
    good = json.loads(header.model_dump_json())
    bad_messages = [
        [b"\x80\x04\x95pickled"],                                    # one frame, not JSON
        [b"{not json", payload],                                     # broken header
        [json.dumps(dict(good, version=7)).encode(), payload],       # wrong version
        [json.dumps({k: v for k, v in good.items() if k != "station"}).encode(), payload],
        [json.dumps(dict(good, frame_id="F-corrupt", inspection_id="I-corrupt")).encode(),
         b"\xff\xd8 not a jpeg"],
    ]
    for message in bad_messages:
        raw.send_multipart(message)
    # garbage on the result channel too: the recorder must survive it
    raw_results = zmq.Context.instance().socket(zmq.PUSH)
    raw_results.connect(f"ipc://{run_dir}/results.sock")
    raw_results.send_multipart([b"[]", b""])
    sender = Sender(f"ipc://{run_dir}/frames.sock")
    assert sender.send(header, payload, timeout_ms=5000)

    def infer_counts() -> dict[str, object] | None:
        status = read_status(run_dir, "infer")
        return status if status and status.get("rejected") == 4 else None

    status = wait_for(infer_counts, 60, "infer to report 4 rejected messages")
    assert "unsupported protocol version 7" in services.log("infer")
    assert "station: Field required" in services.log("infer")
    rows = wait_for(lambda: at_least(db, 2), 120,
                    "the corrupt-image frame and the good frame to be stored")
    verdicts = {r[0]: r[2] for r in rows}  # type: ignore[union-attr]
    assert verdicts[header.inspection_id] == "PASS"
    # a valid header with an undecodable image is stored with the reason, not lost
    assert verdicts["I-corrupt"] == "RESHOOT"
    with sqlite3.connect(db) as conn:
        reason = conn.execute("SELECT reason FROM inspections WHERE id = 'I-corrupt'").fetchone()
    assert "not a decodable image" in reason[0]
    wait_for(lambda: (s := read_status(run_dir, "record")) and s.get("rejected") == 1, 30,
             "recorder to report the rejected result")
    assert services.procs["infer"].poll() is None
    assert services.procs["record"].poll() is None
    assert status is not None
    raw.close()
    raw_results.close()
    sender.close()
