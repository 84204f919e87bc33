"""`nameplate up` with the embedded default (synthetic camera) and the panel in a real browser."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from appliance.runtime import read_status
from appliance.settings import load_settings
from tests.conftest import REPO, wait_for

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")


def get_json(url: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            data: dict[str, object] = json.loads(response.read())
            return data
    except OSError:
        return None


@pytest.fixture
def appliance_up(appliance_config: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The whole appliance under `nameplate up`, stopped with SIGTERM afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMEPLATE_")}
    env["PYTHONUNBUFFERED"] = "1"
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "--config", str(appliance_config), "up"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)
    settings = load_settings(appliance_config)
    yield proc, settings, tmp_path / "up.log"
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_up_shows_pass_and_mismatch_restarts_and_stops(appliance_up) -> None:  # type: ignore[no-untyped-def]
    proc, settings, log = appliance_up
    base = f"http://127.0.0.1:{settings.panel.port}"
    started = time.monotonic()

    def both_verdicts() -> bool:
        data = get_json(f"{base}/api/v1/inspections?limit=100")
        verdicts = {i["verdict"] for i in data["inspections"]} if data else set()  # type: ignore[index, attr-defined]
        return {"PASS", "MISMATCH"} <= verdicts

    wait_for(both_verdicts, 60, "PASS and MISMATCH in the panel API")
    assert time.monotonic() - started < 60
    data = get_json(f"{base}/api/v1/inspections?limit=3")
    assert data is not None and len(data["inspections"]) == 3  # type: ignore[arg-type]
    first = data["inspections"][0]  # type: ignore[index]
    assert set(first["fields"]) >= {"model", "serial", "voltage"}
    with urllib.request.urlopen(base + first["thumbnail_url"], timeout=5) as response:
        assert response.headers["content-type"] == "image/jpeg"
        assert response.read(3) == b"\xff\xd8\xff"

    # a service that dies is restarted by the supervisor
    run_dir = settings.run_dir
    old_pid = read_status(run_dir, "infer")["pid"]  # type: ignore[index]
    os.kill(int(old_pid), signal.SIGKILL)  # type: ignore[arg-type]
    wait_for(lambda: (s := read_status(run_dir, "infer")) and s["pid"] != old_pid
             and s["state"] == "ready", 60, "infer to be restarted")
    assert "infer exited with -9" in log.read_text()

    # a second `up` on the same data folder is refused (no second pipeline)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMEPLATE_")}
    second = subprocess.run([sys.executable, "-m", "appliance.cli", "--config",
                             str(settings.config_file), "up"], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=60)
    assert second.returncode == 1 and "already running for this data folder" in second.stderr

    # a frozen service (heartbeat stopped) is killed and restarted: 3 × stale_s
    camera_pid = int(read_status(run_dir, "camera-line1")["pid"])  # type: ignore[index, arg-type]
    os.kill(camera_pid, signal.SIGSTOP)
    wait_for(lambda: (s := read_status(run_dir, "camera-line1")) and s["pid"] != camera_pid
             and s["state"] == "ready", 60, "the frozen camera to be restarted")
    assert "camera-line1 stalled (no heartbeat for" in log.read_text()

    # SIGTERM stops everything cleanly
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert "all services stopped" in log.read_text()
    for name in ("infer", "record", "camera-line1"):
        pid = int(read_status(run_dir, name)["pid"])  # type: ignore[index, arg-type]
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed (make setup)")
def test_panel_in_a_real_browser(appliance_up, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    _, settings, _ = appliance_up
    base = f"http://127.0.0.1:{settings.panel.port}"
    wait_for(lambda: get_json(f"{base}/healthz"), 30, "the panel to answer")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        page.goto(base + "/")
        page.wait_for_selector("#inspections tr[data-verdict='PASS']", timeout=60_000)
        page.wait_for_selector("#inspections tr[data-verdict='MISMATCH']", timeout=60_000)
        # the open queue (shown first) holds the MISMATCH too, until a person acts
        page.wait_for_selector("#queue tr[data-verdict='MISMATCH']", timeout=30_000)
        page.wait_for_function(  # the table is rebuilt on every refresh: wait for a loaded image
            "() => [...document.querySelectorAll(\"tr[data-verdict='MISMATCH'] img.thumb\")]"
            ".some(img => img.complete && img.naturalWidth > 0)", timeout=30_000)
        mismatch = page.locator("#inspections tr[data-verdict='MISMATCH']").first
        assert "wrong plate" in mismatch.inner_text()
        assert mismatch.locator(".st-mismatch").count() >= 1
        widths = page.evaluate(
            "() => [...document.querySelectorAll(\"tr[data-verdict='MISMATCH'] img.thumb\")]"
            ".filter(img => img.complete).map(img => img.naturalWidth)")
        assert 320 in widths
        assert int(page.locator("#n-PASS").inner_text()) >= 1
        page.screenshot(path=str(tmp_path / "panel.png"), full_page=False)
        browser.close()
