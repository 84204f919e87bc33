"""Shared fixtures: a throw-away appliance configuration and real service processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance.runtime import read_status

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config"


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(directory: Path, *, run_dir: Path, extra: str = "", stations: str | None = None,
                 port: int | None = None) -> Path:
    """Write an appliance.toml using the repository's schema, rules and demo ERP file.

    The default station runs at 1 Hz: the default reader reads ~1.6 frames/s on 2 CPU cores.
    Its networks are not compiled: compiling costs a CPU reader minutes at load (the
    default, ``reader.compile_networks``, is tested in tests/test_compiled_networks.py)."""
    uncompiled = "[reader]\ncompile_networks = false\n"
    extra = extra.replace("[reader]\n", uncompiled) if "[reader]\n" in extra \
        else f"{extra}\n{uncompiled}"
    stations = stations if stations is not None else (
        '[[stations]]\nid = "line1"\nsource = "synthetic"\nrate_hz = 1.0\nseed = 3\n'
        "fault_every = 4\n")
    path = directory / "appliance.toml"
    path.write_text(
        f'data_dir = "{directory / "data"}"\n'
        f'run_dir = "{run_dir}"\n'
        f'schema_file = "{CONFIG / "schemas" / "motor.toml"}"\n'
        f'rules_file = "{CONFIG / "rules.toml"}"\n'
        f'erp_file = "{CONFIG / "demo" / "erp.csv"}"\n'
        f"{extra}\n"
        f"[panel]\nport = {port or free_port()}\nrefresh_s = 0.5\n\n"
        f"{stations}"
    )
    return path


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A short run directory (ipc:// socket paths must stay under ~100 characters)."""
    path = Path(tempfile.mkdtemp(prefix="np-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def appliance_config(tmp_path: Path, run_dir: Path) -> Path:
    """A configuration file for one synthetic station, data under ``tmp_path``."""
    return write_config(tmp_path, run_dir=run_dir)


class Services:
    """Starts ``nameplate`` service processes and stops them all at the end of a test."""

    def __init__(self, config: Path, logs: Path) -> None:
        self.config = config
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``nameplate --config CONFIG <args>``; output goes to ``logs/<name>.log``."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"{name}.log").open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NAMEPLATE_")}
        env["PYTHONUNBUFFERED"] = "1"
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance.cli", "--config", str(self.config), *args],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        """What service ``name`` printed so far."""
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM every service and wait for it."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def services(appliance_config: Path, tmp_path: Path) -> Iterator[Services]:
    """Real ``nameplate`` processes, stopped after the test."""
    s = Services(appliance_config, tmp_path / "logs")
    yield s
    s.stop()


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 0.2) -> object:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_ready(run_dir: Path, service: str, timeout: float = 60) -> dict[str, object]:
    """Wait until ``service`` published state ``ready`` in ``run_dir``."""
    def ready() -> dict[str, object] | None:
        status = read_status(run_dir, service)
        return status if status and status.get("state") == "ready" else None

    return wait_for(ready, timeout, f"{service} to be ready")  # type: ignore[return-value]
