"""Where a reader's time goes: median ms per frame and the top functions by own time.

``python bench/profile_reader.py --model DIR --device cuda`` (the GPU machine runs it from
``scripts/gpu_ppocr.sh``).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

import allocator  # bench/allocator.py, beside this script
import torch

from appliance.reader import load_reader
from appliance.schema import load_schema
from appliance.synth.dataset import iter_samples

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schemas" / "motor.toml"


def main() -> None:
    """Read rendered dev frames one at a time under cProfile and print the top functions."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("-n", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", default="ppocr")
    parser.add_argument("--split", default="station")
    allocator.add_option(parser)
    args = parser.parse_args()
    allocator.apply(args.allocator)
    options = {"model_dir": args.model} if args.model else {}
    reader = load_reader(args.backend, schema=load_schema(SCHEMA), device=args.device,
                         **options)
    images = [image for image, _ in iter_samples(SCHEMA, seed=2026, split=args.split, n=args.n,
                                                 workers=args.workers)]
    for image in images[:5]:  # warm-up
        reader.read([image])
    times = []
    for image in images:  # timed without the profiler's overhead
        started = time.perf_counter()
        reader.read([image])
        if args.device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - started) * 1000)
    print(f"median {sorted(times)[len(times) // 2]:.1f} ms/frame over {len(times)} frames "
          f"({args.backend}, {args.split}, {args.device})")
    reader.stage_ms = {}  # type: ignore[attr-defined]  # stages synchronise the GPU at their edges: a breakdown, not a total
    for image in images:
        reader.read([image])
    print("mean ms/frame by stage:", ", ".join(
        f"{name} {ms / len(images):.1f}" for name, ms in reader.stage_ms.items()))  # type: ignore[attr-defined]
    reader.stage_ms = None  # type: ignore[attr-defined]
    profile = cProfile.Profile()
    profile.enable()
    for image in images:
        reader.read([image])
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
