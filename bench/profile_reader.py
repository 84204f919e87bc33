"""Where a reader's time goes: median ms per frame and the top functions by own time.

``python bench/profile_reader.py --model DIR --device cuda`` (the GPU machine runs it from
``scripts/gpu_train.sh``).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

import torch

from appliance.reader.neural.pipeline import NeuralReader
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
    parser.add_argument("--decode", default="ctc", choices=["auto", "ctc", "generate"])
    parser.add_argument("--no-fastpath", action="store_true",
                        help="turn off PyTorch's fused TransformerEncoderLayer inference path")
    args = parser.parse_args()
    if args.no_fastpath:
        torch.backends.mha.set_fastpath_enabled(False)
    reader = NeuralReader(schema=load_schema(SCHEMA), device=args.device,
                          model_dir=args.model, decode=args.decode)
    images = [image for image, _ in iter_samples(SCHEMA, seed=2026, split="dev", n=args.n,
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
          f"(decode={args.decode}, fastpath={'off' if args.no_fastpath else 'on'}, "
          f"{args.device})")
    reader.stage_ms = {}  # stages synchronise the GPU at their edges: a breakdown, not a total
    for image in images:
        reader.read([image])
    print("mean ms/frame by stage (orient includes its own re-read):",
          ", ".join(f"{name} {ms / len(images):.1f}" for name, ms in reader.stage_ms.items()))
    reader.stage_ms = None
    profile = cProfile.Profile()
    profile.enable()
    for image in images:
        reader.read([image])
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
