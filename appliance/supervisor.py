"""``nameplate up``: start every service as a child process, restart the ones that die or stall.

Supervision is data: a list of :class:`ServiceSpec`; the loop compares what should run with
what runs (after Frigate's watchdog). One ``up`` per data folder (a lock file); children get
SIGKILL when ``up`` dies, even by ``kill -9`` (``PR_SET_PDEATHSIG``), so a second ``up``
never finds a first pipeline still running; a child whose heartbeat stops is killed and
restarted.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from appliance.health import Problem, check_service
from appliance.runtime import LockHeld, StopFlag, hold_lock, read_status
from appliance.settings import Settings

log = logging.getLogger("up")
PR_SET_PDEATHSIG = 1


class AlreadyRunning(RuntimeError):
    """Another ``nameplate up`` holds this data folder."""


@dataclass
class ServiceSpec:
    """A child service: its name, command line and whether it publishes a heartbeat."""

    name: str
    argv: list[str]
    heartbeat: bool = True
    #: seconds after start before a missing heartbeat counts (loading a reader takes a while)
    startup_grace_s: float = 180.0


@dataclass
class _Child:
    spec: ServiceSpec
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = 1.0
    next_start: float = 0.0
    history: list[int] = field(default_factory=list)


def service_specs(settings: Settings, config_file: Path | None) -> list[ServiceSpec]:
    """The services of a whole appliance for ``settings``."""
    base = [sys.executable, "-m", "appliance.cli"]
    if config_file:
        base += ["--config", str(config_file)]
    specs = [
        ServiceSpec("record", [*base, "record"]),
        ServiceSpec("infer", [*base, "infer"]),
        ServiceSpec("panel", [*base, "panel"], heartbeat=False),
    ]
    specs += [ServiceSpec(f"camera-{s.id}", [*base, "camera", "--station", s.id])
              for s in settings.stations]
    return specs


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the parent (``up``) dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def acquire_lock(data_dir: Path) -> IO[str]:
    """Hold ``data_dir/up.lock`` for this process; :class:`AlreadyRunning` names the holder."""
    try:
        return hold_lock(data_dir / "up.lock")
    except LockHeld as exc:
        raise AlreadyRunning(f"{exc.path}: nameplate up is already running for this data "
                             f"folder (pid {exc.holder})") from None


class Supervisor:
    """Keeps a set of child processes running until stopped."""

    def __init__(self, specs: list[ServiceSpec], *, settings: Settings | None = None,
                 max_backoff: float = 30.0) -> None:
        self.children = [_Child(spec) for spec in specs]
        self.settings = settings
        self.max_backoff = max_backoff

    def _start(self, child: _Child) -> None:
        log.info("starting %s", child.spec.name)
        child.process = subprocess.Popen(child.spec.argv, preexec_fn=_die_with_parent)
        child.started = time.monotonic()

    def _stalled(self, child: _Child) -> str | None:
        """Why a running child counts as stalled (its heartbeat stopped), or None."""
        settings = self.settings
        if settings is None or not child.spec.heartbeat or not settings.health.restart_stalled:
            return None
        assert settings.run_dir is not None and child.process is not None
        status = read_status(settings.run_dir, child.spec.name)
        if status is None or status.get("pid") != child.process.pid:
            if time.monotonic() - child.started > child.spec.startup_grace_s:
                return f"no heartbeat {child.spec.startup_grace_s:.0f} s after start"
            return None
        # restart on a stopped heartbeat or a hung batch, with a margin over what health says
        for finding in check_service(child.spec.name, status, settings, time.time()):
            if finding.problem in (Problem.STALLED, Problem.HUNG):
                age = time.time() - float(status.get("updated", 0))
                busy = float(status.get("busy_for_s") or 0)
                if age > 3 * settings.health.stale_s or (
                        finding.problem is Problem.HUNG and busy > 3 * settings.health.max_batch_s):
                    return finding.detail
        return None

    def poll(self) -> None:
        """Start what is not running; restart (with capped back-off) what died or stalled."""
        now = time.monotonic()
        for child in self.children:
            proc = child.process
            if proc is not None and proc.poll() is None:
                why = self._stalled(child)
                if why is None:
                    if now - child.started > 60:
                        child.backoff = 1.0
                    continue
                log.error("%s stalled (%s): killing it", child.spec.name, why)
                proc.kill()
                proc.wait()
            if proc is not None:
                code = proc.returncode
                child.history.append(code)
                child.process = None
                child.restarts += 1
                child.next_start = now + child.backoff
                log.warning("%s exited with %s; restarting in %.0f s", child.spec.name, code,
                            child.backoff)
                child.backoff = min(child.backoff * 2, self.max_backoff)
            if now >= child.next_start:
                self._start(child)

    def run(self, stop: StopFlag) -> None:
        """Supervise until ``stop`` is set, then stop every child."""
        try:
            while not stop.is_set():
                self.poll()
                stop.wait(0.5)
        finally:
            self.stop_all()

    def stop_all(self, timeout: float = 20.0) -> None:
        """Stop in pipeline order so work in flight drains: cameras (nothing new comes in),
        then inference (finishes its batch), then the recorder (stores what it received),
        then the rest; SIGTERM, wait, SIGKILL what is still running."""
        def stage(child: _Child) -> int:
            name = child.spec.name
            return 0 if name.startswith("camera-") else {"infer": 1, "record": 2}.get(name, 3)

        for level in range(4):
            running = [c.process for c in self.children if stage(c) == level
                       and c.process is not None and c.process.poll() is None]
            for proc in running:
                proc.terminate()
            deadline = time.monotonic() + timeout
            for proc in running:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        log.info("all services stopped")
