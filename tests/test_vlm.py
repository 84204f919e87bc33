"""The generative reader on tiny random (and tiny taught) models of two families transformers
ships: loading from a folder, the token cap, parsing, verify by likelihood, the cascade, and
the inference service end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from appliance.reader import load_reader
from appliance.reader.vlm.backend import VLMReader
from appliance.reader.vlm.cascade import CascadeReader, text_crop
from appliance.reader.vlm.prompts import parse_answer, read_prompt
from appliance.reader.vlm.score import VerifyStatus, judge
from appliance.schema import load_schema
from appliance.synth import render_demo_plate
from tests.conftest import REPO
from tests.plates import SCHEMA_FILE, demo_records, frame_for, plate_values
from training.vlm.tiny import save_tiny_model, teach_answer, tiny_model

SCHEMA = load_schema(SCHEMA_FILE)
IMAGE = (np.random.default_rng(0).random((240, 320, 3)) * 255).astype(np.uint8)


def test_parse_keeps_only_values_in_format() -> None:
    fields = ["serial", "voltage", "model"]
    text = 'Sure: {"serial": "48213907KQ", "voltage": "four hundred", "model": null} done'
    parsed = parse_answer(text, SCHEMA, fields)
    assert parsed.complete
    assert parsed.values == {"serial": "48213907KQ", "voltage": None, "model": None}
    assert text[slice(*parsed.spans["serial"])] == "48213907KQ"
    assert not parse_answer('{"serial": "4821', SCHEMA, fields).complete  # cut by the cap
    braces = parse_answer('{"model": "A{B}", "serial": "X-12345"}', SCHEMA, ["serial"])
    assert braces.values == {"serial": "X-12345"}


def test_judge_verified_differs_unreadable() -> None:
    targets = torch.tensor([3, 1])
    sure = torch.full((2, 5), -5.0)
    sure[0, 3] = sure[1, 1] = 5.0
    assert judge(sure, targets).status is VerifyStatus.VERIFIED
    other = sure.clone()
    other[1, 4] = 12.0                       # the model reads another character there
    assert judge(other, targets).status is VerifyStatus.DIFFERS
    assert judge(other, targets).worst_position == 1
    flat = torch.zeros((2, 5))               # no opinion
    assert judge(flat, targets).status is VerifyStatus.UNREADABLE


@pytest.mark.parametrize("family", ["glm4v", "qwen2vl"])
def test_model_folder_loads_and_the_token_cap_means_not_read(family: str,
                                                             tmp_path: Path) -> None:
    folder = save_tiny_model(family, tmp_path / family)
    reader = load_reader("vlm", schema=SCHEMA, device="cpu", model_dir=folder,
                         max_new_tokens=12, cache_size=4)
    reading = reader.read([IMAGE])[0]
    assert set(reading.fields) == set(SCHEMA.fields)      # the same contract as every reader
    assert reading.extra["tokens_out"] == 12 and reading.extra["capped"]
    assert all(f.value is None and f.source == "vlm" for f in reading.fields.values())
    assert reading.error == "vlm: no complete JSON within max_new_tokens=12"
    assert reader.read([IMAGE])[0] is reading           # cached by image + prompt + model
    scores = reader.verify(IMAGE, {"serial": "48213907KQ"})  # type: ignore[attr-defined]
    assert scores["serial"]["status"] in {"verified", "differs", "unreadable"}


def test_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no config\.json"):
        load_reader("vlm", schema=SCHEMA, device="cpu", model_dir=tmp_path)
    with pytest.raises(ValueError, match=r"needs reader\.model_dir"):
        load_reader("vlm", schema=SCHEMA, device="cpu")


@pytest.fixture(scope="module")
def taught() -> VLMReader:
    """A tiny Qwen2-VL taught to answer serial and voltage of IMAGE."""
    model, tokenizer, processor = tiny_model("qwen2vl")
    loss = teach_answer(model, tokenizer, processor, IMAGE,
                        read_prompt(SCHEMA, ["serial", "voltage"]),
                        '{"serial": "48213907KQ", "voltage": "400 V"}', steps=150)
    assert loss < 0.1
    return VLMReader(schema=SCHEMA, loaded=(model, tokenizer, processor), max_new_tokens=64)


def test_taught_model_reads_its_fields(taught: VLMReader) -> None:
    reading = taught.read([IMAGE], fields=[["serial", "voltage"]])[0]
    assert reading.error is None and not reading.extra["capped"]
    assert reading.fields["serial"].value == "48213907KQ"
    assert reading.fields["voltage"].value == "400 V"
    assert reading.fields["serial"].confidence > 0.8
    assert reading.fields["model"].value is None         # not asked


def test_verify_rejects_every_single_character_change(taught: VLMReader) -> None:
    good = taught.verify(IMAGE, {"serial": "48213907KQ", "voltage": "400 V"})
    assert {f: s["status"] for f, s in good.items()} == {"serial": "verified",
                                                         "voltage": "verified"}
    serial = "48213907KQ"
    changes = [serial[:i] + c + serial[i + 1:] for i in range(len(serial))
               for c in ("8" if serial[i] != "8" else "3",)]
    expected = [{"serial": s, "voltage": "400 V"} for s in changes]
    scored = taught.verify_batch([IMAGE] * len(expected), expected)
    statuses = [s["serial"]["status"] for s in scored]
    assert "verified" not in statuses, statuses
    assert all(s["voltage"]["status"] == "verified" for s in scored)  # batching keeps rows apart


def test_cascade_asks_the_vlm_only_about_unsure_fields() -> None:
    row = demo_records()[0]
    image = render_demo_plate(plate_values(row), seed=2).image
    primary = load_reader("tesseract", schema=SCHEMA, device="cpu")
    model, tokenizer, processor = tiny_model("qwen2vl")
    vlm = VLMReader(schema=SCHEMA, loaded=(model, tokenizer, processor), max_new_tokens=96)
    cascade = CascadeReader(schema=SCHEMA, primary_reader=primary, vlm_reader=vlm,
                            min_confidence=0.9)
    first = primary.read([image])[0]
    unsure = cascade.unsure(first)
    assert unsure and len(unsure) < len(SCHEMA.fields) + 1
    answer = {name: row[name] for name in unsure if row.get(name)}
    crop = text_crop(image, first.extra.get("boxes"))  # type: ignore[arg-type]
    teach_answer(model, tokenizer, processor, crop,
                 read_prompt(SCHEMA, unsure, list(first.extra.get("lines") or [])),  # type: ignore[call-overload]
                 json.dumps(answer), steps=200)
    reading = cascade.read([image])[0]
    assert reading.extra["vlm_fields"] == unsure
    for name in SCHEMA.fields:
        field = reading.fields[name]
        if name in answer:
            assert (field.value, field.source) == (row[name], "vlm"), name
        else:
            assert field.source == "tesseract", name


@pytest.mark.slow
def test_inference_service_reads_with_a_vlm_folder(tmp_path: Path, run_dir: Path) -> None:
    from appliance.store import Store
    from appliance.transport import ResultReceiver, Sender
    from erp_bridge import load_erp_csv
    from tests.conftest import Services, wait_ready, write_config
    from tests.plates import ERP

    folder = save_tiny_model("glm4v", tmp_path / "glm")
    config = write_config(tmp_path, run_dir=run_dir, extra=(
        f'[reader]\nbackend = "vlm"\ndevice = "cpu"\nmodel_dir = "{folder}"\n'
        "max_new_tokens = 8\nverify_known = true\n"))
    store = Store(tmp_path / "data" / "appliance.db")  # the ERP records the recorder loads
    records = load_erp_csv(ERP, field_names=SCHEMA.field_names())
    store.replace_expected(((r.unit_id, r.order_id, r.fields) for r in records), source="test")
    store.close()
    results = ResultReceiver(f"ipc://{run_dir}/results.sock")
    services = Services(config, tmp_path / "logs")
    try:
        services.start("infer", "infer")
        status = wait_ready(run_dir, "infer", timeout=120)
        assert status["backend"] == "vlm"
        frames = Sender(f"ipc://{run_dir}/frames.sock")
        header, payload = frame_for("U1001", plate_values(demo_records()[0]))
        assert frames.send(header, payload, timeout_ms=5000)
        got = results.receive(timeout_ms=60_000)
        assert got is not None, services.log("infer")
        result = got[0]
        assert result.backend == "vlm" and set(result.fields) == set(SCHEMA.fields)
        assert result.error == "vlm: no complete JSON within max_new_tokens=8"
        assert all(f.source == "vlm" and f.value is None for f in result.fields.values())
        # the unit's ERP record is known: its values were verified by likelihood too
        assert result.verify is not None
        assert set(result.verify) == set(records[0].fields)
        assert set(result.verify.values()) <= {"verified", "differs", "unreadable"}
        frames.close()
    finally:
        services.stop()
        results.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMEPLATE_")}
    image = tmp_path / "plate.png"
    from PIL import Image

    Image.fromarray(render_demo_plate(plate_values(demo_records()[0]), seed=1).image).save(image)
    out = subprocess.run([sys.executable, "-m", "appliance.cli", "--config", str(config), "read",
                          "--backend", "vlm", "--expect", "serial=48213907KQ", str(image)],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    verdict = json.loads(out.stdout)
    assert verdict["backend"] == "vlm"
    assert verdict["verify"]["serial"]["status"] in {"verified", "differs", "unreadable"}
