"""An "oracle OCR": the true text runs of a synthetic plate, with their boxes, as a reader
would hand them to the field attachment. No pixels are rendered, so thousands of plates
are laid out in a minute on one core.

Two ways of cutting runs, because detectors differ: ``items`` gives every label, value and
distractor as its own run; ``merged`` joins runs that sit on one baseline with less than a
character's gap (what a text detector such as DB does with ``Voltage: 230 V``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from appliance.reader.lines import Line, Word, group_lines
from appliance.schema import PlateSchema
from appliance.synth.engine import sample_seed
from appliance.synth.layout import Layout, build_layout, plate_values

RUN_MODES = ("items", "merged")


@dataclass
class OraclePlate:
    """One laid-out plate: the values it carries, which are drawn, and its text runs."""

    seed: int
    values: dict[str, str]
    shown: set[str]
    layout_kind: str
    lines: list[Line]


def layout_kind(layout: Layout) -> str:
    """A short name for the layout: its placement and column count (``beside/2``)."""
    params = layout.params
    placement = str(params.get("placement"))
    return placement if placement in ("table",) else f"{placement}/{params.get('columns')}"


def _words(layout: Layout) -> list[Word]:
    words = []
    for item in layout.items:
        if not item.text.strip():
            continue
        x0, y0, x1, y1 = item.bbox()
        words.append(Word(item.text, (round(x0), round(y0), round(x1), round(y1)), 1.0))
    return words


def merge_runs(words: list[Word], *, gap: float = 0.9) -> list[Word]:
    """Join words of one line whose gap is under ``gap`` × their height into one run."""
    merged: list[Word] = []
    for line in group_lines(words):
        current = line.words[0]
        for word in line.words[1:]:
            height = max(current.box[3] - current.box[1], word.box[3] - word.box[1], 1)
            same_row = abs((current.box[1] + current.box[3]) - (word.box[1] + word.box[3])) \
                < 0.6 * height
            if same_row and word.box[0] - current.box[2] < gap * height:
                box = (current.box[0], min(current.box[1], word.box[1]), word.box[2],
                       max(current.box[3], word.box[3]))
                current = Word(f"{current.text} {word.text}", box, 1.0)
            else:
                merged.append(current)
                current = word
        merged.append(current)
    return merged


def oracle_plate(schema: PlateSchema, *, seed: int, split: str, index: int,
                 runs: str = "items") -> OraclePlate:
    """Lay out sample ``index`` of ``split`` exactly as the renderer would, and return its
    true text runs grouped into lines."""
    if runs not in RUN_MODES:
        raise ValueError(f"unknown run mode {runs!r} (one of {', '.join(RUN_MODES)})")
    plate_seed = sample_seed(seed, split, index)
    rng = random.Random(plate_seed)
    values = plate_values(schema, rng)
    layout = build_layout(schema, values, rng, split=split)
    words = _words(layout)
    if runs == "merged":
        words = merge_runs(words)
    shown = {item.field for item in layout.items if item.role == "value" and item.field}
    return OraclePlate(plate_seed, values, shown, layout_kind(layout), group_lines(words))
