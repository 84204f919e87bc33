"""Where a fine-tuning run's time goes, each part measured alone, then together:
``python bench/finetune_throughput.py --workers 14 --seconds 40 --steps 20``.

1. renderers alone: ``--workers`` processes rendering training frames (``RenderFeed``) for
   ``--seconds``: frames per second;
2. trainer alone: recogniser steps on lines rendered beforehand (no workers running):
   seconds per step, split into batch making, forward and backward + optimiser step, with
   batches of random widths and with batches sorted by width (the loop's default);
3. both: ``training.ppocr.finetune.finetune`` with ``--steps`` steps: steps and frames
   per second.
Session 13 saw 1.3–2.7 s a step and 0.5 frames/s per worker on the GPU host; session 14,
on another H100 host, 3.1 frames/s per worker and 0.25 s a step (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import cv2
import torch

from appliance.reader.ppocr.modeling import PPOCRModel
from appliance.reader.ppocr.recognise import Charset
from training.ppocr import finetune as ft

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schemas" / "motor.toml"
MODEL = ROOT / "models" / "ppocr-reader"


def renderers_alone(workers: int, seconds: float) -> tuple[dict[str, float], list[ft.Lines]]:
    """Frames per second of ``workers`` render processes; the frames' lines."""
    cv2.setNumThreads(1)
    frames: list[ft.Lines] = []
    with mp.get_context("fork").Pool(workers, initializer=ft._worker_init,
                                     initargs=(str(SCHEMA),)) as pool:
        feed = ft.RenderFeed(pool, seed=3, detector=False, ahead=2 * workers)
        first = feed.take(wait=True)  # the workers' start (font catalogue) is not counted
        assert first is not None
        frames.append(first[0])
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            frame = feed.take(wait=True)
            if frame is not None:
                frames.append(frame[0])
        elapsed = time.perf_counter() - started
        pool.terminate()
    rate = (len(frames) - 1) / elapsed
    return {"workers": workers, "frames_per_s": round(rate, 2),
            "frames_per_s_per_worker": round(rate / workers, 3)}, frames


def trainer_alone(lines: list[ft.Lines], *, device: str, steps: int,
                  batch_size: int, width_group: int) -> dict[str, Any]:
    """Seconds per recogniser step on lines rendered beforehand, by part, with batches
    drawn as the loop draws them (``ft.WidthBatches``)."""
    tuned = ft.Tuned(MODEL / "recognizer", device, lr=1e-3)
    charset = Charset(list(PPOCRModel.config_class.from_pretrained(
        MODEL / "recognizer").charset))
    buffer = [(crop, ids) for frame in lines for crop, text in frame
              if (ids := ft.encode_columns(charset, text))]
    batches = ft.WidthBatches(random.Random(0), batch_size, width_group)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    parts = {"batch": 0.0, "forward": 0.0, "backward_and_step": 0.0}
    widths = []
    for step in range(steps + 1):
        marks = [time.perf_counter()]
        batch = ft.make_batch(batches.next(buffer), device)
        sync()
        marks.append(time.perf_counter())
        loss = ft.ctc_loss(tuned.model, charset, batch)
        sync()
        marks.append(time.perf_counter())
        tuned.step(loss, 1.0, 1e-3)
        sync()
        marks.append(time.perf_counter())
        if step:  # the first step chooses kernels
            for name, (a, b) in zip(parts, pairwise(marks), strict=True):
                parts[name] += b - a
            widths.append(batch[0].shape[-1])
    return {"device": device, "lines": len(buffer), "batch_size": batch_size,
            "width_group": width_group,
            **{f"{k}_s": round(v / steps, 3) for k, v in parts.items()},
            "step_s": round(sum(parts.values()) / steps, 3),
            "padded_width_median": sorted(widths)[len(widths) // 2]}


def together(*, workers: int, steps: int, batch_size: int, device: str) -> dict[str, float]:
    """Steps and frames per second of the real loop."""
    with tempfile.TemporaryDirectory() as out:
        summary = ft.finetune(MODEL, Path(out), schema_file=SCHEMA, minutes=30, device=device,
                              workers=workers, batch_size=batch_size, max_steps=steps,
                              parts=("recognizer",), hard_styles=True)
    seconds = summary["minutes"] * 60
    return {"steps": summary["steps"], "steps_per_s": round(summary["steps"] / seconds, 3),
            "frames_per_s": round(summary["frames"] / seconds, 2)}


def main() -> None:
    """Print one JSON line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=max(1, (mp.cpu_count() or 2) - 2))
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=192)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--renderers-only", action="store_true",
                        help="measure the renderers alone (e.g. under other thread settings)")
    args = parser.parse_args()
    rendered, frames = renderers_alone(args.workers, args.seconds)
    print(json.dumps({"renderers_alone": rendered}), flush=True)
    if args.renderers_only:
        return
    if args.device != "cpu":
        torch.set_num_threads(1)  # as the training loop does on a GPU run
    for group in (1, 8):  # batches of random widths, then sorted by width as the loop does
        print(json.dumps({"trainer_alone": trainer_alone(
            frames, device=args.device, steps=args.steps, batch_size=args.batch_size,
            width_group=group)}), flush=True)
    print(json.dumps({"together": together(workers=args.workers, steps=args.steps,
                                           batch_size=args.batch_size,
                                           device=args.device)}), flush=True)


if __name__ == "__main__":
    main()
