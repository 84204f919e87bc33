"""The reader's networks served to reader workers (``appliance.reader.ppocr.netserver``):
real spawned workers, a real shared memory map and pipe, the real ``ppocr`` networks on the
CPU (the GPU run of the same code is ``bench/gpu_throughput.py``, docs/benchmarks.md)."""

from __future__ import annotations

import glob
import json
import os
import signal
import tempfile

import numpy as np
import pytest
import torch

from appliance.reader import decode_image, load_reader
from appliance.reader.pool import PoolError, PoolFrame, ReaderPool
from appliance.reader.ppocr.netclient import NetworkError, RemoteNetworks
from appliance.reader.ppocr.netserver import NetworkServer
from appliance.reader.ppocr.networks import LocalNetworks
from appliance.reader.ppocr.pipeline import DEFAULT_MODEL
from appliance.reader.ppocr.recognise import HEIGHT, STRIDE
from tests.plates import SCHEMA_FILE, demo_records, frame_for, plate_values, shipped

pytestmark = [shipped]


def _region_files() -> set[str]:
    return {path for folder in ("/dev/shm", tempfile.gettempdir())
            for path in glob.glob(os.path.join(folder, "nameplate-net-*"))}


@pytest.fixture(scope="module")
def local() -> LocalNetworks:
    return LocalNetworks.load(DEFAULT_MODEL, device="cpu")


@pytest.mark.slow
def test_served_workers_read_like_one_reader_and_a_killed_worker_is_served_again() -> None:
    from appliance.schema import load_schema

    rows = demo_records()
    payloads = [frame_for(rows[i]["unit_id"], plate_values(rows[i]), seed=60 + i)[1]
                for i in range(3)]
    alone = load_reader("ppocr", schema=load_schema(SCHEMA_FILE), device="cpu").read(
        [decode_image(p) for p in payloads])
    before = _region_files()
    pool = ReaderPool(backend="ppocr", schema_file=SCHEMA_FILE, device="cpu", workers=2,
                      share_networks=True)
    try:
        assert pool.server is not None
        results = pool.read_frames([PoolFrame(payload=p) for p in payloads])
        for reading, result in zip(alone, results, strict=True):
            assert result.error is None
            assert {n: f.value for n, f in result.fields.items()} == \
                {n: f.value for n, f in reading.fields.items()}
        assert pool.server.stats["detect_requests"] == 3        # every frame detected there
        assert pool.server.stats["recognise_requests"] >= 3
        assert _region_files() == before    # both sides mapped: the files are gone already

        os.kill(pool._workers[0].process.pid, signal.SIGKILL)
        pool._workers[0].process.join(timeout=10)
        pool.read_frames([PoolFrame(payload=p) for p in payloads])  # its share is lost
        assert pool.restarts == 1
        after = pool.read_frames([PoolFrame(payload=p) for p in payloads])
        assert [r.fields["serial"].value for r in after] == \
            [r.fields["serial"].value for r in results]
        assert len(pool.server._clients) == 2     # the dead worker's region was dropped
    finally:
        pool.close()
    assert _region_files() == before


def test_bad_requests_are_refused_by_name_and_the_server_goes_on(local: LocalNetworks) -> None:
    server = NetworkServer(local, max_side=256)
    try:
        endpoint = server.attach()
        remote = RemoteNetworks(endpoint)
        for raw, reason in ((b"{not json", "malformed header"),
                            (json.dumps({"v": 1, "op": "explode", "shape": [1]}).encode(),
                             "unknown operation"),
                            (json.dumps({"v": 1, "op": "detect", "shape": [9, 2000, 2000, 3]})
                             .encode(), "exceeds the shared region"),
                            (json.dumps({"v": 1, "op": "detect"}).encode(), "bad request")):
            endpoint.conn.send_bytes(raw)
            assert endpoint.conn.poll(30)
            assert reason in json.loads(endpoint.conn.recv_bytes())["error"]

        frame = torch.from_numpy(np.random.default_rng(1).integers(
            0, 255, (2, 3, 128, 160), dtype=np.uint8))
        np.testing.assert_allclose(remote.detect(frame), local.detect(frame), atol=1e-5)
        with pytest.raises(NetworkError, match="exceeds the shared region"):
            remote.detect(torch.zeros((1, 3, 4096, 4096), dtype=torch.uint8))
    finally:
        server.close()
    with pytest.raises(NetworkError, match="network server gone"):
        remote.detect(frame)


def test_each_line_is_recognised_at_its_own_width_step_not_its_neighbours(
        local: LocalNetworks) -> None:
    """A reader's request pads every line to its widest; the server reads a narrow line at
    its own step (160 px here), exactly as the line read alone at that width."""
    server = NetworkServer(local, max_side=256)
    try:
        remote = RemoteNetworks(server.attach())
        rng = np.random.default_rng(2)
        widths = [300, 100, 90]                       # sorted widest first, as a reader sends
        pixels = np.zeros((3, HEIGHT, 384, 3), np.uint8)
        for row, width in enumerate(widths):
            pixels[row, :, :width] = rng.integers(0, 255, (HEIGHT, width, 3))
        served = remote.recognise(torch.from_numpy(pixels), widths)
        assert served.shape[:2] == (3, 384 // STRIDE)
        wide = local.recognise(torch.from_numpy(pixels[:1]), widths[:1])
        narrow = local.recognise(torch.from_numpy(np.ascontiguousarray(pixels[1:, :, :160])),
                                 widths[1:])
        for row, width in enumerate(widths):
            steps = -(-width // STRIDE)
            alone = wide[0] if row == 0 else narrow[row - 1]
            np.testing.assert_allclose(served[row, :steps].numpy(), alone[:steps].numpy(),
                                       atol=1e-4)
    finally:
        server.close()


def test_a_reader_that_cannot_be_served_is_refused_by_name() -> None:
    with pytest.raises(PoolError, match="reader 'tesseract' cannot share its networks"):
        ReaderPool(backend="tesseract", schema_file=SCHEMA_FILE, device="cpu", workers=1,
                   share_networks=True)
