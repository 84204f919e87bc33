"""`nameplate finetune`: labelled photos in the panel's format, bad files named and skipped,
the plant lines learnt, and the guard that refuses a reader worse on the synthetic dev set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.reader.neural.evaluate import scoreable
from appliance.reader.neural.finetune import FinetuneError, finetune
from appliance.reader.neural.pipeline import NeuralReader
from appliance.schema import load_schema
from appliance.synth.engine import render_sample, sample_seed
from tests.plates import SCHEMA_FILE, shipped

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


def test_finetune_learns_the_plant_lines_and_names_bad_files(photos: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "plant-reader"
    report = finetune(photos, out, schema_file=SCHEMA_FILE, steps=16, lr=3e-4, batch=16,
                      rehearsal_frames=2, dev_frames=3, tolerance=1.0, workers=1)
    problems = "\n".join(report["problems"])
    for bad in ("broken.json", "orphan.json", "alien.json: fields not in schema",
                "corrupt.jpg: not a decodable image"):
        assert bad in problems
    assert report["photos"] == 7 and report["check_photos"] == 1   # 6 good + corrupt.jpg
    assert report["plant_lines"] >= 8
    assert report["plant_line_loss_after"] < report["plant_line_loss_before"]
    assert report["accepted"] is True
    saved = json.loads((out / "finetune.json").read_text())
    assert saved["after"] == report["after"]
    reader = NeuralReader(schema=SCHEMA, device="cpu", model_dir=out, decode="ctc")
    assert reader.vocab.itos == NeuralReader(schema=SCHEMA, device="cpu").vocab.itos
    with pytest.raises(FinetuneError, match="already exists"):
        finetune(photos, out, schema_file=SCHEMA_FILE, steps=1)


def test_the_guard_refuses_a_worse_reader_and_writes_nothing(photos: Path,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "ruined"
    report = finetune(photos, out, schema_file=SCHEMA_FILE, steps=6, lr=0.05, batch=8,
                      rehearsal_frames=0, dev_frames=3, tolerance=0.0, workers=1)
    assert report["accepted"] is False
    assert report["after"]["dev_field_exact"] < report["before"]["dev_field_exact"]
    assert "nothing written" in report["refused"]
    assert not out.exists() and not list(tmp_path.iterdir())


def test_cli_reports_a_folder_without_labelled_photos(tmp_path: Path) -> None:
    (tmp_path / "notes.json").write_text(json.dumps({"version": 2, "fields": {}}))
    result = subprocess.run([sys.executable, "-m", "appliance.cli", "finetune", str(tmp_path),
                             "--out", str(tmp_path / "new")], capture_output=True, text=True)
    assert result.returncode == 1
    assert "no usable labelled photos" in result.stderr
    assert "notes.json: version" in result.stderr
    assert not (tmp_path / "new").exists()


def test_ppocr_finetune_learns_the_plant_lines_and_its_guard_refuses(photos: Path,
                                                                     tmp_path: Path) -> None:
    from appliance.reader.ppocr.pipeline import PPOCRReader
    from training.ppocr.plant import finetune as ppocr_finetune

    out = tmp_path / "plant-ppocr"
    report = ppocr_finetune(photos, out, schema_file=SCHEMA_FILE, steps=12, lr=3e-4,
                            batch=12, rehearsal_frames=2, dev_frames=3, tolerance=1.0,
                            workers=1)
    assert "corrupt.jpg: not a decodable image" in "\n".join(report["problems"])
    assert report["plant_lines"] >= 8
    assert report["plant_line_loss_after"] < report["plant_line_loss_before"]
    assert report["accepted"] is True
    PPOCRReader(schema=SCHEMA, device="cpu", model_dir=out)  # loads as a reader
    ruined = tmp_path / "ruined"
    refused = ppocr_finetune(photos, ruined, schema_file=SCHEMA_FILE, steps=6, lr=0.2,
                             batch=8, rehearsal_frames=0, dev_frames=3, tolerance=0.0,
                             workers=1)
    assert refused["accepted"] is False and "nothing written" in refused["refused"]
    assert not ruined.exists()
