"""Keeping the expected records in step with the ERP: a drop file or a SQL source.

Used by the recorder (continuously) and by ``nameplate erp sync`` (once, for a timer).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from appliance.settings import Settings
from appliance.store import Store
from erp_bridge import ErpFileError, SqlSource, load_erp_file

log = logging.getLogger("erp")


class ErpSync:
    """One sync step of the configured source; every outcome is recorded in ``erp_sync``."""

    def __init__(self, settings: Settings, store: Store, field_names: list[str]) -> None:
        self.settings = settings
        self.store = store
        self.field_names = field_names
        self.sql: SqlSource | None = None
        if settings.erp.source == "sql":
            erp = settings.erp
            self.sql = SqlSource(url=erp.sql_url, query=erp.sql_query,
                                 cursor_column=erp.sql_cursor_column, columns=erp.sql_columns)
        self._mtime = 0.0
        self._next_sql = 0.0
        self.state: dict[str, Any] = {"state": "not loaded", "rows": 0, "error": None}

    @property
    def name(self) -> str:
        """The source's name in the ``erp_sync`` table."""
        return self.sql.where() if self.sql else str(self.settings.erp_file)

    def due(self) -> bool:
        """True when the file changed or the SQL poll period passed."""
        if self.sql is not None:
            return time.monotonic() >= self._next_sql
        try:
            mtime = self.settings.erp_file.stat().st_mtime
        except OSError:
            mtime = -1.0
        return mtime != self._mtime

    def run(self) -> dict[str, Any]:
        """Sync once; a broken, shrunken or failing source changes nothing and is reported."""
        try:
            count = self._sql() if self.sql is not None else self._file()
        except ErpFileError as exc:
            log.error("ERP records not updated: %s", exc)
            self.store.log_event("erp_error", "record", str(exc))
            self.store.set_erp_state(self.name, last_error=str(exc))
            self.state.update(state="refused", error=str(exc))
            return dict(self.state)
        self.store.log_event("erp_sync", "record", f"{count} ERP records from {self.name}")
        self.state.update(state="ok", rows=count, error=None, loaded_at=time.time())
        return dict(self.state)

    def _file(self) -> int:
        path = self.settings.erp_file
        try:
            self._mtime = path.stat().st_mtime
        except OSError:
            self._mtime = -1.0
        records = load_erp_file(path, field_names=self.field_names)
        before = self.store.expected_count()
        if not records:
            raise ErpFileError(f"{path}: no records (header only?)")
        if len(records) < before * (1 - self.settings.erp_max_shrink):
            raise ErpFileError(
                f"{path}: {len(records)} records, {before} loaded before: lost more than "
                f"{self.settings.erp_max_shrink:.0%} (erp_max_shrink), refused")
        count = self.store.replace_expected(((r.unit_id, r.order_id, r.fields)
                                             for r in records), source=str(path))
        self.store.set_erp_state(self.name, rows=count, last_error=None,
                                 last_success=datetime.now(UTC).isoformat())
        return count

    def _sql(self) -> int:
        assert self.sql is not None
        self._next_sql = time.monotonic() + self.settings.erp.poll_s
        state = self.store.erp_state(self.name) or {}
        batch = self.sql.fetch(state.get("cursor"), field_names=self.field_names)
        total = int(state.get("rows") or 0) + len(batch.records)
        return self.store.upsert_expected(
            ((r.unit_id, r.order_id, r.fields) for r in batch.records), source=self.name,
            state={"cursor": batch.cursor, "rows": total, "last_error": None,
                   "last_success": datetime.now(UTC).isoformat()})
