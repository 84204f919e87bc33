"""Honest health: what is wrong with the appliance right now, judged from service heartbeats.

Every service publishes a status file once a second (:class:`appliance.runtime.Heartbeat`).
Health is a pure function of those files, the disk and the settings, shared by ``/healthz``,
``nameplate status`` and ``nameplate up``'s supervision.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from appliance.runtime import read_status
from appliance.settings import Settings


class Problem(StrEnum):
    """Kinds of trouble health reports."""

    MISSING = "missing"          # the service never reported
    STALLED = "stalled"          # its heartbeat stopped (frozen, hung loop, dead)
    STOPPED = "stopped"
    HUNG = "hung"                # inference busy on one batch far too long
    LAGGING = "lagging"          # frames wait too long for their stored result
    SOURCE_DOWN = "source_down"  # a station's camera is gone
    DISK_FULL = "disk_full"
    ERP_REFUSED = "erp_refused"  # the last ERP export was refused (broken or shrunken)
    ERP_STALE = "erp_stale"      # the ERP export has not changed for too long
    SPOOLING = "spooling"        # results wait in the spool: the database is not taking them


@dataclass(frozen=True)
class Finding:
    """One problem of one service."""

    service: str
    problem: Problem
    detail: str

    def as_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return {"service": self.service, "problem": self.problem.value, "detail": self.detail}


def service_names(settings: Settings) -> list[str]:
    """The services whose heartbeat health watches."""
    return ["infer", "record", *[f"camera-{s.id}" for s in settings.stations]]


def _age(status: dict[str, Any], now: float) -> float:
    try:
        return now - float(status.get("updated", 0.0))
    except (TypeError, ValueError):
        return float("inf")


def check_service(name: str, status: dict[str, Any] | None, settings: Settings,
                  now: float) -> list[Finding]:
    """What is wrong with one service, from its last status."""
    limits = settings.health
    if status is None:
        return [Finding(name, Problem.MISSING, "no status published")]
    age = _age(status, now)
    if status.get("state") == "stopped":
        return [Finding(name, Problem.STOPPED, "service stopped")]
    if age > limits.stale_s:
        return [Finding(name, Problem.STALLED, f"no heartbeat for {age:.0f} s")]
    found = []
    if name == "infer" and float(status.get("busy_for_s") or 0) > limits.max_batch_s:
        found.append(Finding(name, Problem.HUNG,
                             f"reading one batch for {status['busy_for_s']} s"))
    if name.startswith("camera-"):
        if status.get("source_state") == "disconnected":
            found.append(Finding(name, Problem.SOURCE_DOWN, str(status.get("error"))))
        lag = float(status.get("oldest_pending_s") or 0)
        if lag > limits.max_lag_s:
            found.append(Finding(name, Problem.LAGGING,
                                 f"oldest frame waits {lag:.0f} s for its stored result"))
    if name == "record":
        erp = status.get("erp") or {}
        if isinstance(erp, dict) and erp.get("state") == "refused":
            found.append(Finding(name, Problem.ERP_REFUSED, str(erp.get("error"))))
        if int(status.get("spool") or 0) > 0:
            found.append(Finding(name, Problem.SPOOLING,
                                 f"{status['spool']} result(s) wait in the spool"))
    return found


def check_disk(settings: Settings) -> list[Finding]:
    """Free space on the data folder against the guard."""
    folder = settings.data_dir
    while not folder.exists() and folder != folder.parent:  # not created yet: its disk
        folder = folder.parent
    try:
        free_mb = shutil.disk_usage(folder).free / 1e6
    except OSError as exc:
        return [Finding("disk", Problem.DISK_FULL, f"{settings.data_dir}: {exc}")]
    if free_mb < settings.storage.min_free_mb:
        return [Finding("disk", Problem.DISK_FULL, f"{free_mb:.0f} MB free on "
                        f"{settings.data_dir}, guard {settings.storage.min_free_mb:g} MB")]
    return []


def check_erp_age(settings: Settings, now: float,
                  record: dict[str, Any] | None = None) -> list[Finding]:
    """The ERP data's age against ``health.erp_max_age_h`` (when set): the drop file's
    modification time, or a SQL source's last successful sync (from the recorder)."""
    limit = settings.health.erp_max_age_h
    if limit is None:
        return []
    if settings.erp.source == "sql":
        erp = (record or {}).get("erp") or {}
        loaded = erp.get("loaded_at") if isinstance(erp, dict) else None
        if loaded is None:
            return [Finding("erp", Problem.ERP_STALE, "the SQL source has not synced yet")]
        age_h = (now - float(loaded)) / 3600
        if age_h > limit:
            return [Finding("erp", Problem.ERP_STALE, f"last successful SQL sync {age_h:.1f} h "
                            f"ago (limit {limit:g} h)")]
        return []
    try:
        age_h = (now - settings.erp_file.stat().st_mtime) / 3600
    except OSError as exc:
        return [Finding("erp", Problem.ERP_STALE, f"{settings.erp_file}: {exc.strerror}")]
    if age_h > limit:
        return [Finding("erp", Problem.ERP_STALE,
                        f"{settings.erp_file} unchanged for {age_h:.1f} h (limit {limit:g} h)")]
    return []


def assess_health(settings: Settings, *, now: float | None = None) -> dict[str, Any]:
    """The appliance's health: ``healthy``, every finding, and each service's last status."""
    now = time.time() if now is None else now
    run_dir: Path = settings.run_dir or settings.data_dir / "run"
    statuses = {name: read_status(run_dir, name) for name in service_names(settings)}
    findings = [f for name, status in statuses.items()
                for f in check_service(name, status, settings, now)]
    findings += check_disk(settings) + check_erp_age(settings, now, statuses.get("record"))
    return {"healthy": not findings, "problems": [f.as_dict() for f in findings],
            "services": statuses, "checked_at": now}
