"""10,000 hostile messages on each socket of running services: zero crashes, all counted.

Deep JSON, huge numbers, traversal ids, wrong types, random bytes and oversize payloads go to
the frame socket (infer), the result socket (record) and the control socket (camera); a pixel
bomb with a valid header is read as a clear error, not gigabytes.
"""

from __future__ import annotations

import copy
import io
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from appliance.runtime import read_status
from appliance.transport import MessageError, decode
from appliance.transport.limits import MAX_PAYLOAD_BYTES
from appliance.transport.messages import ControlMessage, FrameMessage, ResultMessage
from tests.conftest import Services, wait_for, wait_ready, write_config
from tests.plates import demo_records, frame_for, plate_values

pytestmark = pytest.mark.slow
PER_SOCKET = 10_000
BATCH = 100

HOSTILE = st.sampled_from([
    "../../../../etc/passwd", "..", "/abs", "a" * 5000, "line 1; rm -rf /", "\x00", "🔥" * 300,
    10**30, -1, 2**63, 1e308, float("inf"), float("nan"), True, [], {}, [[[[[[[[[[1]]]]]]]]]],
    {"$ref": "#"}, "NaN", "2026-13-45T99:99:99",
])


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Services]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    run_dir = Path(str(tmp_path_factory.mktemp("r")))
    config = write_config(tmp, run_dir=run_dir, stations=(
        '[[stations]]\nid = "line1"\nsource = "synthetic"\ntrigger = "external"\n'))
    services = Services(config, tmp / "logs")
    services.start("record", "record")
    services.start("infer", "infer")
    services.start("camera", "camera", "--station", "line1")
    for name in ("record", "infer", "camera-line1"):
        wait_ready(run_dir, name, timeout=180)
    yield tmp, run_dir, services
    services.stop()


def _valid(kind: str) -> dict[str, Any]:
    frame, _ = frame_for("U1001", plate_values(demo_records()[0]))
    data: dict[str, Any] = json.loads(frame.model_dump_json())
    if kind == "result":
        return {"version": 2, "kind": "result", "frame": data, "backend": "x", "device": "cpu",
                "latency_ms": 1.0, "read_at": data["captured_at"],
                "fields": {"serial": {"value": "1", "confidence": 0.5}}}
    if kind == "control":
        return {"version": 2, "kind": "reshoot", "station": "line1", "inspection_id": "I-1",
                "attempt": 1, "reason": "glare"}
    return data


def _mutate(base: dict[str, Any], changes: list[tuple[int, Any]]) -> bytes:
    data = json.loads(json.dumps(base))
    for index, value in changes:
        target = data
        keys = sorted(data)
        key = keys[index % len(keys)]
        if isinstance(target[key], dict) and target[key] and index % 2:
            target = target[key]
            key = sorted(target)[index % len(target)]
        target[key] = copy.deepcopy(value)  # the sampled objects are shared between examples
    return json.dumps(data).encode()


def hostile(kind: str) -> st.SearchStrategy[bytes]:
    base = _valid(kind)
    return st.one_of(
        st.integers(9, 20_000).map(lambda n: b'{"version": 2, "a": ' + b"[" * n + b"]" * n
                                   + b"}"),
        st.integers(25, 6_000).map(lambda n: b'{"version": 2, "kind": "' + kind.encode()
                                   + b'", "n": ' + b"7" * n + b"}"),
        st.lists(st.tuples(st.integers(0, 1000), HOSTILE), min_size=1, max_size=3).map(
            lambda changes: _mutate(base, changes)),
        st.binary(max_size=300),
        st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=30).map(lambda v: json.dumps(v).encode()),
    )


def _model(kind: str) -> Any:
    return {"frame": FrameMessage, "result": ResultMessage, "control": ControlMessage}[kind]


