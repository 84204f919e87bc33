"""Safe verify on rendered plates: how many true values are verified, and how many values
changed by one character are (which must be none).

``python bench/verify_bench.py --split station -n 20 [--device cuda]``
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from appliance.reader.ppocr.pipeline import PPOCRReader
from appliance.reader.ppocr.verify import single_changes
from appliance.schema import load_schema
from appliance.synth.dataset import iter_samples
from training.evaluate import scoreable

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schemas" / "motor.toml"
CHANGES = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-./"


def main() -> None:
    """Verify each legible value as it is and with one random single-character change."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", default="station")
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    reader = PPOCRReader(schema=load_schema(SCHEMA), device=args.device)
    rng = random.Random(0)
    counts = {"true": [0, 0], "changed": [0, 0]}  # verified, total
    for image, labels in iter_samples(SCHEMA, seed=2026, split=args.split, n=args.n,
                                      workers=args.workers):
        truth = {name: f["value"] for name, f in labels["fields"].items() if scoreable(f)}
        changed = {name: rng.choice(sorted(single_changes(value, CHANGES)))
                   for name, value in truth.items()}
        for kind, expected in (("true", truth), ("changed", changed)):
            for name, result in reader.verify(image, expected).items():
                counts[kind][0] += int(result["status"] == "verified")
                counts[kind][1] += 1
                if kind == "changed" and result["status"] == "verified":
                    print(json.dumps({"verified_a_change": expected[name],
                                      "truth": truth[name], "field": name,
                                      "seed": labels["seed"]}))
    print(json.dumps({"split": args.split, "frames": args.n, **{
        f"{kind}_verified": f"{v}/{t} = {v / max(1, t):.1%}" for kind, (v, t) in
        counts.items()}}))


if __name__ == "__main__":
    main()
