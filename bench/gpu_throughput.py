"""Frames per second of the inference service's reading, one process against reader worker
pools (``reader.workers``), on the same JPEG frames: ``python bench/gpu_throughput.py
--workers 8 --workers 14``. Frames go in as the camera sends them (JPEG bytes) and come out
as fields, decoding included; the pools also report batch-1 latency. On a GPU a pool's
workers are served the networks by the inference process (``netserver``); ``--separate``
also times pools whose workers each load their own (the design before session 15)."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from appliance.reader import decode_image, encode_jpeg
from appliance.reader.pool import PoolFrame, ReaderPool
from appliance.reader.ppocr.pipeline import PPOCRReader
from appliance.reader.textmatch import fold
from appliance.schema import load_schema
from appliance.synth.dataset import iter_samples
from training.evaluate import scoreable

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schemas" / "motor.toml"


def field_exact(values: list[dict[str, str | None]],
                truth: list[dict[str, dict[str, Any]]]) -> float:
    """Share of the frames' legible fields read exactly (case and spaces folded)."""
    hits = [fold(read.get(name) or "") == fold(str(field["value"]))
            for read, fields in zip(values, truth, strict=True)
            for name, field in fields.items() if scoreable(field)]
    return round(100 * sum(hits) / max(1, len(hits)), 2)


class Rows:
    """Prints each configuration's row with its field exact match and how many frames it
    read as the first row did."""

    def __init__(self, truth: list[dict[str, dict[str, Any]]]) -> None:
        self.truth = truth
        self.reference: list[dict[str, str | None]] | None = None

    def print(self, result: dict[str, Any]) -> None:
        """Print ``result`` (its ``values`` replaced by the two scores)."""
        values = result.pop("values")
        self.reference = self.reference or values
        same = sum(a == b for a, b in zip(self.reference, values, strict=True))
        print(json.dumps({**result, "frames_read_the_same": f"{same}/{len(values)}",
                          "field_exact": field_exact(values, self.truth)}), flush=True)


def _batches(n: int, size: int) -> list[list[int]]:
    return [list(range(k, min(n, k + size))) for k in range(0, n, size)]


def one_process(payloads: list[bytes], device: str, batch: int, rounds: int, *,
                compiled: bool = True) -> dict[str, object]:
    """The inference process reading by itself (``reader.workers = 1``)."""
    reader = PPOCRReader(schema=load_schema(SCHEMA), device=device, compile_networks=compiled)
    for chunk in _batches(len(payloads), batch):  # warm-up: CUDA graph captures
        reader.read([decode_image(payloads[i]) for i in chunk])
    started = time.perf_counter()
    values = []
    for _ in range(rounds):
        for chunk in _batches(len(payloads), batch):
            readings = reader.read([decode_image(payloads[i]) for i in chunk])
            values += [{k: f.value for k, f in r.fields.items()} for r in readings]
    seconds = time.perf_counter() - started
    used = torch.cuda.max_memory_reserved() / 2**30 if device == "cuda" else 0.0
    del reader
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()  # the pools need the memory this reader's graphs held
    return {"workers": 1, "mode": "in process", "compiled": compiled, "batch": batch,
            "frames_per_s": round(rounds * len(payloads) / seconds, 1),
            "gpu_memory_reserved_gb": round(used, 1), "values": values[:len(payloads)]}


@contextlib.contextmanager
def _profiled(enabled: bool) -> Iterator[Any]:
    """torch's profiler over the block (this process: the network server's thread)."""
    if not enabled:
        yield None
        return
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                            torch.profiler.ProfilerActivity.CUDA]) as prof:
        yield prof


def _server_share(pool: ReaderPool, before: dict[str, float], frames: int,
                  seconds: float) -> dict[str, float]:
    """The network server's counters since ``before``: per frame read, and its busy share."""
    if pool.server is None:
        return {}
    server = {k: round((v - before[k]) * (1000 if k.endswith("_s") else 1) / frames, 3)
              for k, v in pool.server.stats.items()}
    for key in ("busy", "device"):  # shares of the timed rounds
        server[f"{key}_share"] = round(server[f"{key}_s"] * frames / 1000 / seconds, 2)
    return server


