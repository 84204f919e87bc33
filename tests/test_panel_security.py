"""Panel accounts over real HTTP: default-deny, roles, CSRF, machine tokens, the login throttle,
the audit trail, the review queue and corrections in the fine-tuning format."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from appliance.bench.history_data import fill_history
from tests.conftest import REPO, Services, free_port, wait_for, write_config
from training.photos import PhotoLabel

pytestmark = pytest.mark.slow
PASSWORDS = {"vera": "viewer-pass-1234", "otto": "operator-pass-1234",
             "sue": "supervisor-pass-1234"}


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("secure")
    run_dir = Path(str(tmp_path_factory.mktemp("r")))
    port = free_port()
    config = write_config(tmp, run_dir=run_dir, port=port)
    db = tmp / "data" / "appliance.db"
    rows = fill_history(db, 200, seed=3)
    frame = tmp / "data" / "images" / "frame.jpg"
    frame.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(frame), np.full((96, 128, 3), 200, np.uint8))
    mismatches = [r["id"] for r in rows if r["verdict"] == "MISMATCH"]
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE inspections SET image_path = ? WHERE id = ?",
                     [str(frame), mismatches[0]])
        conn.execute("UPDATE readings SET box = '[1, 2, 30, 12]' WHERE inspection_id = ? "
                     "AND field = 'serial'", [mismatches[0]])
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMEPLATE_")}

    def nameplate(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "appliance.cli", "--config", str(config),
                               *args], input=stdin, capture_output=True, text=True, env=env,
                              cwd=REPO, timeout=120)

    for name, role in (("vera", "viewer"), ("otto", "operator"), ("sue", "supervisor")):
        out = nameplate("user", "add", name, "--role", role, "--password-stdin",
                        stdin=PASSWORDS[name] + "\n")
        assert out.returncode == 0, out.stderr
    token = nameplate("user", "token", "line-plc", "--role", "operator").stdout.strip()
    services = Services(config, tmp / "logs")
    services.start("panel", "panel")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _up(base), 60, "the panel")
    yield {"base": base, "db": db, "mismatches": mismatches, "token": token,
           "services": services, "tmp": tmp, "nameplate": nameplate}
    services.stop()


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def _login(base: str, name: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=10)
    response = client.post("/login", json={"username": name, "password": PASSWORDS[name]})
    assert response.status_code == 204, response.text
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    return client, response.headers["x-csrf-token"]


def _state_changing(panel: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    first = panel["mismatches"][0]
    return [(f"/api/v1/inspections/{first}/reshoot", {}),
            ("/api/v1/stations/line1/trigger", {}),
            (f"/api/v1/inspections/{first}/actions", {"action": "mark_reviewed"})]


def test_default_deny_without_session_or_token(panel: dict[str, Any]) -> None:
    base = panel["base"]
    assert httpx.get(f"{base}/api/v1/inspections").status_code == 401
    assert httpx.get(f"{base}/api/v1/queue").status_code == 401
    assert httpx.get(f"{base}/metrics").status_code == 401
    page = httpx.get(f"{base}/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert httpx.get(f"{base}/login").status_code == 200
    assert httpx.get(f"{base}/healthz").status_code in (200, 503)  # open for monitoring
    for path, body in _state_changing(panel):
        assert httpx.post(f"{base}{path}", json=body).status_code == 401, path


def test_csrf_and_roles(panel: dict[str, Any]) -> None:
    base, first = panel["base"], panel["mismatches"][0]
    otto, csrf = _login(base, "otto")
    assert otto.get("/api/v1/me").json() == {"name": "otto", "role": "operator",
                                             "csrf_token": csrf}
    for path, body in _state_changing(panel):  # a session without its CSRF token: refused
        assert otto.post(path, json=body).status_code == 403, path
        assert otto.post(path, json=body,
                         headers={"X-CSRF-Token": "forged"}).status_code == 403, path
    accept = {"action": "accept", "reason": "plate checked by hand"}
    refused = otto.post(f"/api/v1/inspections/{first}/actions", json=accept,
                        headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403 and "supervisor" in refused.text
    vera, vera_csrf = _login(base, "vera")
    assert vera.get("/api/v1/queue").status_code == 200
    for path, body in _state_changing(panel):  # a viewer may look, never act
        refused = vera.post(path, json=body, headers={"X-CSRF-Token": vera_csrf})
        assert refused.status_code == 403 and "operator" in refused.text, path
    sue, sue_csrf = _login(base, "sue")
    assert sue.post(f"/api/v1/inspections/{first}/actions", json={"action": "accept"},
                    headers={"X-CSRF-Token": sue_csrf}).status_code == 422  # needs a reason
    before = {row["id"] for row in sue.get("/api/v1/queue").json()["queue"]}
    done = sue.post(f"/api/v1/inspections/{first}/actions", json=accept,
                    headers={"X-CSRF-Token": sue_csrf})
    assert done.status_code == 200, done.text
    after = {row["id"] for row in sue.get("/api/v1/queue").json()["queue"]}
    assert first in before and after == before - {first}
    trail = sue.get(f"/api/v1/inspections/{first}/audit").json()["audit"]
    assert [(t["user"], t["action"], t["reason"]) for t in trail] == [
        ("sue", "accept", "plate checked by hand")]


def test_machine_token_and_correction_files(panel: dict[str, Any]) -> None:
    base, first = panel["base"], panel["mismatches"][0]
    auth = {"Authorization": f"Bearer {panel['token']}"}
    assert httpx.get(f"{base}/api/v1/inspections?limit=1", headers=auth).status_code == 200
    fix = {"action": "correct", "fields": {"serial": "48213907KQ"}}
    done = httpx.post(f"{base}/api/v1/inspections/{first}/actions", json=fix, headers=auth)
    assert done.status_code == 200, done.text  # a token needs no CSRF (no cookie)
    picture, label = (Path(p) for p in done.json()["files"])
    assert picture.is_file() and picture.parent == panel["tmp"] / "data" / "corrections"
    parsed = PhotoLabel.model_validate_json(label.read_text())  # what `finetune` reads
    assert parsed.fields == {"serial": "48213907KQ"}
    assert [list(box) for box in parsed.boxes.values()] == [[1, 2, 30, 12]]
    bad = httpx.get(f"{base}/api/v1/inspections", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_passwords_are_never_kept_or_logged_in_clear(panel: dict[str, Any]) -> None:
    blob = b"".join(p.read_bytes() for p in panel["db"].parent.glob("appliance.db*"))
    log = panel["services"].log("panel")
    for password in PASSWORDS.values():
        assert password.encode() not in blob
        assert password not in log
    users = panel["nameplate"]("user", "list").stdout
    assert "argon2" not in users and '"role": "operator"' in users


def test_twenty_wrong_passwords_are_slowed_down(panel: dict[str, Any]) -> None:
    base = panel["base"]
    codes = [httpx.post(f"{base}/login", json={"username": "vera", "password": f"wrong{i}"},
                        timeout=10).status_code for i in range(20)]
    assert codes[:5] == [401] * 5
    assert codes[5:].count(429) >= 14            # throttled after five
    right = httpx.post(f"{base}/login", json={"username": "vera",
                                              "password": PASSWORDS["vera"]})
    assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1
