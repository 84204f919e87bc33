"""Process plumbing shared by the services: logging, stop signals, readiness, watchdog."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path


def setup_logging(level: str, name: str) -> logging.Logger:
    """Log to stderr (journald picks it up under systemd) with the service's name."""
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format=f"%(asctime)s {name}[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    return logging.getLogger(name)


class StopFlag:
    """Set by SIGTERM/SIGINT; services poll it between short waits."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self) -> StopFlag:
        """Route SIGTERM and SIGINT to this flag."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._event.set())
        return self

    def set(self) -> None:
        """Ask the service to stop."""
        self._event.set()

    def is_set(self) -> bool:
        """True once a stop was asked for."""
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if stopping."""
        return self._event.wait(seconds)


def sd_notify(message: str) -> None:
    """Send ``message`` to systemd's notify socket when run as a Type=notify unit."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(message.encode())
        except OSError:
            pass


def status_path(run_dir: Path, service: str) -> Path:
    """Where ``service`` writes its status JSON."""
    return run_dir / f"{service}.status.json"


def write_status(run_dir: Path, service: str, status: dict[str, object]) -> None:
    """Atomically publish a service's status (read by the panel and the tests)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = status_path(run_dir, service)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(status, pid=os.getpid(), updated=time.time())))
    tmp.replace(path)


def read_status(run_dir: Path, service: str) -> dict[str, object] | None:
    """The last status ``service`` published, or None."""
    try:
        data: dict[str, object] = json.loads(status_path(run_dir, service).read_text())
        return data
    except (OSError, ValueError):
        return None


def report_ready(run_dir: Path, service: str, log: logging.Logger, **details: object) -> None:
    """Tell systemd and the world that ``service`` is up."""
    write_status(run_dir, service, dict(details, state="ready"))
    sd_notify("READY=1")
    log.info("ready %s", json.dumps(details, default=str))