def _fuzz_socket(endpoint: str, kind: str) -> tuple[int, int, zmq.Socket[bytes]]:
    """Send PER_SOCKET generated messages; returns (sent, accepted locally and so not sent,
    the socket: close it only once the service counted everything, or its queue is lost)."""
    payload = kind != "control"
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.connect(endpoint)
    counts = [0, 0]

    @settings(max_examples=PER_SOCKET // BATCH, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(hostile(kind), min_size=BATCH, max_size=BATCH))
    def run(headers: list[bytes]) -> None:
        for header in headers:
            frames = [header, b"\xff\xd8junk"] if payload else [header]
            try:
                decode(frames, _model(kind), payload=payload)
            except MessageError:
                sock.send_multipart(frames)
                counts[0] += 1
            else:
                counts[1] += 1  # valid after all: not a hostile message, not sent

    run()
    return counts[0], counts[1], sock


@pytest.mark.parametrize(("kind", "service", "endpoint"), [
    ("frame", "infer", "frames.sock"), ("result", "record", "results.sock"),
    ("control", "camera-line1", "control-line1.sock")])
def test_ten_thousand_hostile_messages_per_socket(running: tuple[Path, Path, Services],
                                                  kind: str, service: str,
                                                  endpoint: str) -> None:
    tmp, run_dir, services = running
    before = read_status(run_dir, service) or {}
    pid = before.get("pid")
    sent, valid, sock = _fuzz_socket(f"ipc://{run_dir}/{endpoint}", kind)
    assert sent + valid == PER_SOCKET and sent > 0.95 * PER_SOCKET
    rejected_before = int(before.get("rejected") or before.get("rejected_commands") or 0)

    def all_counted() -> dict[str, Any] | None:
        status = read_status(run_dir, service) or {}
        got = int(status.get("rejected") or status.get("rejected_commands") or 0)
        return status if got - rejected_before >= sent else None

    try:  # the socket stays open until everything went out and was counted
        status = wait_for(all_counted, 300, f"{service} to count {sent} rejections")
    finally:
        sock.close(linger=0)
    print(f"{service}: {sent} hostile messages rejected, by kind: "
          f"{status.get('rejections')}")  # type: ignore[union-attr]
    assert status["pid"] == pid  # type: ignore[index]  # no crash, no restart
    assert all(p.poll() is None for p in services.procs.values())
    with sqlite3.connect(tmp / "data" / "appliance.db") as db:
        assert db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 0
    leaked = [p for p in tmp.parent.rglob("*") if "passwd" in p.name]
    assert leaked == []


def test_oversize_and_pixel_bomb_frames(running: tuple[Path, Path, Services]) -> None:
    tmp, run_dir, services = running
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.connect(f"ipc://{run_dir}/frames.sock")
    frame, _ = frame_for("U1001", plate_values(demo_records()[0]), station="line1")
    before = int((read_status(run_dir, "infer") or {}).get("rejected") or 0)
    sock.send_multipart([frame.model_dump_json().encode(), b"\0" * (MAX_PAYLOAD_BYTES + 1)])
    wait_for(lambda: int((read_status(run_dir, "infer") or {}).get("rejected") or 0) > before,
             30, "the oversize payload to be rejected")
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((1, 1), np.uint8)).resize((20000, 20000)).save(
        buffer, format="PNG", optimize=True)
    bomb = frame.model_copy(update={"image": frame.image.model_copy(
        update={"encoding": "png", "width": 640, "height": 480})})  # the header lies
    sock.send_multipart([bomb.model_dump_json().encode(), buffer.getvalue()])
    started = time.monotonic()

    def stored() -> str | None:
        with sqlite3.connect(tmp / "data" / "appliance.db") as db:
            row = db.execute("SELECT reason FROM inspections WHERE id = ?",
                             [bomb.inspection_id]).fetchone()
        return row[0] if row else None

    reason = wait_for(stored, 60, "the pixel bomb's inspection")
    assert "megapixels" in str(reason)
    print(f"pixel bomb answered in {time.monotonic() - started:.2f} s: {reason}")
    assert all(p.poll() is None for p in services.procs.values())
    sock.close(linger=1000)
