"""The reader's networks through ``torch.compile`` (the appliance's default on a CPU and for
networks served on a GPU) compute what the loaded networks do: checked on a CPU, where the
same frozen graph compiles with the same code. One compiled reader serves the module's
tests: compiling costs minutes on 2 cores."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch

from appliance.infer.service import reader_options
from appliance.reader import load_reader
from appliance.reader.ppocr.detect import detector_input
from appliance.reader.ppocr.networks import LocalNetworks
from appliance.reader.ppocr.pipeline import DEFAULT_MODEL
from appliance.schema import load_schema
from appliance.settings import Settings
from appliance.synth import render_demo_plate
from tests.plates import REPO, SCHEMA_FILE, demo_records, plate_values


@pytest.fixture(scope="module")
def compiled() -> Any:
    """A CPU reader as the appliance loads it by default: compiled at load."""
    options = reader_options(Settings(reader={"device": "cpu", "compile_networks": True}))
    return load_reader("ppocr", schema=load_schema(SCHEMA_FILE), device="cpu", **options)


def test_the_appliance_compiles_a_cpu_reader_at_load_and_reads_at_1280_px(
        compiled: Any) -> None:
    gpu_alone = Settings(reader={"device": "cuda", "compile_networks": True})
    assert reader_options(gpu_alone)["compile_networks"] is False  # in-process GPU: not
    assert compiled.settings.limit == 1280           # compiled: the detector's full side
    assert [f.failure for f in compiled.networks.compiled] == [None, None]
    plain = load_reader("ppocr", schema=load_schema(SCHEMA_FILE), device="cpu",
                        detector_limit=1280)
    values = plate_values(demo_records()[1])
    image = render_demo_plate(values, seed=5).image
    read, want = compiled.read([image])[0], plain.read([image])[0]
    assert {k: f.value for k, f in read.fields.items()} == \
        {k: f.value for k, f in want.fields.items()}
    assert read.fields["serial"].value == values["serial"]


def test_compiled_networks_compute_what_the_loaded_ones_do(compiled: Any) -> None:
    networks: LocalNetworks = compiled.networks
    plain = LocalNetworks.load(DEFAULT_MODEL, device="cpu")
    assert networks.detector.net._frozen and plain.detector.net._frozen is None
    image = render_demo_plate(demo_records()[0], seed=3).image
    pixels = detector_input(image, compiled.settings.limit)[0]
    frame = torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None]
    expected = plain.detect(frame)
    assert np.abs(networks.detect(frame) - expected).max() < 1e-4
    assert expected.max() > 0.5  # the frame holds text: the maps are not both empty
    generator = torch.Generator().manual_seed(0)
    for rows, width in ((2, 160), (5, 448), (1, 96)):  # compiled at load for any of these
        lines = torch.randint(0, 255, (rows, 48, width, 3), dtype=torch.uint8,
                              generator=generator)
        widths = [width, width // 2, width, 64, width][:rows]
        want = plain.recognise(lines, widths)
        got = networks.recognise(lines, widths)
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
