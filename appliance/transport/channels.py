"""ZeroMQ channels of the appliance: frames, results and control.

Each channel is a small class around one socket (after Frigate's ``comms`` channels): the
receiving side binds, the sending sides connect; PUSH/PULL gives fair queuing and lets a
sender notice back-pressure. A receiver never raises on bad input: it logs the reason, counts
it and returns nothing for that message.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import zmq
from pydantic import BaseModel

from appliance.transport.codec import MessageError, decode, encode
from appliance.transport.limits import MAX_MESSAGE_BYTES
from appliance.transport.messages import ControlMessage, FrameMessage, ResultMessage
from appliance.transport.security import secure

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


@dataclass
class ChannelStats:
    """Counters a channel keeps for health reporting."""

    sent: int = 0
    dropped: int = 0
    received: int = 0
    rejected: int = 0
    last_rejection: str | None = None
    rejections_by_reason: dict[str, int] = field(default_factory=dict)
    _logged_at: dict[str, float] = field(default_factory=dict, repr=False)

    def reject(self, kind: str, reason: str, endpoint: str) -> None:
        """Count a rejected message; log it at most once per 10 s per kind (a flood of bad
        messages must not flood the journal)."""
        self.rejected += 1
        self.last_rejection = reason
        self.rejections_by_reason[kind] = self.rejections_by_reason.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._logged_at.get(kind, -1e9) >= 10.0:
            self._logged_at[kind] = now
            log.warning("rejected message on %s: %s (%d of this kind so far)", endpoint, reason,
                        self.rejections_by_reason[kind])


def _prepare_ipc(endpoint: str) -> None:
    if endpoint.startswith("ipc://"):
        Path(endpoint[len("ipc://") :]).parent.mkdir(parents=True, exist_ok=True)


class _Channel:
    def __init__(self, endpoint: str, *, bind: bool, socket_type: int, hwm: int,
                 context: zmq.Context | None = None) -> None:
        self.endpoint = endpoint
        self.stats = ChannelStats()
        self._ctx = context or zmq.Context.instance()
        self.socket = self._ctx.socket(socket_type)
        self.socket.setsockopt(zmq.LINGER, 2000)
        self.socket.setsockopt(zmq.SNDHWM, hwm)
        self.socket.setsockopt(zmq.RCVHWM, hwm)
        secure(self.socket, endpoint, server=bind)
        if bind:
            _prepare_ipc(endpoint)
            self.socket.bind(endpoint)
        else:
            # Queue only to peers that are really connected, so a missing receiver shows up
            # as back-pressure (a counted drop or a timeout) instead of a silent local queue.
            self.socket.setsockopt(zmq.IMMEDIATE, 1)
            self.socket.connect(endpoint)

    def close(self) -> None:
        """Close the socket (pending messages get the linger period to go out)."""
        self.socket.close()


class Sender(_Channel):
    """Sending end of a PUSH channel."""

    def __init__(self, endpoint: str, *, bind: bool = False, hwm: int = 100,
                 context: zmq.Context | None = None) -> None:
        super().__init__(endpoint, bind=bind, socket_type=zmq.PUSH, hwm=hwm, context=context)

    def send(self, header: BaseModel, payload: bytes | None = None, *,
             timeout_ms: int | None = None) -> bool:
        """Send one message; with ``timeout_ms`` give up (and count a drop) when the peer is full.

        ``timeout_ms=None`` blocks until the message is queued; ``0`` never blocks.
        """
        frames = encode(header, payload)
        if timeout_ms is None:
            self.socket.send_multipart(frames)
            self.stats.sent += 1
            return True
        if timeout_ms > 0 and not self.socket.poll(timeout_ms, zmq.POLLOUT):
            self.stats.dropped += 1
            return False
        try:
            self.socket.send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:
            self.stats.dropped += 1
            return False
        self.stats.sent += 1
        return True


class Receiver(_Channel, Generic[M]):
    """Receiving end of a PULL channel that validates every message against ``model``."""

    def __init__(self, endpoint: str, model: Any, *, payload: bool, bind: bool = True,
                 hwm: int = 100, context: zmq.Context | None = None) -> None:
        super().__init__(endpoint, bind=bind, socket_type=zmq.PULL, hwm=hwm, context=context)
        # larger messages are dropped by ZeroMQ itself (and the peer disconnected) before
        # they are ever buffered whole
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self.model = model
        self.payload = payload

    def receive(self, timeout_ms: int) -> tuple[M, bytes | None] | None:
        """Wait up to ``timeout_ms`` for one valid message; ``None`` when none is waiting.

        Rejected messages are counted and skipped in the same call (up to 1,000 of them), so
        a flood of bad messages cannot slow the valid ones to one per service loop.
        """
        wait = timeout_ms
        for _ in range(1000):
            if not self.socket.poll(wait, zmq.POLLIN):
                return None
            wait = 0
            frames = self.socket.recv_multipart()
            try:
                message = decode(frames, self.model, payload=self.payload)
            except MessageError as exc:
                self.stats.reject(exc.kind, exc.reason, self.endpoint)
                continue
            except Exception as exc:
                self.stats.reject("undecodable", f"undecodable message: {type(exc).__name__}",
                                  self.endpoint)
                continue
            self.stats.received += 1
            return message  # type: ignore[no-any-return]
        return None


class FrameReceiver(Receiver[FrameMessage]):
    """Inference side of the frame channel (camera → inference)."""

    def __init__(self, endpoint: str, **kwargs: object) -> None:
        super().__init__(endpoint, FrameMessage, payload=True, **kwargs)  # type: ignore[arg-type]


class ResultReceiver(Receiver[ResultMessage]):
    """Recorder side of the result channel (inference → recorder)."""

    def __init__(self, endpoint: str, **kwargs: object) -> None:
        super().__init__(endpoint, ResultMessage, payload=True, **kwargs)  # type: ignore[arg-type]


class ControlReceiver(Receiver[BaseModel]):
    """Camera side of the control channel (reshoot and trigger commands)."""

    def __init__(self, endpoint: str, **kwargs: object) -> None:
        super().__init__(endpoint, ControlMessage, payload=False, **kwargs)  # type: ignore[arg-type]
