"""The trained reader on CPU: tiny-model training, save/load, the shipped weights on clear
plates, verify mode, schema label words, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from transformers import VisionEncoderDecoderModel

from appliance.reader import load_reader
from appliance.reader.neural.detector import TextDetector
from appliance.reader.neural.pipeline import ModelNotFound, NeuralReader
from appliance.reader.neural.train import train
from appliance.schema import load_schema
from appliance.synth import render_demo_plate
from tests.plates import (
    REPO,
    SCHEMA_FILE,
    demo_records,
    plate_and_bad_file,
    plate_values,
    shipped,
)

SCHEMA = load_schema(SCHEMA_FILE)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    summary = train(out, minutes=5, device="cpu", workers=0, frames=2, lines=24, seed=3,
                    schema_file=SCHEMA_FILE, size="tiny", resume=False, max_steps=40,
                    log_every=1)
    return out, summary


def test_training_a_tiny_model_lowers_its_loss(tiny_model: tuple[Path, dict[str, object]],
                                               ) -> None:
    out, summary = tiny_model
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert summary["steps"] == 40 and len(log) == 40
    first = np.mean([r["loss"] for r in log[:5]])
    last = np.mean([r["loss"] for r in log[-5:]])
    assert last < 0.8 * first, (first, last)
    assert (out / "checkpoint.pt").is_file()


def test_save_and_load_round_trip(tiny_model: tuple[Path, dict[str, object]]) -> None:
    out, _ = tiny_model
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    loaded = VisionEncoderDecoderModel.from_pretrained(out / "recognizer")
    for name, tensor in loaded.state_dict().items():
        want = state["recognizer"][name].half().float()
        assert torch.allclose(tensor.float(), want, atol=1e-3), name
    detector = TextDetector.from_pretrained(out / "detector")
    assert detector.config.input_width == 160
    reader = NeuralReader(schema=SCHEMA, device="cpu", model_dir=out, decode="auto")
    plate = render_demo_plate(plate_values(demo_records()[0]), seed=1).image
    reading = reader.read([plate])[0]
    assert set(reading.fields) == set(SCHEMA.fields)  # an untrained model reads little,
    assert isinstance(reading.extra["quality"], list)  # but the whole path runs on CPU


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="no trained reader here"):
        NeuralReader(schema=SCHEMA, model_dir=tmp_path)


@pytest.fixture(scope="module")
def reader() -> NeuralReader:
    return NeuralReader(schema=SCHEMA, device="cpu", decode="ctc")


def squash(text: str | None) -> str | None:
    return None if text is None else "".join(text.split()).casefold()


@shipped
def test_shipped_reader_reads_clear_demo_plates(reader: NeuralReader) -> None:
    for row in demo_records()[:3]:
        values = plate_values(row)
        plate = render_demo_plate(values, seed=4)
        reading = reader.read([plate.image])[0]
        for name in ("model", "serial", "voltage"):
            got = reading.fields[name]
            assert squash(got.value) == squash(values[name]), (name, got.value)
            assert 0 < got.confidence <= 1
            x0, y0, x1, y1 = got.box  # type: ignore[misc]
            bx0, by0, bx1, by1 = plate.boxes[name]
            assert x0 < bx1 and bx0 < x1 and y0 < by1 and by0 < y1, name


@shipped
def test_quality_gate_names_what_the_camera_should_change(reader: NeuralReader) -> None:
    image = render_demo_plate(plate_values(demo_records()[0]), seed=1).image

    def reasons(frame: np.ndarray) -> str:
        return " | ".join(str(i) for i in reader.read([frame])[0].extra["quality"])  # type: ignore[attr-defined]

    assert reasons(image) == ""
    assert "blurred" in reasons(cv2.GaussianBlur(image, (0, 0), 6))
    glare = image.copy()
    cv2.ellipse(glare, (640, 480), (260, 160), 0, 0, 360, (255, 255, 255), -1)
    assert "glare on" in reasons(glare)
    small = np.full_like(image, 80)
    small[300:492, 400:656] = cv2.resize(image, (256, 192), interpolation=cv2.INTER_AREA)
    assert "characters too small" in reasons(small)
    cut = np.full_like(image, 80)
    cut[:, :900] = image[:, 380:]
    assert "plate cut off" in reasons(cut)


@shipped
def test_verify_accepts_the_truth_and_rejects_a_one_character_change(
        reader: NeuralReader) -> None:
    values = plate_values(demo_records()[0])
    image = render_demo_plate(values, seed=4).image
    true = reader.verify(image, {"serial": values["serial"], "model": values["model"]})
    assert true["serial"]["status"] == "verified"
    assert true["model"]["status"] == "verified"
    changed = values["serial"][:-1] + ("A" if values["serial"][-1] != "A" else "B")
    wrong = reader.verify(image, {"serial": changed})
    assert wrong["serial"]["status"] != "verified"
    assert wrong["serial"]["read"] == values["serial"]


@shipped
def test_schema_file_with_new_label_words_is_honoured(reader: NeuralReader,
                                                      tmp_path: Path) -> None:
    values = plate_values(demo_records()[2])
    image = render_demo_plate(values, seed=6, labels={"serial": "Ident", "model": "Kind"}).image
    default = reader.read([image])[0]
    assert default.fields["serial"].value is None  # "Ident" is no serial label by default
    text = SCHEMA_FILE.read_text().replace('labels = ["Serial No.",', 'labels = ["Ident",')
    text = text.replace('labels = ["Model",', 'labels = ["Kind",')
    custom = tmp_path / "custom.toml"
    custom.write_text(text)
    other = NeuralReader(schema=load_schema(custom), device="cpu", decode="ctc")
    reading = other.read([image])[0]
    assert squash(reading.fields["serial"].value) == squash(values["serial"])


@shipped
def test_an_unseen_short_label_word_is_read(tmp_path: Path) -> None:
    # The recognizer still reads "Kind" as "Knd" (known defect, docs/reader-model.md); the
    # field is found because a label of four letters may have one character misread.
    values = plate_values(demo_records()[2])
    image = render_demo_plate(values, seed=6, labels={"serial": "Ident", "model": "Kind"}).image
    text = SCHEMA_FILE.read_text().replace('labels = ["Model",', 'labels = ["Kind",')
    custom = tmp_path / "custom.toml"
    custom.write_text(text)
    reading = NeuralReader(schema=load_schema(custom), device="cpu", decode="ctc").read([image])[0]
    assert squash(reading.fields["model"].value) == squash(values["model"])


@shipped
def test_cli_verify_and_bad_images(tmp_path: Path) -> None:
    values = plate_values(demo_records()[0])
    good, empty = plate_and_bad_file(tmp_path, values, seed=4, bad_name="empty.jpg",
                                     bad_bytes=b"")
    out = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "read", str(good), str(empty), "--json",
         "--backend", "neural", "--device", "cpu", "--expect", f"serial={values['serial']}"],
        capture_output=True, text=True, cwd=REPO, timeout=180)
    assert out.returncode == 1
    first, second = (json.loads(line) for line in out.stdout.splitlines())
    assert first["verify"]["serial"]["status"] == "verified"
    assert first["backend"] == "neural" and first["device"] == "cpu"
    assert "empty image data" in second["error"]
    bad = subprocess.run([sys.executable, "-m", "appliance.cli", "read", str(good),
                          "--expect", "colour=red"], capture_output=True, text=True, cwd=REPO,
                         timeout=60)
    assert bad.returncode != 0 and "use FIELD=VALUE" in bad.stderr


def test_neural_backend_is_registered() -> None:
    with pytest.raises(ModelNotFound):
        load_reader("neural", schema=SCHEMA, device="cpu", model_dir=Path("/nonexistent"))
