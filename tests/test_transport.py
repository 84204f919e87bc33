"""Transport: typed messages over real ZeroMQ sockets; bad messages are rejected, not fatal."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.transport import (
    ControlReceiver,
    FrameReceiver,
    MessageError,
    ReshootCommand,
    ReshootReason,
    Sender,
    TriggerCommand,
    decode,
)
from appliance.transport.limits import MAX_PAYLOAD_BYTES
from appliance.transport.messages import ControlMessage, FrameMessage, ResultMessage
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
        ([json.dumps({"version": 2, "kind": "frame"}).encode(), b"x"], "invalid FrameMessage"),
        ([b'{"version": 2, "a": ' + b"[" * 5000 + b"]" * 5000 + b"}", b"x"], "nests deeper"),
        ([b'{"version": 2, "n": ' + b"9" * 5000 + b"}", b"x"], "number longer than"),
        ([b"{" * 100_000, b"x"], "exceeds"),
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
    raw.send_multipart([json.dumps({"version": 3}).encode(), b"x"])
    header, payload = frame_for("U1001", plate_values(demo_records()[0]))
    raw.send_multipart([header.model_dump_json().encode(), payload])
    got = None
    for _ in range(10):  # the bad ones are counted and skipped, the good one comes through
        got = got or receiver.receive(timeout_ms=300)
    assert got is not None and got[0].frame_id == header.frame_id
    assert receiver.receive(timeout_ms=200) is None
    assert receiver.stats.rejected == 2
    assert receiver.stats.received == 1
    assert "unsupported protocol version 3" in (receiver.stats.last_rejection or "")
    raw.close()
    receiver.close()


def test_control_channel_carries_both_commands(run_dir: Path) -> None:
    endpoint = f"ipc://{run_dir}/control.sock"
    receiver = ControlReceiver(endpoint)
    sender = Sender(endpoint)
    sender.send(
        ReshootCommand(station="line1", inspection_id="I-1", attempt=1, reason=ReshootReason.GLARE)
    )
    sender.send(TriggerCommand(station="line1", unit_id="U1001"))
    first = receiver.receive(timeout_ms=3000)
    second = receiver.receive(timeout_ms=3000)
    assert first is not None and isinstance(first[0], ReshootCommand)
    assert first[0].reason is ReshootReason.GLARE
    assert second is not None and isinstance(second[0], TriggerCommand)
    sender.close()
    receiver.close()


def test_sender_counts_drop_when_nobody_listens(run_dir: Path) -> None:
    sender = Sender(f"ipc://{run_dir}/nobody.sock", hwm=1)
    header, payload = frame_for("U1001", plate_values(demo_records()[0]))
    assert sender.send(header, payload, timeout_ms=0) is False
    assert sender.stats.dropped == 1
    sender.close()


def _frame_dict() -> dict[str, object]:
    header, _ = frame_for("U1001", plate_values(demo_records()[0]))
    return json.loads(header.model_dump_json())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"inspection_id": "../../../../etc"}, "inspection_id"),
        ({"inspection_id": ".hidden"}, "inspection_id"),
        ({"frame_id": "a/b"}, "frame_id"),
        ({"station": "line 1; rm"}, "station"),
        ({"unit_id": "U1\n"}, "unit_id"),
        ({"attempt": 10**12}, "attempt"),
        ({"image": {"encoding": "png", "width": 20000, "height": 20000}}, "image"),
        ({"image": {"encoding": "png", "width": 10**9, "height": 1}}, "image.width"),
        ({"monotonic_ns": -1}, "monotonic_ns"),
        ({"reshoot_reason": "please try harder"}, "reshoot_reason"),
    ],
)
def test_hostile_header_fields_are_refused_with_where(
    change: dict[str, object], where: str
) -> None:
    data = dict(_frame_dict(), **change)
    with pytest.raises(MessageError) as err:
        decode([json.dumps(data).encode(), b"x"], FrameMessage, payload=True)
    assert f"invalid FrameMessage: {where}" in err.value.reason


def test_oversize_payload_is_refused() -> None:
    with pytest.raises(MessageError, match=r"payload of .* exceeds"):
        decode(
            [json.dumps(_frame_dict()).encode(), b"\0" * (MAX_PAYLOAD_BYTES + 1)],
            FrameMessage,
            payload=True,
        )


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=50,
    ),
    st.binary(max_size=64),
)
def test_decode_raises_only_message_error(data: object, tail: bytes) -> None:
    """Whatever the header holds, decoding either succeeds or says why: nothing else escapes."""
    for raw in (json.dumps(data).encode(), json.dumps(data).encode() + tail, tail):
        for model in (FrameMessage, ResultMessage, ControlMessage):
            try:
                decode([raw, b"x"], model, payload=True)
            except MessageError as exc:
                assert exc.reason and exc.kind


def test_curve_admits_the_appliance_key_and_nobody_else(tmp_path: Path) -> None:
    from appliance.transport.security import enable_curve, generate_keys, load_keys
    from tests.conftest import free_port

    generate_keys(tmp_path / "keys")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    enable_curve(load_keys(tmp_path / "keys"))
    try:
        receiver = ControlReceiver(endpoint)
        sender = Sender(endpoint)
        assert sender.send(TriggerCommand(station="line1"), timeout_ms=3000)
        got = receiver.receive(timeout_ms=5000)
        assert got is not None and isinstance(got[0], TriggerCommand)
        plain = zmq.Context.instance().socket(zmq.PUSH)  # no key: never gets through
        plain.connect(endpoint)
        stranger = zmq.Context.instance().socket(zmq.PUSH)  # a key that is not authorised
        public, secret = zmq.curve_keypair()
        stranger.curve_publickey, stranger.curve_secretkey = public, secret
        stranger.curve_serverkey = load_keys(tmp_path / "keys").public
        stranger.connect(endpoint)
        message = TriggerCommand(station="intruder").model_dump_json().encode()
        for sock in (plain, stranger):
            if sock.poll(500, zmq.POLLOUT):
                # The pipe may be dropped between poll and send when the handshake is refused.
                with contextlib.suppress(zmq.Again):
                    sock.send_multipart([message], flags=zmq.NOBLOCK)
        assert receiver.receive(timeout_ms=1500) is None
        for sock in (plain, stranger):
            sock.close(linger=0)
        sender.close()
        receiver.close()
    finally:
        enable_curve(None)
