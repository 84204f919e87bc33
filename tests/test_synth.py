"""The synthetic engine: render-and-compare boxes, reproducible seeds, the card's statistics,
values in each field's format, and a new field added by a schema file alone."""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from appliance.schema import load_schema
from appliance.synth.dataset import statistics, write_dataset
from appliance.synth.engine import render_sample, sample_seed
from appliance.synth.layout import SHORT_LABELS
from appliance.synth.values import DISTRACTORS, value_for
from appliance.synth.words import random_text

REPO = Path(__file__).resolve().parent.parent
SCHEMA_FILE = REPO / "config" / "schemas" / "motor.toml"
SCHEMA = load_schema(SCHEMA_FILE)
CARD = REPO / "docs" / "synthetic-data.md"
SHORT_WORDS = {w.casefold() for words in SHORT_LABELS.values() for w in words}


def _diff_mask(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # identical inputs give identical JPEG blocks, so any change is the value's own ink
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > 10


@pytest.mark.parametrize("seed", [sample_seed(11, "dev", i) for i in range(10)])
def test_every_value_is_drawn_inside_its_box(seed: int) -> None:
    """Render with and without each value: the pixels that change lie inside its box."""
    full = render_sample(seed, schema=SCHEMA, split="dev")
    drawn = 0
    checked = 0
    for index, item in enumerate(full.labels["items"]):
        if item["role"] != "value" or item["cut"] or item["occluded"] > 0:
            continue
        field = full.labels["fields"][item["field"]]
        assert field["box"] == item["box"] and field["value"] == item["text"]
        without = render_sample(seed, schema=SCHEMA, split="dev", omit=frozenset({index}))
        changed = _diff_mask(full.image, without.image)
        x0, y0, x1, y1 = item["box"]
        margin = max(16, int(0.5 * (y1 - y0)))  # JPEG blocks and blur spread the ink a bit
        ys, xs = np.nonzero(changed)
        checked += 1
        if len(xs) == 0:
            continue  # ink lost to glare or wear: nothing drawn, nothing to place
        drawn += 1
        inside = ((xs >= x0 - margin) & (xs <= x1 + margin)
                  & (ys >= y0 - margin) & (ys <= y1 + margin))
        assert inside.mean() > 0.97, (item["field"], item["text"], float(inside.mean()))
        strict = (xs >= x0 - 2) & (xs <= x1 + 2) & (ys >= y0 - 2) & (ys <= y1 + 2)
        assert strict.any(), item["field"]
    if checked == 0:  # plate cut by the frame edge or covered: the labels must say so
        assert full.labels["plate"]["cut"] or full.labels["params"]["occlusion"]
        return
    # faint laser etching under shadow, glare or worn print can leave no visible trace
    assert drawn >= 0.7 * checked


def test_same_seed_same_image_and_labels() -> None:
    a = render_sample(123, schema=SCHEMA)
    b = render_sample(123, schema=SCHEMA)
    c = render_sample(124, schema=SCHEMA)
    assert a.jpeg == b.jpeg
    assert a.labels == b.labels
    assert a.jpeg != c.jpeg


def test_cli_reproduces_across_worker_counts(tmp_path: Path) -> None:
    one = write_dataset(tmp_path / "one", n=6, seed=5, schema_file=SCHEMA_FILE, workers=1)
    two = write_dataset(tmp_path / "two", n=6, seed=5, schema_file=SCHEMA_FILE, workers=2)
    assert one["n"] == two["n"] == 6
    a = (tmp_path / "one" / "labels.jsonl").read_text()
    b = (tmp_path / "two" / "labels.jsonl").read_text()
    assert a == b
    for record in map(json.loads, a.splitlines()):
        assert (tmp_path / "one" / record["image"]).read_bytes() == \
            (tmp_path / "two" / record["image"]).read_bytes()
    dev = write_dataset(tmp_path / "dev", n=2, seed=5, schema_file=SCHEMA_FILE, split="dev")
    assert dev["n"] == 2
    assert (tmp_path / "dev" / "images" / "dev-0000000.jpg").read_bytes() != \
        (tmp_path / "one" / "images" / "train-0000000.jpg").read_bytes()


def test_labels_are_complete(tmp_path: Path) -> None:
    write_dataset(tmp_path, n=3, seed=2, schema_file=SCHEMA_FILE, crops=True)
    for line in (tmp_path / "labels.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert set(record["fields"]) == set(SCHEMA.fields)
        assert len(record["plate"]["corners"]) == 4
        for field in record["fields"].values():
            if field["shown"]:
                assert len(field["box"]) == 4 and len(field["quad"]) == 4
        assert {"style", "material", "rotation", "jpeg_quality",
                "char_height_px"} <= set(record["params"])
        for crop in record["crops"]:
            path = tmp_path / crop["image"]
            assert path.is_file() and crop["text"]


def _card_stats() -> dict[str, object]:
    text = CARD.read_text(encoding="utf-8")
    match = re.search(r"```json\n(.*?)\n```", text, re.S)
    assert match, "the dataset card must carry its statistics as a JSON block"
    data: dict[str, object] = json.loads(match.group(1))["stats"]
    return data


def test_distribution_matches_the_card(tmp_path: Path) -> None:
    n = 120
    summary = write_dataset(tmp_path, n=n, seed=99, schema_file=SCHEMA_FILE, workers=2)
    got = summary["stats"]
    card = _card_stats()

    def close(p_card: float, p_got: float) -> bool:
        return abs(p_card - p_got) <= 4 * math.sqrt(max(p_card * (1 - p_card), 0.01) / n) + 0.02

    for key in ("style", "placement", "columns", "material"):
        for value, share in card[key].items():  # type: ignore[attr-defined]
            assert close(share, got[key].get(value, 0.0)), (key, value, share, got[key])
    for key in ("plate_cut", "occluded", "glare", "defocus", "motion_blur", "low_resolution",
                "rotated_90_or_180", "field_shown"):
        assert close(card[key], got[key]), (key, card[key], got[key])  # type: ignore[arg-type]
    heights = card["char_height_px"]
    assert abs(got["char_height_px"]["median"] - heights["median"]) < 4  # type: ignore[index]


@pytest.mark.parametrize("field", list(SCHEMA.fields))
def test_generated_values_have_the_field_format(field: str) -> None:
    rng = random.Random(field)
    spec = SCHEMA.fields[field]
    for _ in range(300):
        value = value_for(field, rng)
        assert spec.matches(value), (field, value)


def test_training_plates_carry_unknown_words_and_dev_plates_do_not() -> None:
    rng = random.Random(5)
    assert all(text.strip() and text.isprintable() for text in
               (random_text(rng) for _ in range(3000)))
    known = {lab.strip(":.").casefold() for spec in SCHEMA.fields.values()
             for lab in spec.labels}

    def label_words(split: str) -> tuple[set[str], set[str]]:
        labels, extras = set(), set()
        for i in range(8):
            items = render_sample(sample_seed(3, split, i), schema=SCHEMA, split=split
                                  ).labels["items"]
            for item in items:
                words = {w.strip(":.").casefold() for w in item["text"].split("/")}
                if item["role"] == "label" and not words <= known | SHORT_WORDS:
                    labels.add(item["text"])
                if item["role"] == "distractor" and item["text"] not in DISTRACTORS:
                    extras.add(item["text"])
        return labels, extras

    train_labels, train_extras = label_words("train")
    assert train_labels and train_extras   # made-up label words and random strings
    dev_labels, dev_extras = label_words("dev")
    assert not dev_labels                  # dev keeps the schema's words (comparable numbers)
    assert all(len(text) <= 3 for text in dev_extras)  # only logo letters and terminals


def test_a_new_field_needs_only_a_schema_file(tmp_path: Path) -> None:
    text = SCHEMA_FILE.read_text() + (
        '\n[fields.pressure]\nlabels = ["Max. pressure", "Druck"]\n'
        "value = '\\d{1,3}(?:[.,]\\d)? ?bar'\n"
        '[fields.pressure.synth]\nexamples = ["10 bar", "16 bar", "2.5 bar"]\n')
    schema_file = tmp_path / "pump.toml"
    schema_file.write_text(text)
    schema = load_schema(schema_file)
    seen = False
    for i in range(6):
        sample = render_sample(sample_seed(3, "train", i), schema=schema)
        field = sample.labels["fields"]["pressure"]
        assert field["value"] in {"10 bar", "16 bar", "2.5 bar"}
        seen = seen or field["shown"]
    assert seen


def test_synth_cli_reports_a_bad_schema(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[fields.a]\nvalue = "("\n')
    out = subprocess.run([sys.executable, "-m", "appliance.cli", "synth", "--out",
                          str(tmp_path / "o"), "-n", "1", "--schema", str(bad)],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 1
    assert "bad.toml: fields.a.value" in out.stderr


def test_statistics_of_nothing_is_empty() -> None:
    assert statistics([])["plate_cut"] == 0.0


@pytest.mark.parametrize("split", ["heldout", "station-heldout"])
def test_held_out_splits_write_every_value_in_a_held_out_face(split: str) -> None:
    """Held-out means held out: every value (and every label a held-out face can write) is
    in a font family kept out of training. Until session 18 a plate with a Chinese label or
    a font kind the held-out families lack fell back to training fonts: 42 % of the held-out
    split's items."""
    from appliance.synth.fonts import catalogue, split_covers
    from appliance.synth.layout import build_layout, plate_values

    family_split = {f.stem: f.split for f in catalogue()}
    for seed in range(60):
        rng = random.Random(seed)
        layout = build_layout(SCHEMA, plate_values(SCHEMA, rng), rng, split=split)
        for item in layout.items:
            if item.role == "value" or split_covers("heldout", item.text):
                assert family_split[item.font.stem] == "heldout", (seed, item.text)


def test_station_heldout_frames_are_station_frames_in_held_out_faces() -> None:
    """``station-heldout`` is the station's camera (the whole plate in the frame) with the
    held-out faces, so a reader's generality is measured at the station too."""
    from appliance.synth.fonts import catalogue

    family_split = {f.stem: f.split for f in catalogue()}
    for index in range(3):
        labels = render_sample(sample_seed(5, "station-heldout", index), schema=SCHEMA,
                               split="station-heldout").labels
        assert not labels["plate"]["cut"] and labels["params"]["occlusion"] is None
        values = [i for i in labels["items"] if i["role"] == "value"]
        assert values and {family_split[i["font"]] for i in values} == {"heldout"}
