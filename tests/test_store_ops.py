"""Store maintenance and the command line's answers to bad input, on real files."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from appliance.store import Store
from appliance.store.maintenance import backup_database, check_store, prune_images
from tests.conftest import REPO, write_config


@dataclass
class _Retention:
    keep_days: float = 30
    keep_days_flagged: float = 365
    max_images_gb: float = 50


def _store_with_images(data: Path, ages_and_verdicts: list[tuple[int, str]]) -> Store:
    store = Store(data / "appliance.db")
    for i, (days, verdict) in enumerate(ages_and_verdicts):
        image = data / "images" / f"I-{i}-0.jpg"
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(b"\xff\xd8" + b"x" * 1000)
        store.record_inspection({"id": f"I-{i}", "attempt": 0, "verdict": verdict,
                                 "station": "line1", "image_path": str(image)}, [])
        stored = (datetime.now(UTC) - timedelta(days=days)).isoformat()
        with store.db.conn:
            store.db.conn.execute("UPDATE attempts SET stored_at = ? WHERE inspection_id = ?",
                                  [stored, f"I-{i}"])
    return store


def test_prune_keeps_flagged_images_longer_and_rows_always(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path, [(40, "PASS"), (40, "MISMATCH"), (400, "REVIEW"),
                                          (1, "PASS")])
    assert prune_images(tmp_path, retention=_Retention(), dry_run=True)["pruned"] == 2
    assert all((tmp_path / "images" / f"I-{i}-0.jpg").exists() for i in range(4))
    report = prune_images(tmp_path, retention=_Retention())
    assert report["pruned"] == 2
    left = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert left == ["I-1-0.jpg", "I-3-0.jpg"]          # recent PASS, 40-day MISMATCH stay
    assert store.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 4
    row = store.inspection("I-0")
    assert row is not None and row["image_path"] is None  # the row says it was pruned
    # over the size cap: the oldest unflagged image goes first, flagged ones stay
    capped = prune_images(tmp_path, retention=_Retention(max_images_gb=1500 / 1e9))
    assert capped["pruned"] == 1 and not (tmp_path / "images" / "I-3-0.jpg").exists()


def test_backup_and_check(tmp_path: Path) -> None:
    _store_with_images(tmp_path / "data", [(1, "PASS"), (2, "MISMATCH")])
    copy = backup_database(tmp_path / "data" / "appliance.db", tmp_path / "b" / "copy.db")
    assert copy == {"target": str(tmp_path / "b" / "copy.db"), "attempts": 2,
                    "integrity": "ok"}
    report = check_store(tmp_path / "data")
    assert report["ok"] and report["missing_images"] == 0
    (tmp_path / "data" / "images" / "I-0-0.jpg").unlink()
    assert check_store(tmp_path / "data")["missing_images"] == 1


def _nameplate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMEPLATE_")}
    return subprocess.run([sys.executable, "-m", "appliance.cli", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=300)


def test_status_and_store_commands(tmp_path: Path, run_dir: Path) -> None:
    config = write_config(tmp_path, run_dir=run_dir)
    out = _nameplate("--config", str(config), "status")
    assert out.returncode == 1 and "UNHEALTHY" in out.stdout
    assert "PROBLEM infer: missing: no status published" in out.stdout
    _store_with_images(tmp_path / "data", [(1, "PASS")])
    out = _nameplate("--config", str(config), "store", "check")
    assert out.returncode == 0 and json.loads(out.stdout)["ok"]
    out = _nameplate("--config", str(config), "store", "backup", str(tmp_path / "bk.db"))
    assert out.returncode == 0 and json.loads(out.stdout)["integrity"] == "ok"


def test_read_refuses_a_pixel_bomb_quickly_and_small(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((1, 1), np.uint8)).resize((20000, 20000)).save(buffer, "PNG",
                                                                            optimize=True)
    bomb.write_bytes(buffer.getvalue())
    # a fresh parent whose only child is the command, so its peak memory is the command's
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], "
             "capture_output=True, text=True); sys.stderr.write(r.stderr); "
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMEPLATE_")}
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "appliance.cli",
                          "read", "--backend", "tesseract", str(bomb)], capture_output=True,
                         text=True, cwd=REPO, env=env, timeout=300)
    code, peak_kb = (int(v) for v in out.stdout.split())
    assert code == 1
    assert "20000×20000 pixels is over the limit of 50 megapixels" in out.stderr, out.stderr
    print(f"pixel bomb refused by nameplate read, peak {peak_kb / 1024:.0f} MB")
    assert peak_kb / 1024 < 500  # the header is read, the pixels never are
