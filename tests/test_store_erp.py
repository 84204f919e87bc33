"""Storage (real SQLite files) and the ERP CSV bridge."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from appliance.store import MIGRATIONS, Store
from erp_bridge import ErpFileError, load_erp_csv
from tests.plates import ERP, FIELDS


def test_store_is_wal_and_migrated(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db")
    assert store.version == len(MIGRATIONS)
    assert store.db.journal_mode == "wal"
    store.close()
    again = Store(tmp_path / "a.db")  # re-opening applies nothing twice
    rows = again.db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()
    assert rows[0] == len(MIGRATIONS)


def test_inspection_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db")
    store.record_inspection(
        {"id": "I-1", "station": "line1", "unit_id": "U1", "attempt": 0, "verdict": "PASS",
         "reason": "ok", "captured_at": "2026-01-01T00:00:00+00:00"},
        [{"inspection_id": "I-1", "attempt": 0, "field": "serial", "value": "123",
          "confidence": 0.9, "box": [1, 2, 3, 4], "expected": "123", "status": "ok",
          "explanation": "matches"}])
    got = store.inspection("I-1")
    assert got is not None
    assert got["fields"]["serial"]["box"] == [1, 2, 3, 4]
    assert store.counts() == {"PASS": 1}
    # a reader in another connection sees it (WAL)
    other = sqlite3.connect(tmp_path / "a.db")
    assert other.execute("SELECT verdict FROM inspections").fetchone() == ("PASS",)


def test_demo_erp_loads() -> None:
    records = load_erp_csv(ERP, field_names=list(FIELDS))
    assert len(records) == 12
    assert records[0].fields["serial"] == "48213907KQ"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty ERP file"),
        ("model,serial\nA,B\n", "missing column 'unit_id'"),
        ("unit_id,colour\nU1,red\n", "unknown column(s) colour"),
        ("unit_id,serial\nU1,1\nU1,2\n", "line 3: duplicate unit_id 'U1'"),
        ("unit_id,serial\n,1\n", "line 2: column 'unit_id' is empty"),
        ("unit_id,serial\nU1,1,extra\n", "line 2: expected 2 columns"),
    ],
)
def test_broken_erp_files_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "erp.csv"
    path.write_text(content)
    with pytest.raises(ErpFileError) as err:
        load_erp_csv(path, field_names=list(FIELDS))
    assert str(path) in str(err.value) and message in str(err.value)


def test_readings_keep_schema_order_and_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db")
    names = ["serial", "model", "voltage"]
    readings = [{"inspection_id": "I-2", "attempt": 0, "field": n, "value": "x",
                 "confidence": 0.5, "box": None, "expected": None, "status": "ok",
                 "explanation": ""} for n in names]
    store.record_inspection({"id": "I-2", "attempt": 0, "verdict": "PASS"}, readings)
    got = store.inspection("I-2")
    assert got is not None and list(got["fields"]) == names
    broken = [*readings[:1], {"inspection_id": "I-3", "attempt": 0, "no_such_column": 1}]
    with pytest.raises(sqlite3.OperationalError):
        store.record_inspection({"id": "I-3", "attempt": 0, "verdict": "PASS"}, broken)
    assert store.inspection("I-3") is None  # the inspection row was rolled back too
