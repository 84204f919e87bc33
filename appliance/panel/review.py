"""The open review queue and the operators' actions on it, each in the audit trail.

Open: MISMATCH and REVIEW inspections (RESHOOTs that were not served become REVIEW) that no
person has closed. Actions: reshoot, confirm the reject, accept with a reason (supervisors),
mark reviewed, and correct the reading (writes the ``nameplate finetune`` format into
``data_dir/corrections``).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from appliance.panel.auth import require

router = APIRouter()
OPEN_VERDICTS = ("MISMATCH", "REVIEW")
ROLE_OF = {"reshoot": "operator", "confirm_reject": "operator", "mark_reviewed": "operator",
           "correct": "operator", "accept": "supervisor"}
CLOSING = ("confirm_reject", "accept", "mark_reviewed")


class Action(BaseModel):
    """What a person does about an inspection."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["reshoot", "confirm_reject", "accept", "mark_reviewed", "correct"]
    reason: str = Field(default="", max_length=500)
    fields: dict[str, str] = Field(default_factory=dict, max_length=64)


def _db(request: Request) -> sqlite3.Connection:
    path: Path = request.app.state.db_path
    if not path.exists():
        raise HTTPException(404, "no inspections yet")
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


@router.get("/api/v1/queue")
def queue(request: Request, limit: int = 100) -> dict[str, Any]:
    """Open inspections, oldest first (each waits for a person)."""
    require(request, "viewer")
    conn = _db(request)
    rows = conn.execute(
        "SELECT i.id, i.station, i.unit_id, i.order_id, i.attempt, i.verdict, i.reason, "
        "i.stored_at FROM inspections i LEFT JOIN reviews r ON r.inspection_id = i.id "
        f"WHERE i.verdict IN {OPEN_VERDICTS} AND (r.state IS NULL OR r.state = 'open') "
        "ORDER BY i.stored_at LIMIT ?", [min(max(limit, 1), 1000)]).fetchall()
    conn.close()
    names = ("id", "station", "unit_id", "order_id", "attempt", "verdict", "reason",
             "stored_at")
    return {"queue": [dict(zip(names, r, strict=True)) for r in rows]}


@router.get("/api/v1/inspections/{inspection_id}/audit")
def audit(request: Request, inspection_id: str) -> dict[str, Any]:
    """Who did what to this inspection, when and why."""
    require(request, "viewer")
    conn = _db(request)
    rows = conn.execute("SELECT ts, username, action, attempt, reason, data FROM audit WHERE "
                        "inspection_id = ? ORDER BY id", [inspection_id]).fetchall()
    conn.close()
    return {"audit": [{"ts": t, "user": u, "action": a, "attempt": n, "reason": r,
                       "data": json.loads(d or "{}")} for t, u, a, n, r, d in rows]}


@router.post("/api/v1/inspections/{inspection_id}/actions")
def act(request: Request, inspection_id: str, body: Action) -> dict[str, Any]:
    """Do ``body.action`` as the caller (role checked), recorded in the audit trail."""
    caller = require(request, ROLE_OF[body.action])
    if body.action == "accept" and not body.reason.strip():
        raise HTTPException(422, "accept needs a reason (it overrides the verdict)")
    conn = _db(request)
    row = conn.execute("SELECT station, unit_id, attempt, image_path FROM inspections WHERE "
                       "id = ?", [inspection_id]).fetchone()
    if row is None:
        conn.close()
        raise HTTPException(404, f"no inspection {inspection_id!r}")
    station, unit_id, attempt, image = row
    data: dict[str, Any] = {}
    if body.action == "reshoot":
        request.app.state.reshoot(station, inspection_id, unit_id, attempt)
        data["attempt"] = attempt + 1
    elif body.action == "correct":
        data["files"] = _write_correction(request, conn, inspection_id, attempt, image, body)
    now = datetime.now(UTC).isoformat()
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO audit (ts, username, action, inspection_id, attempt, reason, "
                     "data) VALUES (?, ?, ?, ?, ?, ?, ?)", [now, caller.name, body.action,
                                                           inspection_id, attempt, body.reason,
                                                           json.dumps(data)])
        if body.action in CLOSING:
            conn.execute("INSERT OR REPLACE INTO reviews VALUES (?, 'closed', ?, ?, ?, ?)",
                         [inspection_id, body.action, caller.name, now, body.reason])
    conn.close()
    return {"done": body.action, "by": caller.name, **data}


def _write_correction(request: Request, conn: sqlite3.Connection, inspection_id: str,
                      attempt: int, image: str | None, body: Action) -> list[str]:
    """The frame and ``{"version": 1, "fields", "boxes"}`` beside it, for ``finetune``."""
    if not body.fields:
        raise HTTPException(422, "correct needs fields: {field: the value on the plate}")
    if not image or not Path(image).is_file():
        raise HTTPException(409, "the frame of this inspection is not kept (pruned?)")
    boxes = {field: json.loads(box) for field, box in conn.execute(
        "SELECT field, box FROM readings WHERE inspection_id = ? AND attempt = ? AND box IS "
        "NOT NULL", [inspection_id, attempt]) if field in body.fields}
    folder: Path = request.app.state.corrections_dir
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{inspection_id}-{attempt}"
    picture = stem.with_suffix(Path(image).suffix or ".jpg")
    shutil.copyfile(image, picture)
    label = stem.with_suffix(".json")
    label.write_text(json.dumps({"version": 1, "fields": body.fields, "boxes": boxes},
                                indent=2))
    return [str(picture), str(label)]
