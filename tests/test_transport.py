"""Transport: typed messages over real ZeroMQ sockets; bad messages are rejected, not fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zmq

from appliance.transport import (
    ControlReceiver,
    FrameReceiver,
    MessageError,
    ReshootCommand,
    Sender,
    TriggerCommand,
    decode,
)
from appliance.transport.messages import FrameMessage
from tests.plates import demo_records, frame_for, plate_values


def test_frame_round_trip_over_ipc(run_dir: Path) -> None:
    endpoint = f"ipc://{run_dir}/frames.sock"
    receiver = FrameReceiver(endpoint)
    sender = Sender(endpoint)
    header, payload = frame_for("U1001", plate_values(demo_records()[0]))
    assert sender.send(header, payload, timeout_ms=2000)
    got = receiver.receive(timeout_ms=5000)
    assert got is not None
    frame, body = got
    assert frame == header
    assert body == payload
    sender.close()
    receiver.close()


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([b"not json", b"x"], "header is not JSON"),
        ([b"[1, 2]", b"x"], "header is not a JSON object"),
        ([json.dumps({"version": 99, "kind": "frame"}).encode(), b"x"], "unsupported protocol"),
        ([json.dumps({"version": 1, "kind": "frame"}).encode(), b"x"], "invalid FrameMessage"),
        ([b"{}"], "expected 2 frame(s), got 1"),
        ([b"{}", b"a", b"b"], "expected 2 frame(s), got 3"),
    ],
)
def test_decode_rejects_with_reason(frames: list[bytes], reason: str) -> None:
    with pytest.raises(MessageError) as err:
        decode(frames, FrameMessage, payload=True)
    assert reason in err.value.reason


def test_receiver_counts_rejections_and_keeps_working(run_dir: Path) -> None:
    endpoint = f"ipc://{run_dir}/frames.sock"
    receiver = FrameReceiver(endpoint)
    raw = zmq.Context.instance().socket(zmq.PUSH)
    raw.connect(endpoint)
    raw.send_multipart([b"\x80\x04pickle", b"x"])
    raw.send_multipart([json.dumps({"version": 2}).encode(), b"x"])
    header, payload = frame_for("U1001", plate_values(demo_records()[0]))
    raw.send_multipart([header.model_dump_json().encode(), payload])
    results = [receiver.receive(timeout_ms=3000) for _ in range(3)]
    assert results[0] is None and results[1] is None
    assert results[2] is not None and results[2][0].frame_id == header.frame_id
    assert receiver.stats.rejected == 2
    assert receiver.stats.received == 1
    assert "unsupported protocol version 2" in (receiver.stats.last_rejection or "")
    raw.close()
    receiver.close()


def test_control_channel_carries_both_commands(run_dir: Path) -> None:
    endpoint = f"ipc://{run_dir}/control.sock"
    receiver = ControlReceiver(endpoint)
    sender = Sender(endpoint)
    sender.send(ReshootCommand(station="line1", inspection_id="I-1", attempt=1, reason="glare"))
    sender.send(TriggerCommand(station="line1", unit_id="U1001"))
    first = receiver.receive(timeout_ms=3000)
    second = receiver.receive(timeout_ms=3000)
    assert first is not None and isinstance(first[0], ReshootCommand)
    assert first[0].reason == "glare"
    assert second is not None and isinstance(second[0], TriggerCommand)
    sender.close()
    receiver.close()


def test_sender_counts_drop_when_nobody_listens(run_dir: Path) -> None:
    sender = Sender(f"ipc://{run_dir}/nobody.sock", hwm=1)
    header, payload = frame_for("U1001", plate_values(demo_records()[0]))
    assert sender.send(header, payload, timeout_ms=0) is False
    assert sender.stats.dropped == 1
    sender.close()
