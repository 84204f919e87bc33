"""Measure PP-OCR reader folders side by side on the same rendered frames, and time them.

``python -m training.ppocr.report --model models/ppocr-reader --model OUT --out r.json``

Per split: legible values found verbatim in the reader's text runs, field exact match
through the attachment, model and serial both exact; then latency at batch 1 (p50/p90)
and throughput at batch 32 on the device.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from appliance.reader.ppocr.pipeline import PPOCRReader
from appliance.schema import load_schema
from appliance.synth.dataset import iter_samples
from training.evaluate import evaluate


def render(schema_file: Path, split: str, n: int, workers: int, seed: int = 2026,
           ) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """Frames 0..n-1 of a split, in memory."""
    return list(iter_samples(schema_file, seed=seed, split=split, n=n, workers=workers))


def latency(reader: PPOCRReader, frames: list[np.ndarray], *, batch: int,
            repeats: int) -> dict[str, float]:
    """Frame in → fields out: p50/p90 ms per call, and frames per second."""
    sync = torch.cuda.synchronize if reader.device == "cuda" else (lambda: None)
    reader.read(frames[:batch])  # warm-up
    times = []
    for r in range(repeats):
        chunk = [frames[(r * batch + i) % len(frames)] for i in range(batch)]
        sync()
        started = time.perf_counter()
        reader.read(chunk)
        sync()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"batch": batch, "p50_ms": round(statistics.median(times), 1),
            "p90_ms": round(times[int(0.9 * (len(times) - 1))], 1),
            "frames_per_s": round(batch * 1000 / statistics.median(times), 1)}


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, action="append", required=True)
    parser.add_argument("--schema", type=Path, default=Path("config/schemas/motor.toml"))
    parser.add_argument("--split", action="append", default=None,
                        help="SPLIT:N, e.g. station:200 (repeatable)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency", type=int, default=0, help="timed calls per batch size")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    schema = load_schema(args.schema)
    splits = [(s.split(":")[0], int(s.split(":")[1]))
              for s in (args.split or ["station:100", "dev:100", "heldout:100"])]
    frames = {name: render(args.schema, name, n, args.workers) for name, n in splits}
    report: dict[str, Any] = {"device": args.device, "gpu": torch.cuda.get_device_name()
                              if args.device == "cuda" else None, "models": {}}
    for folder in args.model:
        reader = PPOCRReader(schema=schema, device=args.device, model_dir=folder)
        result: dict[str, Any] = {}
        for name, samples in frames.items():
            measured = evaluate(reader, args.schema, split=name, samples=samples)
            measured["failures"] = measured["failures"][:12]
            result[name] = measured
            print(json.dumps({"model": str(folder), "split": name, **{
                k: measured[k] for k in ("values_in_text", "field_exact",
                                         "plates_model_and_serial_exact", "field_wrong")}}),
                  flush=True)
        if args.latency:
            station = [image for image, _ in next(iter(frames.values()))]
            result["latency"] = [latency(reader, station, batch=b, repeats=args.latency)
                                 for b in (1, 8, 32)]
            print(json.dumps(result["latency"]), flush=True)
        report["models"][str(folder)] = result
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
