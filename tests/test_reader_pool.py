"""Reader worker processes (``reader.workers``): real spawned processes, each with the real
``ppocr`` reader on the CPU; the same readings as one reader, bad frames named, a killed
worker costing only its share of one batch."""

from __future__ import annotations

import os
import signal

import pytest

from appliance.reader import decode_image, load_reader
from appliance.reader.pool import PoolError, PoolFrame, ReaderPool
from tests.plates import SCHEMA_FILE, demo_records, frame_for, plate_values, shipped

pytestmark = [shipped, pytest.mark.slow]


def _frames(n: int) -> list[tuple[dict[str, str], bytes]]:
    rows = demo_records()
    out = []
    for i in range(n):
        values = plate_values(rows[i % len(rows)])
        _, payload = frame_for(rows[i % len(rows)]["unit_id"], values, seed=40 + i)
        out.append((values, payload))
    return out


def test_a_pool_reads_like_one_reader_names_bad_frames_and_outlives_a_killed_worker() -> None:
    from appliance.schema import load_schema

    frames = _frames(3)
    one = load_reader("ppocr", schema=load_schema(SCHEMA_FILE), device="cpu")
    images = [decode_image(p) for _, p in frames]
    alone = one.read(images)
    raw = images[0]
    batch = [PoolFrame(payload=p, source=f"frame {k}", expected=v if k == 1 else None)
             for k, (v, p) in enumerate(frames)]
    batch.append(PoolFrame(payload=b"\xff\xd8 not a jpeg", source="frame F-bad"))
    batch.append(PoolFrame(payload=raw.tobytes(), encoding="raw", width=raw.shape[1],
                           height=raw.shape[0], source="frame raw"))
    batch.append(PoolFrame(payload=b"\x00" * 10, encoding="raw", width=4, height=4,
                           source="frame short"))

    pool = ReaderPool(backend="ppocr", schema_file=SCHEMA_FILE, device="cpu", workers=2)
    try:
        assert (pool.name, pool.device, pool.size) == ("ppocr", "cpu", 2)
        results = pool.read_frames(batch)
        assert len(results) == len(batch)
        for reading, result in zip(alone, results[:3], strict=False):
            assert {n: f.value for n, f in result.fields.items()} == \
                {n: f.value for n, f in reading.fields.items()}
            assert result.error is None
        assert {n: f.value for n, f in results[4].fields.items()} == \
            {n: f.value for n, f in alone[0].fields.items()}        # raw pixels, same reading
        assert results[1].verify and results[1].verify["serial"] in ("verified", "unreadable")
        assert results[0].verify is None                             # no record: no verify
        assert not results[3].fields and "frame F-bad" in (results[3].error or "")
        assert "not a decodable image" in (results[3].error or "")
        assert "raw image: 10 bytes, expected 48" in (results[5].error or "")

        # kill one worker between batches: its share of the next batch comes back with the
        # reason, the worker is started again, and the batch after reads in full
        os.kill(pool._workers[0].process.pid, signal.SIGKILL)
        pool._workers[0].process.join(timeout=10)
        again = pool.read_frames(batch[:3])
        lost = [r for r in again if r.error and "reader worker 0 stopped" in r.error]
        assert lost and all(r.fields for r in again if r not in lost)
        assert pool.restarts == 1
        after = pool.read_frames(batch[:3])
        assert all(r.error is None and r.fields for r in after)
        assert [r.fields["serial"].value for r in after] == \
            [r.fields["serial"].value for r in results[:3]]
    finally:
        pool.close()
    assert all(not w.process.is_alive() for w in pool._workers)


def test_a_pool_that_cannot_load_its_reader_says_why() -> None:
    with pytest.raises(PoolError, match=r"could not load the reader: ValueError: unknown "
                                        r"reader backend 'nope'"):
        ReaderPool(backend="nope", schema_file=SCHEMA_FILE, device="cpu", workers=1)
    with pytest.raises(ValueError, match="at least one worker"):
        ReaderPool(backend="ppocr", schema_file=SCHEMA_FILE, device="cpu", workers=0)
