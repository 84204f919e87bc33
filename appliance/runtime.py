"""Process plumbing shared by the services: logging, stop signals, readiness, watchdog."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

#: ``extra=`` keys a log call may carry into a structured line
LOG_FIELDS = ("station", "inspection_id", "attempt", "frame_sha256", "verdict", "latency_ms",
              "backend", "unit_id", "delivery", "model", "tokens_in", "tokens_out")


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


def keep_freed_memory(*, mmap_below: int = 32 << 20, trim_above: int = 512 << 20) -> bool:
    """Let the C allocator reuse freed blocks instead of handing them back to the kernel.

    glibc serves blocks from 128 KB up (a reader's feature maps: megabytes) with fresh
    ``mmap`` pages and unmaps them on ``free``, so every network pass faults in and zeroes
    its memory again: on 2 CPU cores that doubled the detector's time (300 against 135 ms
    a frame). Blocks under ``mmap_below`` now come from the heap, which keeps up to
    ``trim_above`` bytes of free space. Process-wide; False where there is no glibc."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_below)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, trim_above))


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line (journald- and log-shipper-friendly)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON, with the known ``extra`` fields at the top level."""
        line: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname, "service": self.service, "pid": record.process,
            "logger": record.name, "msg": record.getMessage()}
        for key in LOG_FIELDS:
            if key in record.__dict__:
                line[key] = record.__dict__[key]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup_logging(level: str, name: str, *, fmt: str = "auto") -> logging.Logger:
    """Log to stderr with the service's name: JSON lines under systemd (``JOURNAL_STREAM`` is
    set) or when ``fmt`` is ``json``, plain text otherwise."""
    handler = logging.StreamHandler()
    if fmt == "json" or (fmt == "auto" and os.environ.get("JOURNAL_STREAM")):
        handler.setFormatter(JsonLogFormatter(name))
    else:
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s {name}[%(process)d] %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=[handler],
                        force=True)
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


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` durably: a temporary file, fsync, rename. A failure
    (``OSError``, e.g. a full disk) leaves no partial file behind."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def status_path(run_dir: Path, service: str) -> Path:
    """Where ``service`` writes its status JSON."""
    return run_dir / f"{service}.status.json"


def write_status(run_dir: Path, service: str, status: dict[str, object]) -> bool:
    """Atomically publish a service's status (read by the panel, ``status`` and ``up``).

    Never raises: a full disk or a missing folder costs a stale status (which health reports),
    not the service. Returns False when the status could not be written.
    """
    data = json.dumps(dict(status, pid=os.getpid(), updated=time.time()), default=str)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        replace_quietly(status_path(run_dir, service), data.encode())
    except OSError as exc:
        logging.getLogger(service).warning("status not written: %s", exc)
        return False
    return True


def replace_quietly(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically (no fsync: a status, not a result); the
    temporary name is per process, so two writers never share one. Leaves nothing behind
    when it raises ``OSError``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class Heartbeat:
    """Publishes a service's status once a second from its main loop.

    Written by the loop itself, not a thread: a hung loop stops the heartbeat, and that is
    how ``up`` and ``/healthz`` notice it.
    """

    def __init__(self, run_dir: Path, service: str, status: Callable[[], dict[str, object]],
                 *, period_s: float = 1.0) -> None:
        self.run_dir = run_dir
        self.service = service
        self.status = status
        self.period_s = period_s
        self._last = 0.0

    def due(self) -> bool:
        """True when a beat is due."""
        return time.monotonic() - self._last >= self.period_s

    def beat(self, *, state: str = "ready") -> None:
        """Publish the status now."""
        self._last = time.monotonic()
        write_status(self.run_dir, self.service, dict(self.status(), state=state))


def read_status(run_dir: Path, service: str) -> dict[str, Any] | None:
    """The last status ``service`` published, or None."""
    try:
        data: dict[str, Any] = json.loads(status_path(run_dir, service).read_text())
        return data
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def loading_heartbeat(run_dir: Path | None, service: str, *,
                      period_s: float = 1.0) -> Iterator[None]:
    """Publish ``state: loading`` every ``period_s`` while the block runs: a service whose
    start takes minutes (the reader compiling its networks) is alive, not stalled."""
    if run_dir is None:
        yield
        return
    done = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while True:
            write_status(run_dir, service, {
                "state": "loading", "loading_for_s": round(time.monotonic() - started, 1)})
            if done.wait(period_s):
                return

    thread = threading.Thread(target=beat, name=f"{service}-loading", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def report_ready(run_dir: Path, service: str, log: logging.Logger, **details: object) -> None:
    """Tell systemd and the world that ``service`` is up."""
    write_status(run_dir, service, dict(details, state="ready"))
    sd_notify("READY=1")
    log.info("ready %s", json.dumps(details, default=str))


class LockHeld(RuntimeError):
    """Another live process holds a lock file."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path}: held by pid {holder}")
        self.path = path
        self.holder = holder


def hold_lock(path: Path) -> IO[str]:
    """Take an exclusive lock on ``path`` for as long as the returned handle stays open.

    The kernel releases it when the process dies (even by SIGKILL), so a stale file never
    blocks a restart. Raises :class:`LockHeld` naming the holder's pid.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise LockHeld(path, holder) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