def pooled(payloads: list[bytes], device: str, workers: int, batch: int,
           rounds: int, chunk: int | None, *, shared: bool, profile: bool = False,
           compiled: bool = True, stream: bool = False) -> dict[str, object]:
    """A pool of ``workers`` reader processes sharing each batch (``shared``: the networks
    served to them from this process). ``stream``: also every frame in one call, so each
    worker takes the next frame as soon as it is done (no wait for a batch's slowest)."""
    started = time.perf_counter()
    pool = ReaderPool(backend="ppocr", schema_file=SCHEMA, device=device, workers=workers,
                      share_networks=shared, options={"compile_networks": compiled})
    load_s = time.perf_counter() - started
    try:
        frames = [PoolFrame(payload=p) for p in payloads]
        for _ in range(2):  # warm-up: every worker captures its CUDA graphs
            for part in _batches(len(frames), batch):
                pool.read_frames([frames[i] for i in part], chunk=chunk)
        before = dict(pool.server.stats) if pool.server else {}
        started = time.perf_counter()
        values = []
        with _profiled(profile and pool.server is not None) as profiler:
            for _ in range(rounds):
                for part in _batches(len(frames), batch):
                    results = pool.read_frames([frames[i] for i in part], chunk=chunk)
                    values += [{k: f.value for k, f in r.fields.items()} for r in results]
        seconds = time.perf_counter() - started
        if profiler is not None:
            print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
        server = _server_share(pool, before, rounds * len(frames), seconds)
        streamed: dict[str, object] = {}
        if stream:
            before = dict(pool.server.stats) if pool.server else {}
            started = time.perf_counter()
            for _ in range(rounds):
                pool.read_frames(frames, chunk=chunk or 1)
            took = time.perf_counter() - started
            streamed = {"stream_frames_per_s": round(rounds * len(frames) / took, 1),
                        "stream_server": _server_share(pool, before, rounds * len(frames),
                                                       took)}
        single = []
        for frame in frames:
            t0 = time.perf_counter()
            pool.read_frames([frame])
            single.append((time.perf_counter() - t0) * 1000)
        free, total = torch.cuda.mem_get_info() if device == "cuda" else (0, 0)
        return {"workers": workers, "mode": "pool, networks served" if shared else "pool",
                "compiled": compiled, "batch": batch, "chunk": chunk, "server": server,
                "load_s": round(load_s, 1),
                "frames_per_s": round(rounds * len(frames) / seconds, 1), **streamed,
                "batch1_p50_ms": round(statistics.median(single), 1),
                "gpu_memory_used_gb": round((total - free) / 2**30, 1),
                "errors": sum(1 for r in results if r.error), "values": values[:len(frames)]}
    finally:
        pool.close()


def main() -> None:
    """Render the frames once, then time each configuration on them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=64, help="station frames")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, action="append", default=None)
    parser.add_argument("--chunk", type=int, action="append", default=None,
                        help="frames per share sent to a worker (default: the pool's)")
    parser.add_argument("--profile", action="store_true",
                        help="torch's profiler over the served pools' timed rounds")
    parser.add_argument("--stream", action="store_true",
                        help="also time each pool on every frame at once (no batch barrier)")
    parser.add_argument("--separate", action="store_true",
                        help="also time pools whose workers load their own networks")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--compile", choices=["on", "off"], action="append", default=None,
                        help="the networks through torch.compile or not (default: on; "
                             "give both to compare, off first)")
    parser.add_argument("--no-pool", action="store_true", help="time the in-process reader only")
    parser.add_argument("--no-one-process", action="store_true",
                        help="time the pools only (frames read the same: against the first)")
    parser.add_argument("--render-workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    args = parser.parse_args()
    samples = [(encode_jpeg(image), labels["fields"]) for image, labels in tqdm(
        iter_samples(SCHEMA, seed=2026, split="station", n=args.n, workers=args.render_workers),
        total=args.n, desc="render")]
    payloads = [payload for payload, _ in samples]
    truth = [fields for _, fields in samples]
    machine = {"cpu_cores": os.cpu_count(),
               "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None}
    print(json.dumps({"frames": len(payloads), **machine}), flush=True)
    rows = Rows(truth)
    for compiled in [mode == "on" for mode in args.compile or ["on"]]:
        if not args.no_one_process:
            rows.print(one_process(payloads, args.device, args.batch, args.rounds,
                                   compiled=compiled))
        shared_modes = [True, False] if args.separate else [True]
        configurations = [(w, c, shared) for shared in shared_modes
                          for w in ([] if args.no_pool else args.workers or [8, 14])
                          for c in args.chunk or [None]]
        for workers, chunk, shared in configurations:
            rows.print(pooled(payloads, args.device, workers, args.batch, args.rounds, chunk,
                              shared=shared and args.device == "cuda", profile=args.profile,
                              compiled=compiled, stream=args.stream))


if __name__ == "__main__":
    main()
