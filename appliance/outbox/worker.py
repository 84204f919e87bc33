"""The delivery worker: takes due outbox rows, delivers them, retries with capped back-off.

It runs beside the recorder (a thread with its own database connection). A row is marked
delivered only after its sink acknowledged it, so a sink that is down for hours gets every
event when it is back, in order, each once (the key makes a retried delivery a no-op).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance.outbox.sinks import Sink, SinkError

log = logging.getLogger("outbox")
BATCH = 50


def result_event(inspection: dict[str, Any], readings: list[dict[str, Any]]) -> dict[str, Any]:
    """What a sink receives about one stored inspection attempt."""
    return {"version": 1, "inspection_id": inspection["id"], "attempt": inspection["attempt"],
            "station": inspection.get("station"), "unit_id": inspection.get("unit_id"),
            "order_id": inspection.get("order_id"), "verdict": inspection.get("verdict"),
            "reason": inspection.get("reason"), "captured_at": inspection.get("captured_at"),
            "stored_at": datetime.now(UTC).isoformat(),
            "fields": {r["field"]: {"value": r.get("value"), "expected": r.get("expected"),
                                    "status": r.get("status")} for r in readings}}


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


class OutboxWorker:
    """Delivers due outbox rows to their sinks until stopped."""

    def __init__(self, db_path: Path, sinks: list[Sink], *, base_delay_s: float = 1.0,
                 max_delay_s: float = 300.0) -> None:
        self.db_path = db_path
        self.sinks = {sink.name: sink for sink in sinks}
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.delivered = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run in a background thread."""
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the delivery in progress; close the sinks."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        for sink in self.sinks.values():
            sink.close()

    def _run(self) -> None:
        conn = _connect(self.db_path)
        try:
            while not self._stop.is_set():
                if not self.deliver_due(conn):
                    self._stop.wait(0.2)
        finally:
            conn.close()

    def deliver_due(self, conn: sqlite3.Connection) -> int:
        """Deliver what is due now, oldest first per sink; returns how many went through.

        A sink that fails is not tried again in this round, so its later rows keep their
        order behind the failed one."""
        now = time.time()
        rows = conn.execute(
            "SELECT id, sink, key, payload, tries FROM outbox WHERE delivered_at IS NULL "
            "AND next_try <= ? ORDER BY id LIMIT ?", [now, BATCH]).fetchall()
        failing: set[str] = set()
        done = 0
        for row_id, sink_name, key, payload, tries in rows:
            sink = self.sinks.get(sink_name)
            if sink is None or sink_name in failing:
                continue
            try:
                sink.deliver(key, json.loads(payload))
            except SinkError as exc:
                failing.add(sink_name)
                delay = min(self.max_delay_s, self.base_delay_s * 2 ** min(tries, 20))
                conn.execute("UPDATE outbox SET tries = tries + 1, next_try = ?, "
                             "last_error = ? WHERE id = ?", [time.time() + delay, str(exc),
                                                             row_id])
                self.failed += 1
                if tries == 0 or tries % 10 == 0:
                    log.warning("outbox %s: %s (retry in %.0f s)", sink_name, exc, delay)
                continue
            conn.execute("UPDATE outbox SET tries = tries + 1, delivered_at = ?, "
                         "last_error = NULL WHERE id = ?", [datetime.now(UTC).isoformat(),
                                                            row_id])
            self.delivered += 1
            done += 1
        return done


def outbox_status(db_path: Path) -> dict[str, dict[str, Any]]:
    """Per sink: delivered, waiting, oldest waiting (s), tries of the worst, last error."""
    conn = _connect(db_path)
    rows = conn.execute(
        "SELECT sink, SUM(delivered_at IS NOT NULL), SUM(delivered_at IS NULL), "
        "MIN(CASE WHEN delivered_at IS NULL THEN created_at END), MAX(tries) FROM outbox "
        "GROUP BY sink").fetchall()
    out: dict[str, dict[str, Any]] = {}
    for sink, delivered, waiting, oldest, tries in rows:
        error = conn.execute("SELECT last_error FROM outbox WHERE sink = ? AND last_error IS "
                             "NOT NULL ORDER BY id DESC LIMIT 1", [sink]).fetchone()
        age = None
        if oldest:
            age = round(time.time() - datetime.fromisoformat(oldest).timestamp(), 1)
        out[sink] = {"delivered": delivered, "waiting": waiting, "oldest_waiting_s": age,
                     "max_tries": tries, "last_error": error[0] if error else None}
    conn.close()
    return out


def retry_failed(db_path: Path, sink: str | None = None) -> int:
    """Make every waiting row due now (after a sink was fixed); how many."""
    conn = _connect(db_path)
    query = "UPDATE outbox SET next_try = 0 WHERE delivered_at IS NULL"
    cursor = conn.execute(query + (" AND sink = ?" if sink else ""), [sink] if sink else [])
    conn.close()
    return cursor.rowcount
