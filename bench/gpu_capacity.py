"""What the GPU side of the PP-OCR reader can do when fed without pause: the detector on
batches of frames, the recogniser on many lines, and the copies between host and device.
An upper bound for batched reading: ``python bench/gpu_capacity.py``."""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable

import torch
from cuda_timing import cuda_times  # bench/cuda_timing.py, beside this script

from appliance.reader.ppocr.networks import LocalNetworks
from appliance.reader.ppocr.pipeline import DEFAULT_MODEL
from appliance.reader.ppocr.recognise import network_input


def timed(step: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of ``step`` (device synchronised around each call)."""
    times = cuda_times(step, repeats)
    return sorted(times)[len(times) // 2]


def main() -> None:
    """Print one JSON line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    networks = LocalNetworks.load(DEFAULT_MODEL, device="cuda")
    print(json.dumps({"gpu": torch.cuda.get_device_name()}))
    for batch in (1, 8, 16, 32):
        host = torch.randint(0, 255, (batch, 3, 960, 1280), dtype=torch.uint8)
        pinned = host.pin_memory()

        def detect(src: torch.Tensor = pinned) -> torch.Tensor:
            x = src.to("cuda", non_blocking=True).flip(1).float() / 127.5 - 1.0
            x = x.contiguous(memory_format=torch.channels_last)
            probs = networks.detect_net(x)[:, 0]
            return (probs * 255).to(torch.uint8).cpu()

        on_device = pinned.cuda()

        def network_only(frames: torch.Tensor) -> torch.Tensor:
            x = (frames.flip(1).float() / 127.5 - 1.0).contiguous(
                memory_format=torch.channels_last)
            return networks.detect_net(x)
        print(json.dumps({
            "detector_batch": batch,
            "copy_in_pageable_ms": round(timed(host.cuda, args.repeats), 2),
            "copy_in_pinned_ms": round(timed(functools.partial(
                pinned.to, "cuda", non_blocking=True), args.repeats), 2),
            "network_only_ms": round(timed(functools.partial(
                network_only, on_device), args.repeats), 2),
            "in_to_uint8_probs_out_ms": round(timed(detect, args.repeats), 2),
        }))
    for rows, width in ((256, 256), (512, 256), (1024, 256), (512, 512), (128, 768)):
        pixels = torch.randint(0, 255, (rows, 48, width, 3), dtype=torch.uint8).pin_memory()

        def recognise(p: torch.Tensor = pixels, w: int = width) -> torch.Tensor:
            x = network_input(p.to("cuda", non_blocking=True), [w] * p.shape[0])
            lp = networks.recognise_net(x)
            best_log, best = lp.max(-1)
            return torch.stack([best_log.exp(), best.float()]).cpu()

        ms = timed(recognise, args.repeats)
        print(json.dumps({"recogniser_rows": rows, "width": width, "ms": round(ms, 2),
                          "lines_per_s": round(rows * 1000 / ms)}))


if __name__ == "__main__":
    main()
