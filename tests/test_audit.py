"""The legibility audit: misses found from collected reads, drawn for a person, and counted."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from appliance.schema import load_schema
from appliance.synth.engine import render_sample, sample_seed
from training.audit.legibility import (
    PER_SHEET,
    TILE_H,
    draw_sheets,
    misses,
    relabel,
    report,
    wilson,
)
from training.evaluate import scoreable

SCHEMA = load_schema(Path(__file__).resolve().parents[1] / "config" / "schemas" / "motor.toml")


def _collected(tmp_path: Path, frames: int, drop: dict[int, str]) -> Path:
    """A reads file as ``training.calibrate.collect`` writes it, whose text runs are the
    frames' true text items, less the value of field ``drop[index]`` (a reader's miss)."""
    path = tmp_path / "station.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for index in range(frames):
            seed = sample_seed(11, "station", index)
            labels = render_sample(seed, schema=SCHEMA, split="station").labels
            gone = labels["fields"][drop[index]]["value"] if index in drop else None
            words = [{"text": item["text"]} for item in labels["items"]
                     if item["text"] != gone]
            handle.write(json.dumps({
                "split": "station", "index": index, "seed": seed, "params": labels["params"],
                "fields": labels["fields"], "words": words}) + "\n")
    return path


def test_audit_finds_the_missed_values_draws_them_and_counts_judgments(tmp_path: Path) -> None:
    path = _collected(tmp_path, 2, {})
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert misses(path) == []                         # every true run read: nothing missed
    field = next(name for name, truth in records[1]["fields"].items()
                 if scoreable(truth) and name in ("serial", "model", "voltage"))
    path = _collected(tmp_path, 2, {1: field})
    found = misses(path)
    assert [(m["index"], m["field"], m["legible"]) for m in found] == [(1, field, None)]
    assert found[0]["value"] == records[1]["fields"][field]["value"]

    sheets = draw_sheets(found, SCHEMA, "station", tmp_path / "sheets")
    image = cv2.imread(str(sheets[0]))
    assert image is not None and image.shape[0] == TILE_H and len(sheets) == 1
    assert image.std() > 10                           # a crop, not a blank tile

    legible_values = sum(scoreable(t) for r in records for t in r["fields"].values())
    judged = report(path, [dict(found[0], legible=False)])
    assert judged["missed"] == 1 and judged["judged_illegible"] == 1
    assert judged["values_legible_by_label"] == legible_values
    assert judged["values_in_text_among_legible_by_eye"] == 1.0  # the one miss was unreadable
    judged = report(path, [dict(found[0], legible=True)])
    assert judged["values_in_text_among_legible_by_eye"] == round(
        (legible_values - 1) / legible_values, 4)
    with pytest.raises(ValueError, match="no judgment"):
        report(path, found)

    # relabelled frames: a value judged unreadable is no longer held against the reader
    with pytest.raises(ValueError, match=r"1 misses of frames 0\.\.1 are not judged: frame 1"):
        relabel(path, found, first=2)
    kept = relabel(path, [dict(found[0], legible=False)], first=2)
    assert [r["index"] for r in kept] == [0, 1]
    assert kept[1]["fields"][field]["legible"] is False
    assert relabel(path, [dict(found[0], legible=True)], first=2)[1]["fields"][field]["legible"]
    plates = relabel(path, [dict(found[0], legible=False)], first=2, legible_plates_only=True)
    assert 1 not in [r["index"] for r in plates]
    assert [r["index"] for r in relabel(path, [], first=1)] == [0]  # frame 0: nothing missed


def test_wilson_interval_holds_the_share_and_narrows_with_more_judgments() -> None:
    low, high = wilson(65, 96)
    assert low < 65 / 96 < high and (round(low, 2), round(high, 2)) == (0.58, 0.76)
    wide, narrow = wilson(10, 20), wilson(500, 1000)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    assert wilson(0, 0) == (0.0, 1.0) and PER_SHEET % 2 == 0
