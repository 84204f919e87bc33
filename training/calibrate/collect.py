"""Read rendered frames once and keep everything later measurements need, as JSON lines.

``python -m training.calibrate.collect --split station:400 --split dev:400 --out reads/``

Per frame: the true fields (value, drawn, legible), the reader's text runs (text, box,
confidence, character positions and confidences), the quality issues, and safe verify
on every legible value as it is and with one character changed. Attachment, calibration
and verdict rates are then measured on a CPU from these files (``training.calibrate.fit``)
without reading the frames again; the GPU is needed only here.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from appliance.reader.lines import Word
from appliance.reader.ppocr.pipeline import COMPILED_LIMIT, PPOCRReader
from appliance.reader.ppocr.verify import single_changes
from appliance.schema import load_schema
from appliance.synth.dataset import iter_samples
from training.evaluate import scoreable

CHANGES = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-./"
TRUTH_KEYS = ("value", "shown", "cut", "occluded", "within_limits", "visibility", "legible")


def word_record(word: Word) -> dict[str, Any]:
    """A text run as JSON (the quad and per-character evidence kept for boxes)."""
    quad = np.asarray(word.quad).round(1).tolist() if word.quad is not None else None
    return {"text": word.text, "box": list(word.box), "confidence": round(word.confidence, 5),
            "quad": quad,
            "char_x": [round(x, 4) for x in word.char_x] if word.char_x else None,
            "char_conf": [round(c, 5) for c in word.char_conf] if word.char_conf else None}


def word_from_record(record: dict[str, Any]) -> Word:
    """The inverse of :func:`word_record`."""
    quad = np.asarray(record["quad"], np.float32) if record.get("quad") else None
    return Word(record["text"], tuple(record["box"]), float(record["confidence"]),  # type: ignore[arg-type]
                quad=quad, char_x=record.get("char_x"), char_conf=record.get("char_conf"))


def collect(reader: PPOCRReader, schema_file: Path, *, split: str, n: int, out: Path,
            seed: int = 2026, workers: int = 4, verify: bool = True) -> Path:
    """Read frames 0..n-1 of ``split`` and write ``out/SPLIT.jsonl``; returns its path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{split}.jsonl"
    rng = random.Random(seed)
    samples = iter_samples(schema_file, seed=seed, split=split, n=n, workers=workers)
    with path.open("w", encoding="utf-8") as handle:
        for index, (image, labels) in enumerate(tqdm(samples, total=n, desc=split,
                                                     disable=None)):
            analysis = reader.analyse([image])[0]
            reading = reader._reading(image, analysis)
            issues: Any = reading.extra.get("quality") or []
            record: dict[str, Any] = {
                "split": split, "index": index, "seed": labels["seed"],
                "params": {k: labels["params"].get(k) for k in ("style", "value_style", "placement",
                                                                  "columns", "material")},
                "fields": {name: {k: f.get(k) for k in TRUTH_KEYS}
                           for name, f in labels["fields"].items()},
                "words": [word_record(w) for w in analysis.words],
                "reading": {name: {"value": f.value, "confidence": round(f.confidence, 5)}
                            for name, f in reading.fields.items()},
                "quality": [q.model_dump(mode="json") if hasattr(q, "model_dump") else str(q)
                            for q in issues],
            }
            if verify:
                results: dict[str, Any] = {}
                truths: dict[str, str] = {}
                for name, field in labels["fields"].items():
                    if not scoreable(field):
                        continue
                    truths[name] = str(field["value"])
                    results[name] = {"changed_value": rng.choice(sorted(single_changes(
                        truths[name], CHANGES)))}
                changes = {name: results[name]["changed_value"] for name in truths}
                # as the appliance verifies: the reader's verify with its second look
                for kind, wanted in (("true", truths), ("changed", changes)):
                    for name, seen in reader.verify_reading(analysis, reading, wanted).items():
                        results[name][kind] = seen["status"]
                        results[name][f"{kind}_margin"] = seen.get("margin")
                record["verify"] = results
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()  # a run cut short by its time limit keeps what it read
    return path


def collect_rapidocr(schema_file: Path, *, split: str, n: int, out: Path, seed: int = 2026,
                     workers: int = 2) -> Path:
    """RapidOCR's own engine (the anchor) on frames 0..n-1 of ``split``: its text runs in
    the same format, for attachment measured behind the best free reader (no verify)."""
    from appliance.reader.rapidocr_anchor import RapidOCRReader

    engine = RapidOCRReader(schema=load_schema(schema_file))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{split}-rapidocr.jsonl"
    samples = iter_samples(schema_file, seed=seed, split=split, n=n, workers=workers)
    with path.open("w", encoding="utf-8") as handle:
        for index, (image, labels) in enumerate(tqdm(samples, total=n, desc=split,
                                                     disable=None)):
            words = [word_record(word) for word in engine.words(image)]
            handle.write(json.dumps({
                "split": split, "index": index, "seed": labels["seed"],
                "params": {k: labels["params"].get(k) for k in ("style", "placement",
                                                                  "columns", "material")},
                "fields": {name: {k: f.get(k) for k in TRUTH_KEYS}
                           for name, f in labels["fields"].items()},
                "words": words, "quality": []}, ensure_ascii=False) + "\n")
            handle.flush()
    return path


def main() -> None:
    """Command line (see the module docstring)."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--schema", type=Path, default=Path("config/schemas/motor.toml"))
    parser.add_argument("--split", action="append", required=True, help="SPLIT:N (repeatable)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=2026,
                        help="render seed (another seed: frames no rule was written from)")
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--detector-limit", type=int, default=COMPILED_LIMIT,
                        help="the detector's longest side (default: as the appliance reads on "
                             "a GPU and, compiled, on a CPU)")
    parser.add_argument("--rapidocr", action="store_true",
                        help="read with RapidOCR's own engine instead (CPU, dev dependency)")
    args = parser.parse_args()
    if args.rapidocr:
        for spec in args.split:
            split, _, count = spec.partition(":")
            print(collect_rapidocr(args.schema, split=split, n=int(count or 100),
                                   out=args.out, workers=args.workers, seed=args.seed))
        return
    reader = PPOCRReader(schema=load_schema(args.schema), device=args.device,
                         model_dir=args.model, detector_limit=args.detector_limit)
    for spec in args.split:
        split, _, count = spec.partition(":")
        path = collect(reader, args.schema, split=split, n=int(count or 100), out=args.out,
                       workers=args.workers, verify=not args.no_verify, seed=args.seed)
        print(f"{split}: {path}")


if __name__ == "__main__":
    main()
