"""Run ``nameplate up`` on a scratch data folder, trigger it like a PLC, inject faults, count.

Faults: ``kill -9`` of a service (or of ``up`` itself, which is then started again), a
graceful stop and start mid-stream, and a full disk (a filler file on the data folder's
file system) that is freed later. Afterwards every captured frame must be exactly one stored
attempt: ``captured`` (the camera journal's lifetime counter) == rows in ``attempts``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.runtime import read_status
from appliance.transport import Sender, TriggerCommand

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"


@dataclass
class SoakPlan:
    """What to run: trigger rate, duration, and faults at seconds after the first trigger."""

    rate_hz: float = 3.0
    seconds: float = 30.0
    kills: list[tuple[float, str]] = field(default_factory=list)  # (at_s, service|"up"|"stop")
    fill_disk: tuple[float, float] | None = None                   # (from_s, until_s)
    drain_timeout_s: float = 300.0
    redeliver_s: float = 10.0
    backend: str = "ppocr"
    #: the soak exercises faults, not reading speed: its reader is not compiled by default
    #: (a killed inference process would compile its networks again on every restart)
    compile_networks: bool = False


@dataclass
class SoakReport:
    """What happened, counted."""

    triggers_sent: int = 0
    triggers_unanswered: int = 0
    captured: int = 0
    stored: int = 0
    inspections: int = 0
    duplicates_collapsed: int = 0
    redelivered: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    pending_left: int = 0
    spool_left: int = 0
    integrity: str = ""
    faults: list[str] = field(default_factory=list)
    unhealthy_seen: list[str] = field(default_factory=list)
    drain_s: float = 0.0
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Every captured frame stored exactly once, nothing left over, databases intact."""
        return (self.captured == self.stored and self.pending_left == 0 and self.spool_left == 0
                and self.integrity == "ok" and self.captured > 0)

    @property
    def accounted(self) -> bool:
        """Every captured frame is stored or still waits in the journal (none vanished)."""
        return self.captured == self.stored + self.pending_left

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dict(self.__dict__, ok=self.ok, accounted=self.accounted)


