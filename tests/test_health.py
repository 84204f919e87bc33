"""Health as a pure function of heartbeats, disk and settings: each problem it must name."""

from __future__ import annotations

import time
from pathlib import Path

from appliance.health import Problem, assess_health, check_service
from appliance.runtime import loading_heartbeat, read_status, write_status
from appliance.settings import load_settings
from tests.conftest import write_config


def _settings(tmp_path: Path, run_dir: Path, extra: str = "") -> object:
    return load_settings(write_config(tmp_path, run_dir=run_dir, extra=extra))


def test_each_problem_is_named(tmp_path: Path, run_dir: Path) -> None:
    settings = _settings(tmp_path, run_dir)
    now = time.time()

    def problems(name: str, **status: object) -> list[Problem]:
        full = {"state": "ready", "updated": now, **status}
        return [f.problem for f in check_service(name, full, settings, now)]  # type: ignore[arg-type]

    assert problems("infer") == []
    assert problems("infer", updated=now - 6) == [Problem.STALLED]
    assert problems("infer", busy_for_s=9.0) == [Problem.HUNG]
    assert problems("infer", state="stopped") == [Problem.STOPPED]
    assert problems("camera-line1", oldest_pending_s=61) == [Problem.LAGGING]
    assert problems("camera-line1", source_state="disconnected") == [Problem.SOURCE_DOWN]
    assert problems("record", erp={"state": "refused", "error": "x"}) == [Problem.ERP_REFUSED]
    assert problems("record", spool=3) == [Problem.SPOOLING]
    assert [f.problem for f in check_service("record", None, settings, now)] == [  # type: ignore[arg-type]
        Problem.MISSING]


def test_assess_health_reads_the_heartbeats(tmp_path: Path, run_dir: Path) -> None:
    settings = _settings(tmp_path, run_dir, extra="[storage]\nmin_free_mb = 1e12\n")
    for name in ("infer", "record", "camera-line1"):
        write_status(run_dir, name, {"state": "ready"})
    report = assess_health(settings)  # type: ignore[arg-type]
    assert not report["healthy"]
    assert report["problems"] == [{"service": "disk", "problem": "disk_full", "detail":
                                   report["problems"][0]["detail"]}]
    assert "guard 1e+12 MB" in report["problems"][0]["detail"]


def test_a_sql_source_that_stopped_syncing_is_stale(tmp_path: Path, run_dir: Path) -> None:
    from appliance.health import check_erp_age

    settings = _settings(tmp_path, run_dir, extra=(
        '[health]\nerp_max_age_h = 1\n[erp]\nsource = "sql"\nsql_url = "sqlite://"\n'))
    now = time.time()
    fresh = {"erp": {"state": "ok", "loaded_at": now - 600}}
    old = {"erp": {"state": "ok", "loaded_at": now - 7200}}
    assert check_erp_age(settings, now, fresh) == []  # type: ignore[arg-type]
    found = check_erp_age(settings, now, old)  # type: ignore[arg-type]
    assert [f.problem for f in found] == [Problem.ERP_STALE]
    assert "2.0 h ago" in found[0].detail


def test_a_service_that_is_loading_keeps_a_fresh_heartbeat(tmp_path: Path, run_dir: Path) -> None:
    settings = load_settings(write_config(tmp_path, run_dir=run_dir)).resolved()
    with loading_heartbeat(run_dir, "infer", period_s=0.05):
        time.sleep(0.3)  # a reader compiling its networks, minutes in a real start
        status = read_status(run_dir, "infer")
        assert status is not None and status["state"] == "loading"
        assert status["loading_for_s"] > 0 and time.time() - status["updated"] < 1.0
        assert check_service("infer", status, settings, time.time()) == []  # not stalled
    last = read_status(run_dir, "infer")
    time.sleep(0.2)  # the beat stopped with the block
    assert read_status(run_dir, "infer") == last
