"""Expected records in: a real PostgreSQL staging table (10,000 rows, incremental,
transactional), JSON lines drop files, and the MES push endpoint over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from appliance.record.erp import ErpSync
from appliance.schema import load_schema
from appliance.settings import load_settings
from appliance.store import Store
from tests.conftest import REPO, Services, free_port, wait_for, write_config
from tests.plates import SCHEMA_FILE
from tests.servers import PG_BIN, Postgres

FIELDS = load_schema(SCHEMA_FILE).field_names()
QUERY = ("SELECT unit_id, order_no, model, serial_no AS serial, voltage, updated_at "
         "FROM erp_units WHERE updated_at >= CAST(:cursor AS timestamptz) ORDER BY updated_at")


@pytest.fixture
def staging() -> Iterator[Postgres]:
    if not PG_BIN.is_dir():
        pytest.skip("Debian postgresql missing")
    pg = Postgres()
    pg.start()
    engine = sa.create_engine(pg.url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE erp_units (unit_id text, order_no text, model text, serial_no text, "
            "voltage text, updated_at timestamptz NOT NULL DEFAULT now())"))
        conn.execute(sa.text(
            "INSERT INTO erp_units (unit_id, order_no, model, serial_no, voltage, updated_at) "
            "SELECT 'U' || g, 'PO-' || (g / 100), 'VX132M-4', 'SN' || lpad(g::text, 8, '0'), "
            "'230/400 V', '2026-01-01'::timestamptz + g * interval '1 second' "
            "FROM generate_series(1, 10000) g"))
    engine.dispose()
    yield pg
    pg.close()


def _sync(tmp_path: Path, run_dir: Path, pg: Postgres) -> tuple[ErpSync, Store]:
    config = write_config(tmp_path, run_dir=run_dir, extra=(
        f'[erp]\nsource = "sql"\nsql_url = "{pg.url}"\nsql_query = "{QUERY}"\n'
        'sql_columns = {order_no = "order_id"}\n'))
    settings = load_settings(config)
    store = Store(settings.data_dir / "appliance.db")
    return ErpSync(settings, store, FIELDS), store


def test_sql_source_syncs_10000_rows_incrementally_and_transactionally(
        staging: Postgres, tmp_path: Path, run_dir: Path) -> None:
    sync, store = _sync(tmp_path, run_dir, staging)
    first = sync.run()
    assert first["state"] == "ok" and first["rows"] == 10_000
    assert store.expected_count() == 10_000
    record = store.expected("U42")
    assert record == {"unit_id": "U42", "order_id": "PO-0",
                      "fields": {"model": "VX132M-4", "serial": "SN00000042",
                                 "voltage": "230/400 V"}}
    engine = sa.create_engine(staging.url)
    with engine.begin() as conn:  # 50 changed units and 10 new ones
        conn.execute(sa.text("UPDATE erp_units SET voltage = '400 V', updated_at = "
                             "'2026-02-01' WHERE unit_id IN (SELECT 'U' || g FROM "
                             "generate_series(1, 50) g)"))
        conn.execute(sa.text("INSERT INTO erp_units SELECT 'N' || g, 'PO-9', 'VX90L-2', "
                             "'NEW' || g, '400 V', '2026-02-02' FROM generate_series(1, 10) g"))
    second = sync.run()
    # only what changed (+ the rows at the cursor's own instant: `>=` re-reads them, harmless)
    assert second["state"] == "ok" and second["rows"] == 61
    assert store.expected("U7")["fields"]["voltage"] == "400 V"  # type: ignore[index]
    assert store.expected("N3") is not None and store.expected_count() == 10_010
    with engine.begin() as conn:  # a batch with one bad row: nothing of it is applied
        conn.execute(sa.text("UPDATE erp_units SET voltage = '690 V', updated_at = "
                             "'2026-03-01' WHERE unit_id = 'U100'"))
        conn.execute(sa.text("INSERT INTO erp_units VALUES ('', 'PO-9', 'X', 'Y', '1 V', "
                             "'2026-03-02')"))
    engine.dispose()
    bad = sync.run()
    assert bad["state"] == "refused"
    assert "row 12: column 'unit_id' is empty" in bad["error"]  # 10 at the cursor, U100, this
    assert store.expected("U100")["fields"]["voltage"] == "230/400 V"  # type: ignore[index]
    state = store.erp_state(sync.name)
    assert state is not None and state["last_error"] and state["cursor"].startswith("2026-02-02")
    assert "password" not in sync.name


def test_nameplate_erp_sync_and_status(staging: Postgres, tmp_path: Path,
                                       run_dir: Path) -> None:
    config = write_config(tmp_path, run_dir=run_dir, extra=(
        f'[erp]\nsource = "sql"\nsql_url = "{staging.url}"\nsql_query = "{QUERY}"\n'
        'sql_columns = {order_no = "order_id"}\n'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMEPLATE_")}

    def nameplate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "appliance.cli", "--config", str(config),
                               *args], capture_output=True, text=True, env=env, cwd=REPO,
                              timeout=300)

    out = nameplate("erp", "sync")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows"] == 10_000
    status = json.loads(nameplate("erp", "status").stdout)
    assert status["records"] == 10_000
    assert status["sources"][0]["rows"] == 10_000 and status["sources"][0]["age_s"] < 120


def test_jsonl_drop_file(tmp_path: Path, run_dir: Path) -> None:
    erp = tmp_path / "erp.jsonl"
    erp.write_text('{"unit_id": "U1", "order_id": "PO-1", "serial": "48213907KQ"}\n'
                   '{"unit_id": "U2", "model": "VX132M-4", "power": 4}\n')
    config = write_config(tmp_path, run_dir=run_dir)
    text = config.read_text()
    start = text.index("erp_file")
    config.write_text(text[:start] + f'erp_file = "{erp}"' + text[text.index("\n", start):])
    settings = load_settings(config)
    store = Store(settings.data_dir / "appliance.db")
    sync = ErpSync(settings, store, FIELDS)
    assert sync.run()["rows"] == 2
    assert store.expected("U2")["fields"] == {"model": "VX132M-4", "power": "4"}  # type: ignore[index]
    erp.write_text('{"unit_id": "U1"}\n{"unit_id": "U3", "colour": "red"}\n')
    sync._mtime = 0.0
    result = sync.run()
    assert result["state"] == "refused" and "line 2: unknown column(s) colour" in result["error"]
    assert store.expected_count() == 2


@pytest.mark.slow
def test_push_endpoint_needs_the_token(tmp_path: Path, run_dir: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, run_dir=run_dir, port=port,
                          extra='[erp]\npush_token = "s3cret-token"\n')
    services = Services(config, tmp_path / "logs")
    base = f"http://127.0.0.1:{port}/api/v1/expected"
    body = {"order_id": "PO-9", "fields": {"serial": "48213907KQ", "voltage": "400 V"}}
    try:
        services.start("panel", "panel")
        wait_for(lambda: _up(f"http://127.0.0.1:{port}/healthz"), 60, "the panel")
        assert httpx.put(f"{base}/U77", json=body).status_code == 401
        wrong = httpx.put(f"{base}/U77", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        auth = {"Authorization": "Bearer s3cret-token"}
        ok = httpx.put(f"{base}/U77", json=body, headers=auth)
        assert ok.status_code == 200, ok.text
        bad = httpx.put(f"{base}/U78", json={"fields": {"colour": "red"}}, headers=auth)
        assert bad.status_code == 422 and "unknown column(s) colour" in bad.text
    finally:
        services.stop()
    store = Store(tmp_path / "data" / "appliance.db")
    assert store.expected("U77") == {"unit_id": "U77", "order_id": "PO-9",
                                     "fields": {"serial": "48213907KQ", "voltage": "400 V"}}
    assert store.expected("U78") is None


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False