class _Appliance:
    """One ``nameplate up`` process on the soak's configuration."""

    def __init__(self, config: Path, logs: Path) -> None:
        self.config = config
        self.logs = logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NAMEPLATE_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.starts += 1
        log = (self.logs / f"up-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance.cli", "--config", str(self.config), "up"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def write_soak_config(folder: Path, *, data_dir: Path, run_dir: Path, plan: SoakPlan,
                      port: int) -> Path:
    """The soak's appliance.toml: one externally triggered synthetic station."""
    path = folder / "appliance.toml"
    path.write_text(
        f'data_dir = "{data_dir}"\nrun_dir = "{run_dir}"\n'
        f'schema_file = "{CONFIG / "schemas" / "motor.toml"}"\n'
        f'rules_file = "{CONFIG / "rules.toml"}"\nerp_file = "{CONFIG / "demo" / "erp.csv"}"\n'
        f'[reader]\nbackend = "{plan.backend}"\ndevice = "cpu"\n'
        f"compile_networks = {str(plan.compile_networks).lower()}\n"
        f"[storage]\nmin_free_mb = 4\n"
        f"[health]\nreshoot_timeout_s = 30\n"
        f"[panel]\nport = {port}\n"
        f'[[stations]]\nid = "line1"\nsource = "synthetic"\ntrigger = "external"\nseed = 5\n'
        f"redeliver_s = {plan.redeliver_s}\n")
    return path


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _ready(run_dir: Path, name: str, after: float) -> bool:
    status = read_status(run_dir, name)
    return bool(status and status.get("state") == "ready" and status.get("updated", 0) > after)


def _fill(folder: Path) -> Path:
    """Write a filler file until the file system is full."""
    filler = folder / "filler.bin"
    block = b"\0" * (1 << 20)
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(block)
            handle.flush()
    return filler


def _count(data_dir: Path) -> tuple[int, int, int, int, str]:
    """(captured, still pending, stored attempts, inspections, integrity), read from the files
    themselves after the appliance stopped."""
    with contextlib.closing(sqlite3.connect(data_dir / "journal" / "line1.db")) as journal:
        row = journal.execute("SELECT value FROM counters WHERE name = 'captured'").fetchone()
        pending = journal.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
        journal_ok = journal.execute("PRAGMA integrity_check").fetchone()[0]
    with contextlib.closing(sqlite3.connect(data_dir / "appliance.db")) as db:
        stored = db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        inspections = db.execute("SELECT COUNT(*) FROM inspections").fetchone()[0]
        db_ok = db.execute("PRAGMA integrity_check").fetchone()[0]
    integrity = "ok" if journal_ok == db_ok == "ok" else f"journal {journal_ok}, db {db_ok}"
    return (row[0] if row else 0), pending, stored, inspections, integrity


def run_soak(plan: SoakPlan, *, workdir: Path, data_dir: Path | None = None,
             log: Any = print) -> SoakReport:
    """Run ``plan`` against a fresh appliance under ``workdir``; returns the counted report."""
    from appliance.health import assess_health
    from appliance.settings import load_settings

    report = SoakReport()
    data_dir = data_dir or workdir / "data"
    run_dir = Path(tempfile.mkdtemp(prefix="np-soak-"))
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    config = write_soak_config(workdir, data_dir=data_dir, run_dir=run_dir, plan=plan,
                               port=free_port())
    settings = load_settings(config)
    app = _Appliance(config, logs)
    begun = time.time()
    app.start()
    for name in ("record", "infer", "camera-line1"):
        _wait(lambda n=name: _ready(run_dir, n, begun), 300, f"{name} to start")
    log(f"appliance up after {time.time() - begun:.1f} s; triggering at {plan.rate_hz:g} Hz "
        f"for {plan.seconds:g} s")
    stop_line = threading.Event()
    trigger = threading.Thread(target=_line, args=(settings.endpoint("control", "line1"),
                                                   plan.rate_hz, stop_line, report))
    started = time.monotonic()
    trigger.start()
    filler: Path | None = None
    disk_freed = False
    faults = sorted(plan.kills)
    try:
        while (elapsed := time.monotonic() - started) < plan.seconds:
            if faults and elapsed >= faults[0][0]:
                _, target = faults.pop(0)
                report.faults.append(_inject(target, app, run_dir, elapsed))
                log(report.faults[-1])
            if plan.fill_disk and filler is None and not disk_freed and \
                    elapsed >= plan.fill_disk[0]:
                filler = _fill(data_dir)
                report.faults.append(f"{elapsed:.1f} s: disk filled")
                log(report.faults[-1])
            if plan.fill_disk and filler is not None and elapsed >= plan.fill_disk[1]:
                filler.unlink()
                filler, disk_freed = None, True
                report.faults.append(f"{elapsed:.1f} s: disk freed")
                log(report.faults[-1])
            health = assess_health(settings)
            for problem in health["problems"]:
                key = f"{problem['service']}:{problem['problem']}"
                if key not in report.unhealthy_seen:
                    report.unhealthy_seen.append(key)
            time.sleep(0.25)
    finally:
        stop_line.set()
        trigger.join()
        if filler is not None:
            filler.unlink()
    drain_start = time.monotonic()
    log(f"line stopped: {report.triggers_sent} triggers; draining")
    with contextlib.suppress(TimeoutError):
        _wait(lambda: _drained(run_dir), plan.drain_timeout_s, "the journal and spool to drain")
    report.drain_s = round(time.monotonic() - drain_start, 1)
    camera = read_status(run_dir, "camera-line1") or {}
    record = read_status(run_dir, "record") or {}
    report.drops = dict(camera.get("drops") or {})
    report.redelivered = int(camera.get("redelivered") or 0)
    report.duplicates_collapsed = int(record.get("duplicates") or 0)
    app.stop()
    report.spool_left = len(list((data_dir / "spool").glob("*.json")))
    (report.captured, report.pending_left, report.stored, report.inspections,
     report.integrity) = _count(data_dir)
    report.elapsed_s = round(time.time() - begun, 1)
    return report


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _drained(run_dir: Path) -> bool:
    camera = read_status(run_dir, "camera-line1") or {}
    record = read_status(run_dir, "record") or {}
    fresh = time.time() - float(camera.get("updated", 0)) < 3
    return bool(fresh and camera.get("pending") == 0 and record.get("spool") == 0)


def _line(endpoint: str, rate_hz: float, stop: threading.Event, report: SoakReport) -> None:
    """The PLC: one trigger per period; an unanswered trigger (camera down) is counted."""
    sender = Sender(endpoint, hwm=1)
    period = 1.0 / rate_hz
    next_at = time.monotonic()
    while not stop.is_set():
        report.triggers_sent += 1
        if not sender.send(TriggerCommand(station="line1"), timeout_ms=int(period * 500)):
            report.triggers_unanswered += 1
        next_at += period
        stop.wait(max(0.0, next_at - time.monotonic()))
    sender.close()


def _inject(target: str, app: _Appliance, run_dir: Path, elapsed: float) -> str:
    """Kill a service (``up`` restarts it), kill ``up`` itself, or stop and start gracefully."""
    if target in ("up", "stop"):
        assert app.proc is not None
        old = app.proc.pid
        app.stop(signal.SIGKILL if target == "up" else signal.SIGTERM)
        _wait(lambda: all(not _alive(int((read_status(run_dir, n) or {}).get("pid", 0)))
                          for n in ("record", "infer", "camera-line1")), 30, "children to exit")
        restarted = time.time()
        app.start()
        _wait(lambda: _ready(run_dir, "camera-line1", restarted), 300, "camera after restart")
        how = "kill -9" if target == "up" else "graceful stop + start"
        return f"{elapsed:.1f} s: {how} of up (pid {old}); children gone, up started again"
    status = read_status(run_dir, target) or {}
    pid = int(status.get("pid", 0))
    if pid and _alive(pid):
        os.kill(pid, signal.SIGKILL)
        return f"{elapsed:.1f} s: kill -9 {target} (pid {pid})"
    return f"{elapsed:.1f} s: {target} not running, nothing killed"


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped) counts as gone
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True
