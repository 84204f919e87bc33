"""What the recogniser's passes cost on a CPU: one frame's lines at a time, with the lines
grouped by cost (the reader's way) or by 64-px width bucket (before session 11), and with
the plate alphabet's logits alone or the full output layer then indexed. All four variants
run in one process, alternating frame by frame, so a shared machine's drift hits them alike:
``python bench/recogniser_passes.py -n 20 --rounds 4``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import appliance.reader.ppocr.recognise as recognise
from appliance.reader.ppocr.pipeline import PPOCRReader
from appliance.schema import load_schema
from appliance.synth.dataset import iter_samples

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schemas" / "motor.toml"


def full_output_layer(self: recognise.Charset, model: Any, pixels: torch.Tensor,
                      ) -> torch.Tensor:
    """Every class's logits, then the allowed columns (the path before session 11)."""
    logits = model(pixels, logits=True)["logits"]
    return torch.log_softmax(logits.float()[..., self.allowed_on(pixels.device)], -1)


def main() -> None:
    """Time the four variants on the same frames' lines and print medians as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=20, help="station frames")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    reader = PPOCRReader(schema=load_schema(SCHEMA), device="cpu")
    frames = [image for image, _ in iter_samples(SCHEMA, seed=2026, split="station", n=args.n,
                                                 workers=args.workers)]
    crops = [analysis.crops for analysis in reader.analyse(frames)]
    chosen_only = recognise.Charset.log_probs
    variants = {"by bucket, full layer": (0, full_output_layer),
                "by cost, full layer": (recognise.PASS_COLUMNS, full_output_layer),
                "by bucket, alphabet only": (0, chosen_only),
                "by cost, alphabet only (shipped)": (recognise.PASS_COLUMNS, chosen_only)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        for lines in crops:
            names = list(variants) if round_ % 2 == 0 else list(variants)[::-1]
            for name in names:
                recognise.PASS_COLUMNS, method = variants[name]
                recognise.Charset.log_probs = method  # type: ignore[method-assign,assignment]
                started = time.perf_counter()
                reader._read_lines(lines)
                times[name].append((time.perf_counter() - started) * 1000)
    for name, ms in times.items():
        print(json.dumps({"variant": name, "median_ms_per_frame": round(float(np.median(ms)), 1),
                          "lines_per_frame": round(sum(map(len, crops)) / len(crops), 1)}))


if __name__ == "__main__":
    main()
