"""A database of many inspections with known values, for history tests and the panel bench."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from appliance.store import Store

STATIONS = ("line1", "line2", "line3")
VERDICTS = ("PASS", "PASS", "PASS", "MISMATCH", "RESHOOT", "REVIEW")
FIELDS = ("model", "serial", "voltage")
STATUSES = ("ok", "ok", "ok", "ok", "mismatch", "confused", "not_read")
START = datetime(2026, 11, 1, tzinfo=UTC)


def fill_history(path: Path, count: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """Write ``count`` inspections (one attempt each, three readings) one second apart from
    2026-11-01; returns them as dicts (with ``statuses``) to check queries against."""
    rng = random.Random(seed)
    store = Store(path)
    rows: list[dict[str, Any]] = []
    conn = store.db.conn
    with conn:
        for n in range(count):
            stored = (START + timedelta(seconds=n)).isoformat()
            row = {"id": f"I-{n:07d}", "station": rng.choice(STATIONS), "unit_id": f"U{n}",
                   "order_id": f"PO-{n // 50}", "frame_id": f"F-{n}", "attempt": 0,
                   "captured_at": stored, "read_at": stored, "stored_at": stored,
                   "verdict": rng.choice(VERDICTS), "reason": "generated",
                   "backend": "bench", "device": "cpu", "latency_ms": 1.0,
                   "image_path": None, "family": "motor"}
            statuses = {f: rng.choice(STATUSES) for f in FIELDS}
            conn.execute(f"INSERT INTO inspections ({', '.join(row)}) VALUES "
                         f"({', '.join('?' for _ in row)})", list(row.values()))
            conn.execute("INSERT INTO attempts (inspection_id, attempt, verdict, stored_at) "
                         "VALUES (?, 0, ?, ?)", [row["id"], row["verdict"], stored])
            conn.executemany(
                "INSERT INTO readings (inspection_id, attempt, field, value, confidence, "
                "expected, status, explanation) VALUES (?, 0, ?, ?, 0.9, ?, ?, '')",
                [(row["id"], f, f"{f}-{n}", f"{f}-{n}", s) for f, s in statuses.items()])
            rows.append(dict(row, statuses=statuses))
    store.close()
    return rows
