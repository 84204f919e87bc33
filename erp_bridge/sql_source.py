"""ERP records from a SQL database (any SQLAlchemy URL), incrementally by a cursor column.

The query selects the unit id, the order id and the plate fields (a ``columns`` mapping
renames database columns to field names) and has a ``:cursor`` parameter: rows changed after
the last sync. A batch is validated whole before anything is written, so one bad row changes
nothing and is reported with its row number and column.
"""

from __future__ import annotations

from dataclasses import dataclass

from erp_bridge.csv_source import ErpFileError, ExpectedRecord
from erp_bridge.files import record_from_row


class ErpSourceError(ErpFileError):
    """The SQL source cannot be read (connection, query) or a row is invalid."""


@dataclass(frozen=True)
class SqlBatch:
    """Records changed since the cursor, and the cursor to use next time."""

    records: list[ExpectedRecord]
    cursor: str | None


class SqlSource:
    """Reads expected records from a database table or view."""

    def __init__(self, *, url: str, query: str, cursor_column: str = "updated_at",
                 columns: dict[str, str] | None = None,
                 initial_cursor: str = "1970-01-01T00:00:00+00:00") -> None:
        import sqlalchemy as sa

        self.url = url
        self.query = sa.text(query)
        self.cursor_column = cursor_column
        self.columns = columns or {}
        self.initial_cursor = initial_cursor
        self.engine = sa.create_engine(url, pool_pre_ping=True)

    def where(self) -> str:
        """The source's URL without its password (for messages and status)."""
        return self.engine.url.render_as_string(hide_password=True)

    def fetch(self, cursor: str | None, *, field_names: list[str]) -> SqlBatch:
        """Rows changed after ``cursor``, validated; :class:`ErpSourceError` on any problem."""
        import sqlalchemy as sa

        try:
            with self.engine.connect() as conn:
                result = conn.execute(self.query, {"cursor": cursor or self.initial_cursor})
                names = list(result.keys())
                rows = result.fetchall()
        except sa.exc.SQLAlchemyError as exc:
            raise ErpSourceError(f"{self.where()}: {type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:200]}") from None
        if self.cursor_column not in names:
            raise ErpSourceError(f"{self.where()}: the query returns no cursor column "
                                 f"{self.cursor_column!r} (columns: {', '.join(names)})")
        records: list[ExpectedRecord] = []
        seen: set[str] = set()
        newest = cursor
        for number, values in enumerate(rows, start=1):
            raw = dict(zip(names, values, strict=True))
            stamp = raw.pop(self.cursor_column)
            row: dict[str, object] = {self.columns.get(str(k), str(k)): v
                                      for k, v in raw.items()}
            records.append(record_from_row(row, where=f"{self.where()}: row {number}",
                                           field_names=field_names, seen=seen))
            text = stamp.isoformat() if hasattr(stamp, "isoformat") else str(stamp)
            newest = text if newest is None or text > newest else newest
        return SqlBatch(records, newest)

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()
