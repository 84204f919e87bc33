"""The reader's networks through ``torch.compile`` (the GPU default) compute what the loaded
networks do: checked on a CPU, where the same frozen graph compiles with the same code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from appliance.infer.service import reader_options
from appliance.reader import load_reader
from appliance.reader.ppocr.networks import LocalNetworks
from appliance.reader.ppocr.pipeline import DEFAULT_MODEL
from appliance.schema import load_schema
from appliance.settings import Settings
from appliance.synth import render_demo_plate
from tests.plates import REPO, SCHEMA_FILE, demo_records, plate_values


def test_compiled_networks_compute_what_the_loaded_ones_do() -> None:
    plain = LocalNetworks.load(DEFAULT_MODEL, device="cpu")
    compiled = LocalNetworks.load(DEFAULT_MODEL, device="cpu", compiled=True)
    assert compiled.detector.net._frozen and plain.detector.net._frozen is None
    image = render_demo_plate(demo_records()[0], seed=3, size=(320, 256)).image
    frame = torch.from_numpy(image.copy()).permute(2, 0, 1)[None]
    expected = plain.detect(frame)
    assert np.abs(compiled.detect(frame) - expected).max() < 1e-4
    assert expected.max() > 0.5  # the crop holds text: the maps are not both empty
    generator = torch.Generator().manual_seed(0)
    for rows in (2, 5):  # the batch dimension is dynamic: one compile serves both
        lines = torch.randint(0, 255, (rows, 48, 160, 3), dtype=torch.uint8,
                              generator=generator)
        widths = [160, 96, 128, 160, 64][:rows]
        want = plain.recognise(lines, widths)
        got = compiled.recognise(lines, widths)
        assert got.shape == want.shape
        assert (got - want).abs().max() < 1e-3
        assert torch.equal(got.argmax(-1), want.argmax(-1))


BROKEN_COMPILER = """
import json
import torch
import torch._inductor.config as inductor_config
inductor_config.cpp.cxx = ("/nonexistent/c++",)   # this host's compiler, gone
from appliance.reader.ppocr.networks import LocalNetworks
from appliance.reader.ppocr.pipeline import DEFAULT_MODEL
compiled = LocalNetworks.load(DEFAULT_MODEL, device="cpu", compiled=True)
plain = LocalNetworks.load(DEFAULT_MODEL, device="cpu")
lines = torch.randint(0, 255, (3, 48, 160, 3), dtype=torch.uint8)
got = compiled.recognise(lines, [160, 96, 160])
want = plain.recognise(lines, [160, 96, 160])
print(json.dumps({"failure": compiled.compiled[1].failure,
                  "difference": float((got - want).abs().max())}))
"""


def test_networks_that_cannot_compile_run_uncompiled_and_say_why() -> None:
    done = subprocess.run([sys.executable, "-c", BROKEN_COMPILER], capture_output=True,
                          text=True, timeout=300, cwd=REPO, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "No working C++ compiler" in result["failure"]
    assert result["difference"] == 0.0          # read as the loaded networks read
    assert "torch.compile of the reader's networks failed" in done.stderr


def test_the_appliance_compiles_a_cpu_reader_at_load_and_reads_at_1280_px(
        tmp_path: Path) -> None:
    settings = Settings(reader={"device": "cpu", "compile_networks": True})
    options = reader_options(settings)
    assert options["compile_networks"] is True      # a CPU reader: compiled
    gpu_alone = Settings(reader={"device": "cuda", "compile_networks": True})
    assert reader_options(gpu_alone)["compile_networks"] is False  # in-process GPU: not
    schema = load_schema(SCHEMA_FILE)
    compiled = load_reader("ppocr", schema=schema, device="cpu", **options)
    assert compiled.settings.limit == 1280           # compiled: the detector's full side
    assert [f.failure for f in compiled.networks.compiled] == [None, None]
    plain = load_reader("ppocr", schema=schema, device="cpu", detector_limit=1280)
    values = plate_values(demo_records()[1])
    image = render_demo_plate(values, seed=5).image
    read, want = compiled.read([image])[0], plain.read([image])[0]
    assert {k: f.value for k, f in read.fields.items()} == \
        {k: f.value for k, f in want.fields.items()}
    assert read.fields["serial"].value == values["serial"]
