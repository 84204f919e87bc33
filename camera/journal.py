"""The camera's frame journal: a captured frame stays on disk until its result is stored.

A frame is an inspection from the moment it is captured. The camera writes it here (one
SQLite transaction, synchronous=FULL) before sending it, sends it again when no
acknowledgement came back in time, and forgets it only when the recorder acknowledges the
stored result. Counters (captured, acknowledged) live in the same file, so they survive
``kill -9`` and ``captured == stored`` can be checked at any time.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (
    inspection_id TEXT NOT NULL, attempt INTEGER NOT NULL, header TEXT NOT NULL,
    payload BLOB NOT NULL, captured REAL NOT NULL, next_send REAL NOT NULL DEFAULT 0,
    deliveries INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (inspection_id, attempt));
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class JournalError(RuntimeError):
    """The journal cannot take a frame (disk full, journal full, file broken)."""


@dataclass(frozen=True)
class JournalEntry:
    """One frame waiting for its acknowledgement."""

    inspection_id: str
    attempt: int
    header: str
    payload: bytes
    deliveries: int


class FrameJournal:
    """Frames captured but not yet acknowledged, in one SQLite file per station."""

    def __init__(self, path: Path, *, max_frames: int = 10_000) -> None:
        self.path = path
        self.max_frames = max_frames
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the file."""
        self.conn.close()

    def _bump(self, name: str) -> None:
        self.conn.execute("INSERT INTO counters VALUES (?, 1) ON CONFLICT(name) "
                          "DO UPDATE SET value = value + 1", (name,))

    def add(self, inspection_id: str, attempt: int, header: str, payload: bytes) -> bool:
        """Keep a captured frame; False when this (inspection, attempt) is already kept.

        Raises :class:`JournalError` when the frame cannot be kept (full disk, full journal).
        """
        if self.pending() >= self.max_frames:
            raise JournalError(f"{self.path}: {self.max_frames} frames wait for inference "
                               "already (journal full)")
        try:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                cursor = self.conn.execute(
                    "INSERT OR IGNORE INTO frames (inspection_id, attempt, header, payload, "
                    "captured) VALUES (?, ?, ?, ?, ?)",
                    (inspection_id, attempt, header, payload, time.time()))
                if cursor.rowcount:
                    self._bump("captured")
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot keep the frame: {exc}") from None
        return bool(cursor.rowcount)

    def due(self, *, window: int, now: float | None = None) -> list[JournalEntry]:
        """Frames to send now, oldest first: never sent, or not acknowledged in time; at most
        ``window`` frames are in flight (sent, waiting for their acknowledgement) at once."""
        now = time.time() if now is None else now
        in_flight = self.conn.execute(
            "SELECT COUNT(*) FROM frames WHERE deliveries > 0 AND next_send > ?",
            (now,)).fetchone()[0]
        room = window - in_flight
        if room <= 0:
            return []
        rows = self.conn.execute(
            "SELECT inspection_id, attempt, header, payload, deliveries FROM frames "
            "WHERE next_send <= ? ORDER BY captured LIMIT ?", (now, room)).fetchall()
        return [JournalEntry(*row) for row in rows]

    def sent(self, entry: JournalEntry, *, redeliver_after_s: float) -> None:
        """Note a delivery; the frame is sent again unless acknowledged within the delay."""
        try:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.execute(
                    "UPDATE frames SET deliveries = deliveries + 1, next_send = ? "
                    "WHERE inspection_id = ? AND attempt = ?",
                    (time.time() + redeliver_after_s, entry.inspection_id, entry.attempt))
        except sqlite3.Error:
            pass  # worst case the frame is sent again sooner; the recorder de-duplicates

    def ack(self, inspection_id: str, attempt: int) -> bool:
        """Forget an acknowledged frame; False when it was not (or no longer) kept."""
        try:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                cursor = self.conn.execute(
                    "DELETE FROM frames WHERE inspection_id = ? AND attempt = ?",
                    (inspection_id, attempt))
                if cursor.rowcount:
                    self._bump("acknowledged")
        except sqlite3.Error:
            return False  # kept: it is sent again and acknowledged again later
        return bool(cursor.rowcount)

    def pending(self) -> int:
        """Frames captured and not yet acknowledged."""
        return int(self.conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0])

    def oldest_age_s(self) -> float:
        """Seconds the oldest unacknowledged frame has waited (0 when none waits)."""
        oldest = self.conn.execute("SELECT MIN(captured) FROM frames").fetchone()[0]
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def counters(self) -> dict[str, int]:
        """Lifetime counts: captured, acknowledged."""
        rows = self.conn.execute("SELECT name, value FROM counters").fetchall()
        counts = {"captured": 0, "acknowledged": 0}
        counts.update({name: int(value) for name, value in rows})
        return counts
