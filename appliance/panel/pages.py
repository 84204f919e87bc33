"""Pages of the panel: the evidence view of one inspection, live events (SSE), offline docs."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from appliance.health import assess_health
from appliance.panel.auth import require
from appliance.store import Store

router = APIRouter()
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(["html"]))
EVENT_PERIOD_S = 1.0


@router.get("/inspections/{inspection_id}", response_class=HTMLResponse)
def evidence(request: Request, inspection_id: str) -> str:
    """Every attempt of one inspection: frame with labelled boxes, a crop per field, read vs
    expected, the verdict's reason, the audit trail, and the actions the caller may take."""
    caller = require(request, "viewer")
    db: Path = request.app.state.db_path
    if not db.exists():
        raise HTTPException(404, "no inspections yet")
    store = Store(db, readonly=True)
    try:
        row = store.inspection(inspection_id)
        attempts = store.attempts(inspection_id)
        audit = list(store.db.execute(
            "SELECT ts, username, action, reason FROM audit WHERE inspection_id = ? "
            "ORDER BY id", [inspection_id]).fetchall())
        review = store.db.execute("SELECT state, action, username FROM reviews WHERE "
                                  "inspection_id = ?", [inspection_id]).fetchone()
    finally:
        store.close()
    if row is None:
        raise HTTPException(404, f"no inspection {inspection_id!r}")
    return TEMPLATES.get_template("evidence.html").render(
        inspection=row, attempts=attempts or [row], audit=audit, review=review,
        caller=caller, can_act=caller.at_least("operator"),
        can_accept=caller.at_least("supervisor"))


def _snapshot(db: Path) -> dict[str, Any]:
    """What the live view watches: the newest inspection, the open queue, counts."""
    if not db.exists():
        return {"latest": None, "queue": 0, "counts": {}}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
    try:
        latest = conn.execute("SELECT id, stored_at, verdict FROM inspections ORDER BY "
                              "stored_at DESC LIMIT 1").fetchone()
        queue = conn.execute(
            "SELECT COUNT(*) FROM inspections i LEFT JOIN reviews r ON r.inspection_id = i.id "
            "WHERE i.verdict IN ('MISMATCH', 'REVIEW') AND (r.state IS NULL OR "
            "r.state = 'open')").fetchone()[0]
        counts = dict(conn.execute("SELECT verdict, COUNT(*) FROM inspections GROUP BY "
                                   "verdict").fetchall())
    except sqlite3.Error:
        return {"latest": None, "queue": 0, "counts": {}}
    finally:
        conn.close()
    return {"latest": list(latest) if latest else None, "queue": queue, "counts": counts}


@router.get("/api/v1/events")
async def events(request: Request) -> StreamingResponse:
    """Server-Sent Events: ``inspection`` (a new one stored), ``queue`` (the open queue
    changed), ``health`` (every few seconds, and on a change), ``alive`` every second, so the
    page can show "stale" when nothing arrives."""
    require(request, "viewer")
    db: Path = request.app.state.db_path
    settings = request.app.state.settings

    async def stream() -> AsyncIterator[str]:
        last: dict[str, Any] = {}
        last_health: tuple[bool, int] | None = None
        next_health = 0.0
        while not await request.is_disconnected():
            now = _snapshot(db)
            if now["latest"] != last.get("latest") and now["latest"] is not None:
                yield _event("inspection", {"id": now["latest"][0],
                                            "verdict": now["latest"][2],
                                            "counts": now["counts"]})
            if now["queue"] != last.get("queue"):
                yield _event("queue", {"open": now["queue"]})
            last = now
            if time.monotonic() >= next_health:
                report = assess_health(settings)
                key = (report["healthy"], len(report["problems"]))
                if key != last_health or time.monotonic() >= next_health + 4:
                    yield _event("health", {"healthy": report["healthy"],
                                            "problems": report["problems"]})
                    last_health = key
                next_health = time.monotonic() + 5.0
            yield _event("alive", {"t": round(time.time(), 1)})
            await asyncio.sleep(EVENT_PERIOD_S)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> str:
    """The HTTP API, from the OpenAPI description, with nothing loaded from the internet."""
    require(request, "viewer")
    spec = request.app.openapi()
    return TEMPLATES.get_template("docs.html").render(spec=spec)
