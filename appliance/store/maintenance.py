"""Store maintenance: image retention, consistent backups, integrity checks."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

FLAGGED = ("MISMATCH", "REVIEW")


class Retention(Protocol):
    """The retention settings (``[storage]`` of the configuration)."""

    keep_days: float
    keep_days_flagged: float
    max_images_gb: float


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10.0)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def prune_images(data_dir: Path, *, retention: Retention, dry_run: bool = False,
                 now: datetime | None = None) -> dict[str, Any]:
    """Delete images past retention, then the oldest unflagged ones while over the size cap.

    Inspection rows are kept (the record of what was decided never goes); their
    ``image_path`` is cleared so the panel shows that the picture was pruned.
    """
    now = now or datetime.now(UTC)
    db = _connect(data_dir / "appliance.db")
    rows = db.execute("SELECT inspection_id, attempt, verdict, stored_at, image_path "
                      "FROM attempts WHERE image_path IS NOT NULL ORDER BY stored_at").fetchall()
    cutoff = (now - timedelta(days=retention.keep_days)).isoformat()
    cutoff_flagged = (now - timedelta(days=retention.keep_days_flagged)).isoformat()
    doomed: list[tuple[str, int, str]] = []
    kept: list[tuple[str, int, str, int]] = []
    for inspection_id, attempt, verdict, stored_at, image in rows:
        limit = cutoff_flagged if verdict in FLAGGED else cutoff
        if stored_at < limit:
            doomed.append((inspection_id, attempt, image))
        elif verdict not in FLAGGED:
            with contextlib.suppress(OSError):
                kept.append((inspection_id, attempt, image, Path(image).stat().st_size))
    total = sum(_size(r[4]) for r in rows)
    cap = int(retention.max_images_gb * 1e9)
    over = total - sum(_size(image) for _, _, image in doomed) - cap
    for inspection_id, attempt, image, size in kept:  # oldest first
        if over <= 0:
            break
        doomed.append((inspection_id, attempt, image))
        over -= size
    freed = sum(_size(image) for _, _, image in doomed)
    if not dry_run:
        for inspection_id, attempt, image in doomed:
            Path(image).unlink(missing_ok=True)
            with db:
                db.execute("UPDATE attempts SET image_path = NULL WHERE inspection_id = ? "
                           "AND attempt = ?", [inspection_id, attempt])
                db.execute("UPDATE inspections SET image_path = NULL WHERE id = ? AND "
                           "attempt = ?", [inspection_id, attempt])
    db.close()
    return {"images": len(rows), "pruned": len(doomed), "freed_bytes": freed,
            "dry_run": dry_run}


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def backup_database(source: Path, target: Path) -> dict[str, Any]:
    """A consistent copy of a live database (SQLite's online backup), checked after."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = _connect(source)
    dst = sqlite3.connect(target)
    with dst:
        src.backup(dst)
    result = dst.execute("PRAGMA integrity_check").fetchone()[0]
    rows = dst.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    src.close()
    dst.close()
    return {"target": str(target), "attempts": rows, "integrity": result}


def check_store(data_dir: Path) -> dict[str, Any]:
    """Integrity of the database and each station journal; images the rows point at."""
    report: dict[str, Any] = {"databases": {}, "missing_images": 0, "spool": 0}
    paths = [data_dir / "appliance.db", *sorted((data_dir / "journal").glob("*.db"))]
    for path in paths:
        if not path.exists():
            report["databases"][str(path)] = "missing"
            continue
        try:
            conn = _connect(path)
            report["databases"][str(path)] = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if path.name == "appliance.db":
                images = conn.execute("SELECT image_path FROM attempts "
                                      "WHERE image_path IS NOT NULL").fetchall()
                report["missing_images"] = sum(1 for (p,) in images if not Path(p).exists())
            conn.close()
        except sqlite3.Error as exc:
            report["databases"][str(path)] = f"error: {exc}"
    spool = data_dir / "spool"
    report["spool"] = len(list(spool.glob("*.json"))) if spool.is_dir() else 0
    report["ok"] = all(v == "ok" for v in report["databases"].values()) and \
        report["missing_images"] == 0
    return report
