"""Measure a trained reader and write the numbers the model card quotes.

``python -m appliance.reader.neural.report --model DIR --out REPORT.json``
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import torch

from appliance.reader.neural.evaluate import evaluate
from appliance.reader.neural.pipeline import NeuralReader
from appliance.schema import load_schema

REPO = Path(__file__).resolve().parents[3]


def main() -> None:
    """Evaluate on the dev split (unseen seeds) and the held-out-font split."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dev", type=int, default=300)
    parser.add_argument("--heldout", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--decode", default="auto", choices=["auto", "ctc", "generate"])
    parser.add_argument("--schema", type=Path, default=REPO / "config" / "schemas" / "motor.toml")
    args = parser.parse_args()
    reader = NeuralReader(schema=load_schema(args.schema), device=args.device,
                          model_dir=args.model, decode=args.decode)
    chip = torch.cuda.get_device_name(0) if args.device == "cuda" else platform.processor()
    results: dict[str, Any] = {"machine": f"{platform.node()} {chip}",
                                  "torch": torch.__version__, "decode": args.decode}
    for split, n in (("dev", args.dev), ("heldout", args.heldout)):
        if n:
            results[split] = evaluate(reader, args.schema, split=split, n=n,
                                      workers=args.workers)
            short = {k: v for k, v in results[split].items() if k != "failures"}
            print(json.dumps(short), flush=True)
            args.out.write_text(json.dumps(results, indent=2))  # after each split


if __name__ == "__main__":
    main()
