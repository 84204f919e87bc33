"""Versioned schema migrations of the appliance database. Append, never edit, a migration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]


def _v1(db: sqlite_utils.Database) -> None:
    db.table("stations").create({"id": str, "name": str, "source": str, "updated_at": str}, pk="id")
    db.table("inspections").create(
        {
            "id": str, "station": str, "unit_id": str, "order_id": str, "frame_id": str,
            "attempt": int, "captured_at": str, "read_at": str, "stored_at": str,
            "verdict": str, "reason": str, "backend": str, "device": str,
            "latency_ms": float, "image_path": str, "family": str,
        },
        pk="id",
    )
    db.table("inspections").create_index(["stored_at"])
    db.table("inspections").create_index(["verdict", "stored_at"])
    db.table("inspections").create_index(["unit_id"])
    db.table("readings").create(
        {
            "inspection_id": str, "attempt": int, "field": str, "value": str,
            "confidence": float, "box": str, "expected": str, "status": str,
            "explanation": str,
        },
        pk=("inspection_id", "attempt", "field"),
        foreign_keys=[("inspection_id", "inspections", "id")],
    )
    db.table("expected_records").create(
        {"unit_id": str, "order_id": str, "fields": str, "source": str, "loaded_at": str},
        pk="unit_id",
    )
    db.table("events").create(
        {"id": int, "ts": str, "kind": str, "source": str, "message": str, "data": str},
        pk="id",
    )
    db.table("events").create_index(["ts"])


def _v2(db: sqlite_utils.Database) -> None:
    # every attempt of an inspection, kept (a reshoot adds one, never overwrites); its
    # primary key is what makes a re-delivered frame a duplicate
    db.table("attempts").create(
        {
            "inspection_id": str, "attempt": int, "frame_id": str, "station": str,
            "unit_id": str, "verdict": str, "reason": str, "reshoot_reason": str,
            "captured_at": str, "read_at": str, "stored_at": str, "image_path": str,
            "backend": str, "latency_ms": float, "delivery": int,
        },
        pk=("inspection_id", "attempt"),
    )
    db.table("attempts").create_index(["stored_at"])
    db.execute(
        "INSERT INTO attempts (inspection_id, attempt, frame_id, station, unit_id, verdict, "
        "reason, captured_at, read_at, stored_at, image_path, backend, latency_ms, delivery) "
        "SELECT id, attempt, frame_id, station, unit_id, verdict, reason, captured_at, "
        "read_at, stored_at, image_path, backend, latency_ms, 1 FROM inspections")


def _v3(db: sqlite_utils.Database) -> None:
    # which reader gave each value (a cascade mixes the OCR reader and the VLM)
    db.table("readings").add_column("source", str)


def _v4(db: sqlite_utils.Database) -> None:
    # results out: one row per (sink, attempt), written in the inspection's own transaction
    db.execute(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, sink TEXT NOT NULL, "
        "key TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL, "
        "tries INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL DEFAULT 0, "
        "delivered_at TEXT, last_error TEXT, UNIQUE (sink, key))")
    db.execute("CREATE INDEX outbox_due ON outbox (delivered_at, next_try)")
    # ERP sources keep their sync state (cursor, rows, last success, last error)
    db.table("erp_sync").create({"source": str, "cursor": str, "rows": int, "last_success": str,
                                 "last_error": str, "updated_at": str}, pk="source")


def _v5(db: sqlite_utils.Database) -> None:
    # the reader's verify outcome of the expected value (verified / differs / unreadable)
    db.table("readings").add_column("verify", str)


def _v6(db: sqlite_utils.Database) -> None:
    # history filters on 100,000s of inspections answer from indexes
    db.execute("CREATE INDEX IF NOT EXISTS inspections_station ON inspections "
               "(station, stored_at)")
    db.execute("CREATE INDEX IF NOT EXISTS inspections_order ON inspections (order_id)")
    db.execute("CREATE INDEX IF NOT EXISTS inspections_stored_id ON inspections "
               "(stored_at, id)")
    db.execute("CREATE INDEX IF NOT EXISTS readings_status ON readings "
               "(status, inspection_id, attempt)")


def _v7(db: sqlite_utils.Database) -> None:
    # panel accounts (argon2 hashes only), machine tokens (sha256 only), the audit trail of
    # every operator action, and the review state of inspections in the open queue
    db.table("users").create({"username": str, "password_hash": str, "role": str,
                              "created_at": str, "disabled": int}, pk="username")
    db.table("api_tokens").create({"token_hash": str, "name": str, "role": str,
                                   "created_at": str}, pk="token_hash")
    db.table("audit").create({"id": int, "ts": str, "username": str, "action": str,
                              "inspection_id": str, "attempt": int, "reason": str,
                              "data": str}, pk="id")
    db.table("audit").create_index(["inspection_id"])
    db.table("reviews").create({"inspection_id": str, "state": str, "action": str,
                                "username": str, "ts": str, "reason": str},
                               pk="inspection_id")


MIGRATIONS: list[Migration] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7]


def migrate(db: sqlite_utils.Database) -> int:
    """Apply every migration newer than the database's version; returns the version now."""
    if "schema_migrations" not in db.table_names():
        db.table("schema_migrations").create({"version": int, "applied_at": str}, pk="version")
    current = max((r["version"] for r in db.table("schema_migrations").rows), default=0)
    for version, step in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        with db.conn:
            step(db)
            db.table("schema_migrations").insert(
                {"version": version, "applied_at": datetime.now(UTC).isoformat()}
            )
        current = version
    return current
