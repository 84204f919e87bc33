"""Legibility audit: does a value the generator labels legible look legible to a person?

The reader is held to every value the generator labels ``legible`` (big, sharp and
contrasted enough, ``appliance.synth.engine.legible``). That label knows nothing of ink
that fills a character's counters, dots that merge, faded ends or a shadow over one
character, so some values the reader "missed" are values nobody could read. This audit puts
a number on that, by eye:

``python -m training.audit.legibility sheet --reads READS --split station -n 96 --out DIR``
  draws the missed values (legible by label, not verbatim in any of the reader's text runs)
  of a random sample as numbered contact sheets ``DIR/sheet-K.png`` and writes
  ``DIR/judgments.json`` with ``"legible": null`` for each. ``--first N`` draws every miss
  of frames 0..N-1 instead (so whole plates are judged); ``--known J`` fills in what an
  earlier judgments file already says.
A person looks at each crop and sets ``legible`` to true (a careful person reads every
character without guessing) or false, then:

``python -m training.audit.legibility report --reads READS --split station --judgments J``
  prints the share of misses judged illegible (with a 95 % Wilson interval) and the reader's
  share of values in text among values a person can read, estimated from it.

``python -m training.audit.legibility relabel --reads READS --split station --judgments J
--first N --out DIR [--legible-plates-only]``
  writes frames 0..N-1 (every miss among them judged) to ``DIR/SPLIT.jsonl`` with the values
  a person could not read labelled illegible, so ``training.attach.reads`` and
  ``training.calibrate.verdicts`` measure against what a person can read; with
  ``--legible-plates-only``, only plates whose every shown value a person can read.

Frames are re-rendered from their stored seed, so the sheets show exactly what was read.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from appliance.reader.textmatch import best_substring, fold
from appliance.schema import PlateSchema, load_schema
from appliance.synth.engine import render_sample
from training.attach.reads import held_values, values_in_text
from training.calibrate.fit import frames

TILE_W, TILE_H, CAPTION_H = 600, 110, 22
PER_SHEET = 24


def misses(path: Path) -> list[dict[str, Any]]:
    """Every legible-by-label value of a collected split that no text run holds verbatim,
    with what the closest run read."""
    found = []
    for record in frames(path):
        runs = [fold(w["text"]) or "" for w in record["words"]]
        for name, (value, held) in held_values(record).items():
            if held:
                continue
            closest = min(runs, key=lambda run: best_substring(run, value)[2], default="")
            found.append({"index": record["index"], "seed": record["seed"],
                          "style": record.get("params", {}).get("style"), "field": name,
                          "value": record["fields"][name]["value"], "read": closest,
                          "legible": None})
    return found


def _tile(image: np.ndarray, box: list[int], caption: str) -> np.ndarray:
    x0, y0, x1, y1 = box
    margin = 12
    crop = image[max(0, y0 - margin):y1 + margin, max(0, x0 - margin):x1 + margin]
    scale = min(3.0, (TILE_H - CAPTION_H) / max(1, crop.shape[0]), TILE_W / max(1, crop.shape[1]))
    crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    tile = np.full((TILE_H, TILE_W, 3), 255, np.uint8)
    tile[:crop.shape[0], :crop.shape[1]] = crop[:TILE_H - CAPTION_H, :TILE_W]
    cv2.putText(tile, caption, (2, TILE_H - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (190, 0, 0), 1,
                cv2.LINE_AA)
    return tile


def draw_sheets(items: list[dict[str, Any]], schema: PlateSchema, split: str,
                out: Path) -> list[Path]:
    """Contact sheets of ``items`` (numbered in order, two columns), one per PER_SHEET."""
    out.mkdir(parents=True, exist_ok=True)
    tiles = []
    for number, item in enumerate(tqdm(items, desc="render", disable=None)):
        sample = render_sample(int(item["seed"]), schema=schema, split=split)
        box = sample.labels["fields"][item["field"]]["box"]
        caption = (f"#{number} {item['style']} {item['field']}: {item['value']} "
                   f"| read {item['read'][:26]}")
        tiles.append(_tile(sample.image, box, caption))
    paths = []
    for k in range(0, len(tiles), PER_SHEET):
        chunk = tiles[k:k + PER_SHEET]
        if len(chunk) % 2:
            chunk.append(np.full_like(chunk[0], 255))
        rows = [np.hstack(chunk[i:i + 2]) for i in range(0, len(chunk), 2)]
        path = out / f"sheet-{k // PER_SHEET}.png"
        cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion."""
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def report(path: Path, judgments: list[dict[str, Any]]) -> dict[str, Any]:
    """Share of judged misses a person cannot read, and the reader's values in text among
    values a person can read (the judged share applied to every miss of the split)."""
    judged = [j for j in judgments if j.get("legible") is not None]
    if not judged:
        raise ValueError("no judgment is filled in (set \"legible\" to true or false)")
    illegible = sum(not j["legible"] for j in judged)
    held = values_in_text(path)
    values, in_text = len(held), sum(held.values())
    missed = values - in_text
    share = illegible / len(judged)
    low, high = wilson(illegible, len(judged))

    def among_legible(illegible_share: float) -> float:
        return round(in_text / max(1.0, values - missed * illegible_share), 4)

    by_style: dict[str, list[int]] = {}
    for j in judged:
        counts = by_style.setdefault(str(j.get("style")), [0, 0])
        counts[0] += not j["legible"]
        counts[1] += 1
    return {"file": path.name, "values_legible_by_label": values, "values_in_text": in_text,
            "missed": missed, "judged": len(judged), "judged_illegible": illegible,
            "illegible_share_of_misses": round(share, 4),
            "illegible_share_95": [round(low, 4), round(high, 4)],
            "values_in_text_by_label": round(in_text / max(1, values), 4),
            "values_in_text_among_legible_by_eye": among_legible(share),
            "values_in_text_among_legible_by_eye_95": [among_legible(low), among_legible(high)],
            "illegible_by_style": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_style.items())}}


