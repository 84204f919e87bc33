"""The appliance's SQLite database (WAL mode): inspections, readings, ERP records, events."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from appliance.store.history import HistoryFilter, encode_cursor, history_sql
from appliance.store.migrations import migrate


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Store:
    """One connection to the appliance database; one writer process (the recorder)."""

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite_utils.Database(self.path)
        self.db.conn.execute("PRAGMA busy_timeout = 5000")
        if not readonly:
            self.db.enable_wal()
            # FULL: an acknowledged result must survive a power cut, not only a crash
            self.db.conn.execute("PRAGMA synchronous = FULL")
            self.db.conn.execute("PRAGMA foreign_keys = ON")
            self.version = migrate(self.db)

    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

    # -- configuration-derived tables -------------------------------------------------------
    def upsert_station(self, station_id: str, *, name: str, source: str) -> None:
        """Record a configured station."""
        self.db.table("stations").upsert(
            {"id": station_id, "name": name, "source": source, "updated_at": _now()}, pk="id")

    def replace_expected(self, records: Iterable[tuple[str, str | None, dict[str, str]]], *,
                         source: str) -> int:
        """Replace all ERP records by ``records`` (unit, order, fields) in one transaction."""
        rows = [{"unit_id": u, "order_id": o, "fields": json.dumps(f), "source": source,
                 "loaded_at": _now()} for u, o, f in records]
        with self.db.conn:  # one transaction: readers never see a half-loaded ERP table
            self.db.conn.execute("DELETE FROM expected_records")
            for row in rows:
                self._insert_or_replace("expected_records", row)
        return len(rows)

    def upsert_expected(self, records: Iterable[tuple[str, str | None, dict[str, str]]], *,
                        source: str, state: dict[str, Any] | None = None) -> int:
        """Insert or update ``records`` (and the source's sync state) in one transaction."""
        rows = [{"unit_id": u, "order_id": o, "fields": json.dumps(f), "source": source,
                 "loaded_at": _now()} for u, o, f in records]
        with self.db.conn:
            for row in rows:
                self._insert_or_replace("expected_records", row)
            if state is not None:
                self._insert_or_replace("erp_sync", dict(state, source=source,
                                                         updated_at=_now()))
        return len(rows)

    def erp_state(self, source: str) -> dict[str, Any] | None:
        """The last sync state of an ERP source (cursor, rows, last success, last error)."""
        rows = list(self.db.table("erp_sync").rows_where("source = ?", [source]))
        return rows[0] if rows else None

    def set_erp_state(self, source: str, **state: Any) -> None:
        """Update an ERP source's sync state (for example its last error)."""
        with self.db.conn:
            current = self.erp_state(source) or {"source": source}
            self._insert_or_replace("erp_sync", dict(current, **state, updated_at=_now()))

    def expected(self, unit_id: str | None) -> dict[str, Any] | None:
        """The ERP record of ``unit_id`` as {"unit_id", "order_id", "fields"}, or None."""
        if not unit_id:
            return None
        rows = list(self.db.table("expected_records").rows_where("unit_id = ?", [unit_id]))
        if not rows:
            return None
        row = rows[0]
        return {"unit_id": row["unit_id"], "order_id": row["order_id"],
                "fields": json.loads(row["fields"])}

    # -- results ----------------------------------------------------------------------------
    def has_attempt(self, inspection_id: str, attempt: int) -> bool:
        """True when this attempt of the inspection is stored already (a re-delivery)."""
        row = self.db.execute("SELECT 1 FROM attempts WHERE inspection_id = ? AND attempt = ?",
                              [inspection_id, attempt]).fetchone()
        return row is not None

    def record_inspection(self, inspection: dict[str, Any], readings: list[dict[str, Any]], *,
                          delivery: int = 1, reshoot_reason: str | None = None,
                          outbox: dict[str, dict[str, Any]] | None = None) -> bool:
        """Write one inspection attempt and its per-field readings in one transaction.

        Idempotent: an attempt stored already changes nothing (returns False). The
        inspection row shows its latest attempt; an older attempt arriving late (from the
        spool) is kept in ``attempts`` without hiding the newer one. Plain SQL on purpose:
        sqlite-utils' table helpers commit on their own, which would let the panel see an
        inspection without all of its readings. ``outbox`` (sink → event) is queued for the
        result sinks in the same transaction, so an event exists exactly when the result does.
        """
        row = dict(inspection, stored_at=_now())
        with self.db.conn:
            self.db.conn.execute("BEGIN IMMEDIATE")
            if self.has_attempt(row["id"], row["attempt"]):
                return False
            self.db.conn.execute(
                "INSERT INTO attempts (inspection_id, attempt, frame_id, station, unit_id, "
                "verdict, reason, reshoot_reason, captured_at, read_at, stored_at, image_path, "
                "backend, latency_ms, delivery) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?)",
                [row["id"], row["attempt"], row.get("frame_id"), row.get("station"),
                 row.get("unit_id"), row.get("verdict"), row.get("reason"), reshoot_reason,
                 row.get("captured_at"), row.get("read_at"), row["stored_at"],
                 row.get("image_path"), row.get("backend"), row.get("latency_ms"), delivery])
            columns = ", ".join(f"[{c}]" for c in row)
            marks = ", ".join("?" for _ in row)
            updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in row if c != "id")
            self.db.conn.execute(
                f"INSERT INTO inspections ({columns}) VALUES ({marks}) ON CONFLICT(id) DO "
                f"UPDATE SET {updates} WHERE excluded.attempt >= inspections.attempt",
                list(row.values()))
            for reading in readings:
                values = dict(reading)
                values["box"] = json.dumps(values.get("box")) if values.get("box") else None
                self._insert_or_replace("readings", values)
            key = f"{row['id']}:{row['attempt']}"
            for sink, event in (outbox or {}).items():
                self.db.conn.execute(
                    "INSERT OR IGNORE INTO outbox (sink, key, payload, created_at) "
                    "VALUES (?, ?, ?, ?)", [sink, key, json.dumps(event), row["stored_at"]])
        return True

    def escalate_stale_reshoots(self, *, older_than_s: float) -> list[str]:
        """Turn RESHOOT inspections that got no new attempt in time into REVIEW; their ids."""
        cutoff = datetime.fromtimestamp(datetime.now(UTC).timestamp() - older_than_s, UTC)
        with self.db.conn:
            self.db.conn.execute("BEGIN IMMEDIATE")
            ids = [r[0] for r in self.db.conn.execute(
                "SELECT id FROM inspections WHERE verdict = 'RESHOOT' AND stored_at < ?",
                [cutoff.isoformat()]).fetchall()]
            for inspection_id in ids:
                self.db.conn.execute(
                    "UPDATE inspections SET verdict = 'REVIEW', reason = reason || ? "
                    "WHERE id = ?",
                    [f"; the reshoot did not come within {older_than_s:g} s", inspection_id])
        return ids

    def expected_count(self) -> int:
        """How many ERP records are loaded."""
        return int(self.db.execute("SELECT COUNT(*) FROM expected_records").fetchone()[0])

    def _insert_or_replace(self, table: str, row: dict[str, Any]) -> None:
        columns = ", ".join(f"[{c}]" for c in row)
        marks = ", ".join("?" for _ in row)
        self.db.conn.execute(f"INSERT OR REPLACE INTO [{table}] ({columns}) VALUES ({marks})",
                             list(row.values()))

    def log_event(self, kind: str, source: str, message: str, data: dict[str, Any] | None = None,
                  ) -> None:
        """Append an event to the audit log."""
        with self.db.conn:
            self.db.table("events").insert({"ts": _now(), "kind": kind, "source": source,
                                      "message": message, "data": json.dumps(data or {})})

    # -- queries for the panel --------------------------------------------------------------
    def history(self, query: HistoryFilter) -> tuple[list[dict[str, Any]], str | None]:
        """A page of inspections matching ``query`` (each with its latest attempt's
        readings) and the cursor of the next page (None on the last page)."""
        sql, args = history_sql(query.validated())
        cursor = self.db.execute(sql, args)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        following = encode_cursor(rows[-1]["stored_at"], rows[-1]["id"]) if more else None
        return [self._with_readings(row) for row in rows], following

    def inspection(self, inspection_id: str) -> dict[str, Any] | None:
        """One inspection with its readings, or None."""
        rows = list(self.db.table("inspections").rows_where("id = ?", [inspection_id]))
        return self._with_readings(rows[0]) if rows else None

    def attempts(self, inspection_id: str) -> list[dict[str, Any]]:
        """Every attempt of an inspection, first to last, each with its own readings."""
        rows = self.db.execute(
            "SELECT inspection_id, attempt, verdict, reason, reshoot_reason, captured_at, "
            "stored_at, image_path, backend, latency_ms FROM attempts WHERE inspection_id = ? "
            "ORDER BY attempt", [inspection_id]).fetchall()
        names = ("id", "attempt", "verdict", "reason", "reshoot_reason", "captured_at",
                 "stored_at", "image_path", "backend", "latency_ms")
        return [self._with_readings(dict(zip(names, r, strict=True))) for r in rows]

    def reshoot_run(self, inspection_id: str, *, before: int) -> list[dict[str, Any]]:
        """The attempts just before attempt ``before`` that each ended in RESHOOT (latest
        first, stopping at a gap or another verdict), each with its readings: the frames of
        the same plate that an automatic reshoot run took."""
        by_attempt = {row["attempt"]: row for row in self.attempts(inspection_id)}
        run = []
        attempt = before - 1
        while attempt >= 0 and by_attempt.get(attempt, {}).get("verdict") == "RESHOOT":
            run.append(by_attempt[attempt])
            attempt -= 1
        return run

    def counts(self) -> dict[str, int]:
        """Number of inspections per verdict."""
        sql = "SELECT verdict, COUNT(*) AS n FROM inspections GROUP BY verdict"
        return {row[0]: row[1] for row in self.db.execute(sql).fetchall()}

    def events(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """Latest audit events first."""
        rows = self.db.table("events").rows_where(order_by="id DESC", limit=limit)
        return [dict(r, data=json.loads(r["data"] or "{}")) for r in rows]

    def _with_readings(self, row: dict[str, Any]) -> dict[str, Any]:
        readings = self.db.table("readings").rows_where(
            "inspection_id = ? AND attempt = ?", [row["id"], row["attempt"]], order_by="rowid")
        fields = {}
        for r in readings:
            fields[r["field"]] = {
                "value": r["value"], "confidence": r["confidence"],
                "box": json.loads(r["box"]) if r["box"] else None, "expected": r["expected"],
                "status": r["status"], "explanation": r["explanation"],
                "source": r.get("source"), "verify": r.get("verify"),
            }
        return dict(row, fields=fields)
