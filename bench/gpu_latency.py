"""The PP-OCR reader's latency on a GPU eager, with CUDA graphs (the in-process default), and
compiled with CUDA graphs (what served networks run), on the same frames, and whether they
read the same:
``python bench/gpu_latency.py -n 40``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import allocator  # bench/allocator.py, beside this script
import torch

from appliance.reader.ppocr.pipeline import PPOCRReader
from appliance.schema import load_schema
from appliance.synth.dataset import iter_samples
from training.ppocr.report import latency

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schemas" / "motor.toml"
#: the readers compared: (CUDA graphs, torch.compile) each
READERS = {"eager": (False, False), "cuda_graphs": (True, False), "compiled": (True, True)}


def main() -> None:
    """Warm both readers on every frame (captures happen there), then time them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=40)
    parser.add_argument("--workers", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--only", choices=list(READERS), default=None,
                        help="Time one reader (the frames-read-the-same check needs eager).")
    allocator.add_option(parser)
    args = parser.parse_args()
    allocator.apply(args.allocator)
    schema = load_schema(SCHEMA)
    frames = [f for f, _ in iter_samples(SCHEMA, seed=2026, split="station", n=args.n,
                                         workers=args.workers)]
    readers = {name: PPOCRReader(schema=schema, device="cuda", cuda_graphs=graphs,
                                 compile_networks=compiled)
               for name, (graphs, compiled) in READERS.items() if args.only in (None, name)}
    values = {}
    for name, reader in readers.items():
        started = time.perf_counter()
        values[name] = [{k: f.value for k, f in r.fields.items()}
                        for frame in frames for r in reader.read([frame])]
        for batch in (8, 32):
            reader.read(frames[:batch])
        print(json.dumps({"reader": name, "warm_up_s": round(time.perf_counter() - started, 1)}))
    for name in list(values)[1:] if "eager" in values else []:
        same = sum(a == b for a, b in zip(values["eager"], values[name], strict=True))
        print(json.dumps({"reader": name, "frames_read_as_eager": f"{same}/{len(frames)}"}))
    print(json.dumps({"gpu": torch.cuda.get_device_name(), "allocator": args.allocator}))
    for name, reader in readers.items():
        print(json.dumps({"reader": name, "latency": [latency(reader, frames, batch=b,
                                                              repeats=args.repeats)
                                                      for b in (1, 8, 32)]}))


if __name__ == "__main__":
    main()
