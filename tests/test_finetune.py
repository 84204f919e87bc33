"""`nameplate finetune`: labelled photos in the panel's format, bad files named and skipped,
the plant lines learnt, and the guard that refuses a reader worse on the synthetic dev set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.reader.ppocr.pipeline import PPOCRReader
from appliance.schema import load_schema
from appliance.synth.engine import render_sample, sample_seed
from tests.plates import SCHEMA_FILE, shipped
from training.evaluate import scoreable
from training.photos import FinetuneError
from training.ppocr.plant import finetune

SCHEMA = load_schema(SCHEMA_FILE)
pytestmark = shipped


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 'plant photos' (held-out fonts) with their corrections, and four bad files."""
    folder = tmp_path_factory.mktemp("labelled")
    index = 0
    while len(list(folder.glob("*.jpg"))) < 6:
        sample = render_sample(sample_seed(77, "heldout", index), schema=SCHEMA,
                               split="heldout")
        index += 1
        fields = {name: truth["value"] for name, truth in sample.labels["fields"].items()
                  if name in ("model", "serial", "voltage") and scoreable(truth)}
        if len(fields) < 2:
            continue
        name = f"photo-{index:03d}"
        (folder / f"{name}.jpg").write_bytes(sample.jpeg)
        (folder / f"{name}.json").write_text(json.dumps({"version": 1, "fields": fields,
                                                         "operator": "test"}))
    (folder / "broken.json").write_text("{ not json")
    (folder / "orphan.json").write_text(json.dumps({"fields": {"serial": "X1"}}))
    (folder / "alien.json").write_text(json.dumps({"fields": {"colour": "red"}}))
    (folder / "corrupt.json").write_text(json.dumps({"fields": {"serial": "48213907KQ"}}))
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a JPEG")
    return folder


def test_cli_reports_a_folder_without_labelled_photos(tmp_path: Path) -> None:
    (tmp_path / "notes.json").write_text(json.dumps({"version": 2, "fields": {}}))
    result = subprocess.run([sys.executable, "-m", "appliance.cli", "finetune", str(tmp_path),
                             "--out", str(tmp_path / "new")], capture_output=True, text=True)
    assert result.returncode == 1
    assert "no usable labelled photos" in result.stderr
    assert "notes.json: version" in result.stderr
    assert not (tmp_path / "new").exists()


def test_finetune_learns_the_plant_lines_names_bad_files_and_its_guard_refuses(
        photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "plant-ppocr"
    report = finetune(photos, out, schema_file=SCHEMA_FILE, steps=12, lr=3e-4, batch=12,
                      rehearsal_frames=2, dev_frames=3, tolerance=1.0, workers=1)
    problems = "\n".join(report["problems"])
    for bad in ("broken.json", "orphan.json", "alien.json: fields not in schema",
                "corrupt.jpg: not a decodable image"):
        assert bad in problems
    assert report["photos"] == 7 and report["check_photos"] == 1   # 6 good + corrupt.jpg
    assert report["plant_lines"] >= 8
    assert report["plant_line_loss_after"] < report["plant_line_loss_before"]
    assert report["accepted"] is True
    assert json.loads((out / "finetune.json").read_text())["after"] == report["after"]
    PPOCRReader(schema=SCHEMA, device="cpu", model_dir=out)  # loads as a reader
    with pytest.raises(FinetuneError, match="already exists"):
        finetune(photos, out, schema_file=SCHEMA_FILE, steps=1)
    ruined = tmp_path / "ruined"
    refused = finetune(photos, ruined, schema_file=SCHEMA_FILE, steps=6, lr=0.2, batch=8,
                       rehearsal_frames=0, dev_frames=3, tolerance=0.0, workers=1)
    assert refused["accepted"] is False and "nothing written" in refused["refused"]
    assert refused["after"]["dev_field_exact"] < refused["before"]["dev_field_exact"]
    assert not ruined.exists() and not (tmp_path / ".ruined.incomplete").exists()


def test_fine_tuning_curves_are_drawn_from_the_runs_logs(tmp_path: Path) -> None:
    """Each run's logged loss and L2-SP distance become one line per panel, the last point
    labelled; the picture is a real PNG of two panels side by side."""
    from PIL import Image

    from training.ppocr.curves import draw_curves, run_curves

    logs = []
    for name, drift in (("run-a", 0.05), ("run-b", 0.16)):
        log = [{"step": s, "seconds": 30.0 * s, "rec_loss": 0.05, "rec_l2sp": drift * s / 4}
               for s in range(1, 5)]
        path = tmp_path / f"{name}-finetune.json"
        path.write_text(json.dumps({"log": log}))
        logs.append(path)
    curves = run_curves({"run-b": json.loads(logs[1].read_text())["log"]}, "rec_l2sp")
    assert [x for x, _, _ in curves["run-b"]] == [0.5, 1.0, 1.5, 2.0]
    assert curves["run-b"][-1][2] == "0.16"
    out = draw_curves(logs, tmp_path / "curves.png")
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.width > picture.height  # side by side
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "curves.png", "run-a-finetune.json", "run-b-finetune.json"]
