"""What a person can read in a rendered frame: dot-matrix strokes one dot wide, and each
character's contrast against its plate (glare, worn ink or a faint mark on one character)."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest
from PIL import Image

from appliance.synth.fonts import FontInfo, catalogue
from appliance.synth.glyphs import PRINT_HEAD_KINDS, _dotmatrix, print_head_font, thin
from appliance.synth.layout import TextItem
from appliance.synth.legibility import character_visibility, characters_clear


def test_thinning_leaves_one_pixel_wide_centre_lines() -> None:
    """A bar 9 px thick thins to a line one pixel wide along its middle, as long as the bar."""
    mask = np.zeros((40, 80), bool)
    mask[14:23, 10:70] = True
    lines = thin(mask)
    columns = lines[:, 20:60]
    assert (columns.sum(axis=0) == 1).all()
    assert set(np.nonzero(columns)[0]) <= {17, 18, 19}
    assert lines.sum() >= 50


def _bold_font() -> FontInfo:
    return next(f for f in catalogue() if f.kind == "sans" and f.stem.endswith("-Bold")
                and f.covers("O"))


@pytest.mark.parametrize("size", [40, 90, 120])
def test_dot_matrix_draws_a_bold_stem_one_dot_wide(size: int) -> None:
    """A print head draws each stroke one dot wide: a bold `I` is one column of dots, no wider
    than the dot pitch (session 13's coverage rule printed it two or three dots wide, which
    filled counters and merged letters into blobs a person could not read)."""
    item = TextItem("I", "value", "model", 10, 10, _bold_font(), size, "dotmatrix")
    for seed in range(3):
        ink = Image.new("L", (2 * size, 2 * size), 0)
        _dotmatrix(item, ink, random.Random(seed), True)
        columns = np.asarray(ink).max(axis=0) > 64
        starts = np.diff(np.r_[0, columns.astype(int), 0]) == 1
        assert starts.sum() == 1, "the stem is one run of dots"
        # a dot spans 0.64-0.96 pitches, and PIL draws an ellipse a pixel wider each side
        assert columns.sum() <= size / 8 + 2, f"{columns.sum()} px wide, pitch ≥ {size / 11:.1f}"


def _plate_with_text(contrast: float, *, faint_last: float | None = None) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    grey = np.full((80, 400), 150.0) + rng.normal(0, 2.0, (80, 400))
    strokes = np.zeros((80, 400), np.float32)
    for k, x in enumerate(range(40, 360, 40)):
        cv2.rectangle(strokes, (x, 20), (x + 24, 60), 1.0, 5)
        level = contrast if faint_last is None or k < 7 else faint_last
        grey[strokes.astype(bool) & (np.arange(400)[None, :] >= x)
             & (np.arange(400)[None, :] < x + 25)] -= level
    return grey.clip(0, 255).astype(np.uint8), strokes, strokes.copy()


QUAD = np.array([[30, 12], [370, 12], [370, 68], [30, 68]], np.float32)


def test_clear_characters_are_clear() -> None:
    """Dark strokes on a quiet plate: every window stands well off it."""
    seen = character_visibility(*_plate_with_text(80), QUAD)
    assert seen is not None and seen.contrast > 40 and seen.snr > 10
    assert characters_clear([seen.contrast, seen.snr])


def test_one_character_lost_to_glare_makes_the_value_unclear() -> None:
    """The same value with its last character washed out: the weakest window decides."""
    seen = character_visibility(*_plate_with_text(80, faint_last=2), QUAD)
    assert seen is not None and seen.contrast < 12
    assert not characters_clear([seen.contrast, seen.snr])


def test_nothing_to_measure_is_left_to_the_frame_limits() -> None:
    """No stroke inside the quad: nothing to judge, so the frame-wide limits decide."""
    grey, strokes, marks = _plate_with_text(80)
    empty = np.zeros_like(strokes)
    assert character_visibility(grey, empty, marks, QUAD) is None
    assert characters_clear(None)


def test_a_print_head_writes_in_a_plain_face_of_the_plate_fonts_split() -> None:
    """Serif, segment or condensed plate fonts are drawn in a plain upright face of the same
    split (held-out faces stay held out), the same face each time for the same plate font."""
    fancy = [f for f in catalogue() if f.kind in ("serif", "segment7", "condensed")][:6]
    assert fancy
    for font in fancy:
        face = print_head_font(font, "SR130961")
        assert face.kind in PRINT_HEAD_KINDS and face.split == font.split
        assert "Italic" not in face.stem and "Cond" not in face.stem
        assert print_head_font(font, "SR130961") == face


def test_a_full_stop_keeps_its_dot() -> None:
    """Thinning can erase a small blob whole; the decimal point of `1.1` still prints."""
    item = TextItem("1.1", "value", "power", 10, 10, _bold_font(), 60, "dotmatrix")
    ink = Image.new("L", (200, 120), 0)
    _dotmatrix(item, ink, random.Random(2), True)
    columns = np.asarray(ink).max(axis=0) > 64
    starts = np.nonzero(np.diff(np.r_[0, columns.astype(int), 0]) == 1)[0]
    assert len(starts) == 3, "two stems and the point between them"
