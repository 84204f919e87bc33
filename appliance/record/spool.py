"""The recorder's spool: results kept as files when the database cannot take them.

A spooled result is a JSON file (inspection row, readings, delivery) beside its image, written
atomically; the recorder replays the spool into the database as soon as it can, and a result
that is both spooled and stored is stored once (``Store.record_inspection`` is idempotent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.runtime import write_atomic


@dataclass(frozen=True)
class SpooledResult:
    """One result waiting in the spool."""

    path: Path
    inspection: dict[str, Any]
    readings: list[dict[str, Any]]
    delivery: int
    reshoot_reason: str | None
    image: Path | None


class Spool:
    """A folder of results waiting for the database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _stem(self, inspection_id: str, attempt: int) -> str:
        return f"{inspection_id}-{attempt}"

    def has(self, inspection_id: str, attempt: int) -> bool:
        """True when this attempt waits in the spool."""
        return (self.folder / f"{self._stem(inspection_id, attempt)}.json").exists()

    def put(self, inspection: dict[str, Any], readings: list[dict[str, Any]], *,
            image: bytes | None, suffix: str, delivery: int,
            reshoot_reason: str | None) -> Path:
        """Keep a result (image first, then the JSON that points at it); raises OSError when
        the disk cannot take it either."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self._stem(str(inspection["id"]), int(inspection["attempt"]))
        image_name = None
        if image:
            image_name = f"{stem}{suffix}"
            write_atomic(self.folder / image_name, image)
        path = self.folder / f"{stem}.json"
        write_atomic(path, json.dumps({
            "inspection": inspection, "readings": readings, "image": image_name,
            "delivery": delivery, "reshoot_reason": reshoot_reason}).encode())
        return path

    def entries(self) -> list[SpooledResult]:
        """Spooled results, oldest first (broken files are skipped, never deleted)."""
        if not self.folder.is_dir():
            return []
        out = []
        for path in sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
            try:
                data = json.loads(path.read_text())
                image = self.folder / data["image"] if data.get("image") else None
                out.append(SpooledResult(path, data["inspection"], data["readings"],
                                         int(data.get("delivery", 1)),
                                         data.get("reshoot_reason"), image))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out

    def remove(self, entry: SpooledResult) -> None:
        """Forget a replayed result."""
        entry.path.unlink(missing_ok=True)
        if entry.image is not None:
            entry.image.unlink(missing_ok=True)

    def count(self) -> int:
        """Results waiting."""
        return len(list(self.folder.glob("*.json"))) if self.folder.is_dir() else 0
