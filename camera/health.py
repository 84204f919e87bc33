"""Per-station health and reconnect back-off, published for the panel and /metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class DropReason(StrEnum):
    """Why a frame did not become an inspection (counted per reason, never silent)."""

    BUSY = "busy"                    # free-running frame skipped: inference is behind
    DISK_FULL = "disk_full"          # free-space guard: capture stopped
    JOURNAL = "journal"              # the journal could not keep the frame
    NO_SOURCE = "no_source"          # the camera is gone
    WRONG_STATION = "wrong_station"  # a command meant for another station


@dataclass
class StationHealth:
    """State of one station's source, counted as the daemon runs."""

    station: str
    reconnect_max_s: float = 2.0
    state: str = "starting"
    error: str | None = None
    sent: int = 0
    captured: int = 0
    acknowledged: int = 0
    redelivered: int = 0
    empty: int = 0
    reconnects: int = 0
    failures: int = 0
    last_frame_at: str | None = None
    drops: dict[str, int] = field(default_factory=dict)
    last_drop: str | None = None
    _next_try: float = 0.0
    _times: list[float] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        """Frames that did not become inspections, all reasons together."""
        return sum(self.drops.values())

    def drop(self, reason: DropReason, detail: str) -> None:
        """Count a frame that did not become an inspection."""
        self.drops[reason.value] = self.drops.get(reason.value, 0) + 1
        self.last_drop = f"{reason.value}: {detail}"

    def may_retry(self) -> bool:
        """True when the back-off since the last failure has passed."""
        return time.monotonic() >= self._next_try

    def failed(self, error: str) -> bool:
        """Record a failure and schedule the next try (capped exponential back-off).

        Returns True when the error is new (worth a log line).
        """
        new = error != self.error
        self.state = "disconnected"
        self.error = error
        delay = min(self.reconnect_max_s, 0.25 * 2 ** self.failures)
        self.failures += 1
        self._next_try = time.monotonic() + delay
        return new

    def connected(self) -> bool:
        """Record a (re)connection; True when it follows a failure."""
        again = self.state == "disconnected"
        if again:
            self.reconnects += 1
        self.state = "connected"
        self.error = None
        self.failures = 0
        return again

    def frame_sent(self) -> None:
        """Count a frame and keep the recent rate."""
        self.sent += 1
        now = time.monotonic()
        self._times = [t for t in self._times if now - t < 10.0] + [now]
        self.last_frame_at = datetime.now(UTC).isoformat()

    def fps(self) -> float:
        """Frames per second over the last 10 s."""
        now = time.monotonic()
        recent = [t for t in self._times if now - t < 10.0]
        return round(len(recent) / 10.0, 2)

    def as_dict(self) -> dict[str, object]:
        """The health as JSON-ready data."""
        return {"station": self.station, "source_state": self.state, "error": self.error,
                "fps": self.fps(), "last_frame_at": self.last_frame_at, "sent": self.sent,
                "captured": self.captured, "acknowledged": self.acknowledged,
                "redelivered": self.redelivered, "dropped": self.dropped,
                "drops": dict(self.drops), "last_drop": self.last_drop, "empty": self.empty,
                "reconnects": self.reconnects}
