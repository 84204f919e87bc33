"""``nameplate up``: start every service as a child process, restart the ones that die.

Supervision is data: a list of :class:`ServiceSpec`; the loop compares what should run with
what runs (after Frigate's watchdog).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from appliance.runtime import StopFlag
from appliance.settings import Settings

log = logging.getLogger("up")


@dataclass
class ServiceSpec:
    """A child service: its name and command line."""

    name: str
    argv: list[str]


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
        ServiceSpec("panel", [*base, "panel"]),
    ]
    specs += [ServiceSpec(f"camera-{s.id}", [*base, "camera", "--station", s.id])
              for s in settings.stations]
    return specs


class Supervisor:
    """Keeps a set of child processes running until stopped."""

    def __init__(self, specs: list[ServiceSpec], *, max_backoff: float = 30.0) -> None:
        self.children = [_Child(spec) for spec in specs]
        self.max_backoff = max_backoff

    def _start(self, child: _Child) -> None:
        log.info("starting %s", child.spec.name)
        child.process = subprocess.Popen(child.spec.argv)
        child.started = time.monotonic()

    def poll(self) -> None:
        """Start what is not running; restart (with capped back-off) what died."""
        now = time.monotonic()
        for child in self.children:
            proc = child.process
            if proc is not None and proc.poll() is None:
                if now - child.started > 60:
                    child.backoff = 1.0
                continue
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

    def stop_all(self, timeout: float = 10.0) -> None:
        """SIGTERM every child, wait, then SIGKILL the ones still running."""
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
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