def relabel(path: Path, judgments: list[dict[str, Any]], *, first: int,
            legible_plates_only: bool = False) -> list[dict[str, Any]]:
    """Frames 0..first-1 of a collected split with each value judged unreadable labelled
    ``legible: false``; raises ValueError naming any miss among them not judged."""
    verdict = {(j["index"], j["field"]): j["legible"] for j in judgments}
    unjudged = [f"frame {m['index']} {m['field']}" for m in misses(path)
                if m["index"] < first and verdict.get((m["index"], m["field"])) is None]
    if unjudged:
        raise ValueError(f"{len(unjudged)} misses of frames 0..{first - 1} are not judged: "
                         + ", ".join(unjudged[:5]))
    kept = []
    for record in frames(path):
        if record["index"] >= first:
            continue
        for name, truth in record["fields"].items():
            if verdict.get((record["index"], name)) is False:
                truth["legible"] = False
        if legible_plates_only and not all(
                t.get("legible", True) for t in record["fields"].values() if t.get("shown")):
            continue
        kept.append(record)
    return kept


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    sheet = commands.add_parser("sheet", help="draw a sample of misses for a person to judge")
    sheet.add_argument("--reads", type=Path, required=True, help="folder of collected reads")
    sheet.add_argument("--split", default="station")
    sheet.add_argument("-n", type=int, default=96, help="misses to draw (a random sample)")
    sheet.add_argument("--sample-seed", type=int, default=5)
    sheet.add_argument("--first", type=int, default=0,
                       help="every miss of frames 0..N-1 instead of a sample")
    sheet.add_argument("--also", type=Path, action="append", default=[],
                       help="another reader's reads of the same frames: its misses too")
    sheet.add_argument("--known", type=Path, default=None,
                       help="an earlier judgments file: its verdicts are filled in")
    sheet.add_argument("--schema", type=Path, default=Path("config/schemas/motor.toml"))
    sheet.add_argument("--out", type=Path, required=True)
    judged = commands.add_parser("report", help="numbers from filled-in judgments")
    judged.add_argument("--reads", type=Path, required=True)
    judged.add_argument("--split", default="station")
    judged.add_argument("--judgments", type=Path, required=True)
    again = commands.add_parser("relabel", help="frames relabelled by the judgments")
    again.add_argument("--reads", type=Path, required=True)
    again.add_argument("--split", default="station")
    again.add_argument("--judgments", type=Path, required=True)
    again.add_argument("--first", type=int, required=True, help="frames 0..N-1, all judged")
    again.add_argument("--legible-plates-only", action="store_true")
    again.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    path = args.reads / f"{args.split}.jsonl"
    if args.command == "relabel":
        kept = relabel(path, json.loads(args.judgments.read_text(encoding="utf-8")),
                       first=args.first, legible_plates_only=args.legible_plates_only)
        args.out.mkdir(parents=True, exist_ok=True)
        with (args.out / f"{args.split}.jsonl").open("w", encoding="utf-8") as handle:
            for record in kept:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        print(f"{len(kept)} frames written to {args.out / (args.split + '.jsonl')}")
        return
    if args.command == "sheet":
        found = misses(path)
        seen = {(m["index"], m["field"]) for m in found}
        for other in args.also:
            for miss in misses(other / f"{args.split}.jsonl"):
                if (miss["index"], miss["field"]) not in seen:
                    seen.add((miss["index"], miss["field"]))
                    found.append(miss)
        found.sort(key=lambda m: m["index"])
        if args.first:
            items = [m for m in found if m["index"] < args.first]
        else:
            items = random.Random(args.sample_seed).sample(found, min(args.n, len(found)))
        if args.known:
            known = {(j["index"], j["field"]): j["legible"]
                     for j in json.loads(args.known.read_text(encoding="utf-8"))}
            for item in items:
                item["legible"] = known.get((item["index"], item["field"]))
        sheets = draw_sheets(items, load_schema(args.schema), args.split, args.out)
        (args.out / "judgments.json").write_text(
            json.dumps(items, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{len(found)} misses; {len(items)} drawn on {len(sheets)} sheets in {args.out}; "
              f"fill in \"legible\" in {args.out / 'judgments.json'}")
        return
    judgments = json.loads(args.judgments.read_text(encoding="utf-8"))
    print(json.dumps(report(path, judgments), indent=1))


if __name__ == "__main__":
    main()
