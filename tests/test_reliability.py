"""Reliability with real processes: faults mid-stream lose nothing, health tells the truth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from appliance.soak import SoakPlan, run_soak
from tests.conftest import Services, free_port, wait_for, wait_ready, write_config

pytestmark = pytest.mark.slow


def test_kill_each_service_and_up_at_a_3hz_line_loses_nothing(tmp_path: Path) -> None:
    plan = SoakPlan(rate_hz=3.0, seconds=24, redeliver_s=8.0, drain_timeout_s=240,
                    kills=[(4, "infer"), (8, "record"), (12, "camera-line1"), (15, "up"),
                           (20, "stop")])
    report = run_soak(plan, workdir=tmp_path)
    print(json.dumps(report.as_dict(), indent=2))
    assert len(report.faults) == 5 and all("nothing killed" not in f for f in report.faults)
    assert report.captured > 30
    assert report.captured == report.stored, report.as_dict()  # each frame one stored attempt
    assert report.pending_left == 0 and report.spool_left == 0
    assert report.integrity == "ok"


def _can_mount_tmpfs() -> bool:
    probe = Path(tempfile.mkdtemp(prefix="np-mnt-"))
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
                        capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", str(probe)], check=True)
    probe.rmdir()
    return ok


@pytest.mark.skipif(os.geteuid() != 0 or not _can_mount_tmpfs(),
                    reason="mounting a small tmpfs needs root (CI runs as root)")
def test_full_disk_and_freed_loses_nothing(tmp_path: Path) -> None:
    mount = Path(tempfile.mkdtemp(prefix="np-disk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], check=True)
    try:
        plan = SoakPlan(rate_hz=3.0, seconds=24, fill_disk=(5, 14), redeliver_s=6.0,
                        drain_timeout_s=240)
        report = run_soak(plan, workdir=tmp_path, data_dir=mount / "data")
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    print(json.dumps(report.as_dict(), indent=2))
    assert report.drops.get("disk_full", 0) > 0           # capture stopped while full
    assert "disk:disk_full" in report.unhealthy_seen       # and health said so
    assert report.captured == report.stored, report.as_dict()
    assert report.pending_left == 0 and report.spool_left == 0 and report.integrity == "ok"
    assert report.captured > report.drops["disk_full"] // 4  # capture resumed after freeing


def _health(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_healthz_goes_unhealthy_within_10s_of_a_frozen_camera_or_infer(
        tmp_path: Path, run_dir: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, run_dir=run_dir, port=port)
    services = Services(config, tmp_path / "logs")
    try:
        for name in ("record", "infer", "panel"):
            services.start(name, name)
        services.start("camera", "camera", "--station", "line1")
        for name in ("record", "infer", "camera-line1"):
            wait_ready(run_dir, name, timeout=180)
        wait_for(lambda: _health(port)[0] == 200, 60, "a healthy appliance")
        for name, service in (("camera", "camera-line1"), ("infer", "infer")):
            proc = services.procs[name]
            proc.send_signal(signal.SIGSTOP)
            frozen = time.monotonic()
            _code, body = wait_for(lambda: (h := _health(port))[0] == 503 and h, 10,
                                  f"/healthz to notice the frozen {name}")  # type: ignore[misc]
            took = time.monotonic() - frozen
            problems = body["problems"]  # type: ignore[index]
            assert {"service": service, "problem": "stalled"} in [
                {k: p[k] for k in ("service", "problem")} for p in problems], problems
            print(f"{name} frozen: unhealthy after {took:.1f} s")
            proc.send_signal(signal.SIGCONT)
            wait_for(lambda: _health(port)[0] == 200, 30, f"health back after {name} resumed")
    finally:
        for proc in services.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
        services.stop()
