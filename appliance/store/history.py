"""History queries: inspections filtered by time, station, unit, order, verdict and field
status, newest first, paged by an opaque cursor (stable while new inspections arrive)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

VERDICTS = ("PASS", "MISMATCH", "RESHOOT", "REVIEW")
FIELD_STATUSES = ("ok", "mismatch", "confused", "not_read", "format_error", "not_expected")


class HistoryQueryError(ValueError):
    """A filter value that cannot be used; the message names the parameter."""


@dataclass(frozen=True)
class HistoryFilter:
    """What to list. Times are ISO 8601 (compared with when the result was stored)."""

    since: str | None = None
    until: str | None = None
    station: str | None = None
    unit_id: str | None = None
    order_id: str | None = None
    verdict: str | None = None
    field_status: str | None = None
    limit: int = 50
    cursor: str | None = None

    def validated(self) -> HistoryFilter:
        """Itself, or :class:`HistoryQueryError` naming the bad parameter."""
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                try:
                    datetime.fromisoformat(value)
                except ValueError:
                    raise HistoryQueryError(f"{name}: not an ISO 8601 time: {value!r}") from None
        if self.verdict is not None and self.verdict not in VERDICTS:
            raise HistoryQueryError(f"verdict: one of {', '.join(VERDICTS)}")
        if self.field_status is not None and self.field_status not in FIELD_STATUSES:
            raise HistoryQueryError(f"field_status: one of {', '.join(FIELD_STATUSES)}")
        if not 1 <= self.limit <= 1000:
            raise HistoryQueryError("limit: between 1 and 1000")
        if self.cursor is not None:
            decode_cursor(self.cursor)
        return self


def encode_cursor(stored_at: str, inspection_id: str) -> str:
    """The cursor that continues after this row."""
    return base64.urlsafe_b64encode(f"{stored_at}|{inspection_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    """(stored_at, id) of a cursor; :class:`HistoryQueryError` when it is not one of ours."""
    try:
        stored_at, inspection_id = base64.urlsafe_b64decode(cursor.encode()).decode().split(
            "|", 1)
        datetime.fromisoformat(stored_at)
    except (ValueError, UnicodeDecodeError):
        raise HistoryQueryError("cursor: not a cursor this server gave out") from None
    return stored_at, inspection_id


def history_sql(query: HistoryFilter) -> tuple[str, list[Any]]:
    """The SELECT (newest first, one row more than the limit to know if a page follows)."""
    where, args = [], []
    for column, value in (("station", query.station), ("unit_id", query.unit_id),
                          ("order_id", query.order_id), ("verdict", query.verdict)):
        if value is not None:
            where.append(f"i.{column} = ?")
            args.append(value)
    if query.since is not None:
        where.append("i.stored_at >= ?")
        args.append(query.since)
    if query.until is not None:
        where.append("i.stored_at < ?")
        args.append(query.until)
    if query.field_status is not None:
        where.append("EXISTS (SELECT 1 FROM readings r WHERE r.inspection_id = i.id AND "
                     "r.attempt = i.attempt AND r.status = ?)")
        args.append(query.field_status)
    if query.cursor is not None:
        stored_at, inspection_id = decode_cursor(query.cursor)
        where.append("(i.stored_at < ? OR (i.stored_at = ? AND i.id < ?))")
        args += [stored_at, stored_at, inspection_id]
    sql = "SELECT i.* FROM inspections i"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY i.stored_at DESC, i.id DESC LIMIT ?"
    return sql, [*args, query.limit + 1]
