"""Fine-tuning measured on plates in fonts the reader never saw: held-out-font plates written
as labelled photos (the panel's correction format), then ``nameplate finetune`` on them.

``python bench/finetune_heldout.py --photos 60 --out /tmp/ft`` prints the finetune report:
check photos (every fifth, never trained on) before and after, and the dev-set guard.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from appliance.reader.images import encode_jpeg
from appliance.synth.dataset import iter_samples
from training.evaluate import scoreable
from training.ppocr.plant import finetune

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schemas" / "motor.toml"


def write_photos(folder: Path, count: int, *, seed: int, workers: int) -> None:
    """``count`` held-out-font plates as NAME.jpg + NAME.json with their legible fields."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, (image, labels) in enumerate(iter_samples(SCHEMA, seed=seed, split="heldout",
                                                         n=count, workers=workers)):
        fields = {name: truth["value"] for name, truth in labels["fields"].items()
                  if scoreable(truth)}
        if not fields:
            continue
        (folder / f"plate-{index:04d}.jpg").write_bytes(encode_jpeg(image, quality=95))
        (folder / f"plate-{index:04d}.json").write_text(json.dumps({"version": 1,
                                                                    "fields": fields}))


def main() -> None:
    """Write the photos, fine-tune, print the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--out", type=Path, required=True, help="work folder (replaced)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--dev", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    write_photos(args.out / "photos", args.photos, seed=4242, workers=args.workers)
    report = finetune(args.out / "photos", args.out / "reader", schema_file=SCHEMA,
                      steps=args.steps, dev_frames=args.dev, workers=args.workers,
                      device=args.device)
    report["problems"] = report["problems"][:10]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
