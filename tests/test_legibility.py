"""What a person can read in a rendered frame: dot matrix as a print head's own matrix, and each
character's contrast against its plate (glare, worn ink or a faint mark on one character)."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from appliance.synth.fonts import FontInfo, catalogue
from appliance.synth.glyphs import PRINT_HEAD_KINDS, _dotmatrix, print_head_font, thin
from appliance.synth.layout import TextItem
from appliance.synth.legibility import character_visibility, characters_clear
from appliance.synth.printhead import dot_grid, print_head, print_heads


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


LOOK_ALIKES = [tuple(pair) for pair in ("65", "8B", "0O", "1I", "2Z", "5S", "0D", "3B", "G6", "Q0",
                                         "83", "1L")]


def test_every_print_head_tells_look_alikes_apart() -> None:
    """A print head's matrix gives `6` and `5` (and the other look-alike pairs of codes)
    different dots: session 17's thinned outline face, sampled on a coarse grid, turned a
    `6`'s hooked top into a `5`'s flat one while the label still said `6`."""
    heads = print_heads()
    assert {h.split for h in heads} == {"train", "heldout"}
    for head in heads:
        for a, b in LOOK_ALIKES:
            first, second = dot_grid(head, a), dot_grid(head, b)
            rows, cols = (max(x, y) for x, y in zip(first.shape, second.shape, strict=True))
            differ = (np.pad(first, ((0, rows - first.shape[0]), (0, cols - first.shape[1])))
                      != np.pad(second, ((0, rows - second.shape[0]),
                                         (0, cols - second.shape[1]))))
            assert differ.sum() >= 2, f"{head.name}: {a} and {b} print alike"


def test_every_print_head_draws_one_dot_strokes() -> None:
    """A stroke is one dot wide on every head (a vertical bar is one column of dots): a
    two-dot stroke blurs into a bar a person cannot read as dots (session 17)."""
    for head in print_heads():
        assert dot_grid(head, "|").shape[1] == 1, head.name


@pytest.mark.parametrize("text", ["6", "IP 65", "8B-0O"])
def test_dot_matrix_prints_one_round_dot_per_matrix_cell(text: str) -> None:
    """Each dot the head fires is one separate round dot, and there is one per matrix cell:
    strokes are one dot wide, counters stay open."""
    font = _bold_font()
    item = TextItem(text, "value", "model", 10, 10, font, 120, "dotmatrix")
    x0, y0, x1, y1 = (int(v) for v in item.bbox())
    head = print_head(font, text, width=x1 - x0 + 2, height=y1 - y0 + 2)
    assert head is not None
    for seed in range(3):
        ink = Image.new("L", (160 * len(text) + 40, 200), 0)
        _dotmatrix(item, ink, random.Random(seed), True)
        # neighbouring dots may touch (radius up to 0.48 pitch, and PIL draws an ellipse a
        # pixel wider each side): two pixels off each edge part them
        dots = cv2.erode((np.asarray(ink) > 64).astype(np.uint8), np.ones((5, 5), np.uint8))
        count, _ = cv2.connectedComponents(dots)
        assert count - 1 == dot_grid(head, text).sum()


def test_a_print_head_serves_its_plate_fonts_split_the_same_each_time() -> None:
    """Held-out plate fonts get held-out heads; the same plate font and size get the same
    head; text no head has (Chinese label words) gets none, and the outline face path."""
    for font in catalogue()[:40]:
        head = print_head(font, "SR130961", width=200, height=30)
        assert head is not None and head.split == font.split
        assert print_head(font, "SR130961", width=200, height=30) == head
        assert print_head(font, "型号", width=200, height=30) is None


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


def test_a_dot_matrix_value_stays_inside_its_layout_box() -> None:
    """The layout made room for the value in the plate's font; a print head's matrix that is
    wider than that room prints smaller rather than run into the next item (it did on
    condensed plate fonts in the first matrix renders)."""
    font = next(f for f in catalogue() if f.kind == "condensed" and f.covers("63362790TE"))
    item = TextItem("63362790TE", "value", "serial", 10, 10, font, 40, "dotmatrix")
    x0, y0, x1, y1 = item.bbox()
    for seed in range(3):
        ink = Image.new("L", (600, 120), 0)
        box = _dotmatrix(item, ink, random.Random(seed), True)
        cols = np.nonzero(np.asarray(ink).max(axis=0) > 64)[0]
        rows = np.nonzero(np.asarray(ink).max(axis=1) > 64)[0]
        assert x0 - 2 <= cols[0] and cols[-1] <= x1 + 2
        assert y0 - 2 <= rows[0] and rows[-1] <= y1 + 2
        assert box[0] <= cols[0] + 1 and cols[-1] <= box[2] + 1


def test_without_print_head_matrices_the_renderer_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No silent change of look: dot matrix without its matrices is a clear error naming the
    Debian package, not quietly another renderer."""
    from appliance.synth import printhead
    from appliance.synth.fonts import FontNotFound

    monkeypatch.setattr(printhead, "FONT_DIRS", (tmp_path,))
    printhead.print_heads.cache_clear()
    try:
        with pytest.raises(FontNotFound, match="xfonts-base"):
            print_head(_bold_font(), "6", width=40, height=40)
    finally:
        monkeypatch.undo()
        printhead.print_heads.cache_clear()
    assert printhead.print_heads()
