"""A dot-matrix print head's own fonts: fixed grids of dots, as ink-jet coders and dot-peen
markers print them.

A print head does not sample a plate's typeface: it fires its own character matrix, 5 × 7 up
to about 9 × 15 dots, one dot per stroke. The X11 "misc-fixed" and "clean" bitmap fonts
(Debian ``xfonts-base``, public domain) are such matrices: every pixel of a glyph is one dot.
Session 17 thinned an outline face and sampled it on a dot grid instead; on a coarse grid a
``6``'s hooked top came out as a ``5``'s flat one, so the labels taught a look-alike.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from appliance.synth.fonts import FONT_DIRS, FontInfo, FontNotFound
from appliance.synth.layout import load_font

#: single-dot-stroke matrices and the split each serves (a few held out, as plate fonts are)
PRINT_HEADS: dict[str, str] = {
    "5x7": "train", "6x10": "train", "6x13": "train", "7x13": "train", "8x13": "train",
    "9x15": "train", "clR6x12": "train", "clR8x13": "train",
    # session 19: more matrices to train on, so a head nobody trained on reads like one
    # (10x20, 12x24 and the bold faces draw two-dot strokes: left out)
    "5x8": "train", "6x12": "train", "8x16": "train", "clR5x8": "train",
    "clR6x10": "train", "clR7x10": "train", "clR8x10": "train", "clR8x14": "train",
    "clR8x16": "train", "clR9x15": "train",
    "6x9": "heldout", "7x14": "heldout", "9x18": "heldout", "clR7x12": "heldout",
}
#: a capital spans about this share of a matrix's rows; dots closer than MIN_PITCH pixels
#: merge into strokes once the frame is blurred
CAPITAL_SHARE = 0.7
MIN_PITCH = 2.0
#: a print head's dots stand about as far apart across as down: no less than this share
MIN_ASPECT = 0.8
_MISSING = "\U0010fffd"  # a code point no matrix has: what a missing glyph looks like


@dataclass(frozen=True)
class PrintHead:
    """One print-head matrix: its font file, its height in dots and the split it serves."""

    name: str
    path: Path
    dots: int
    split: str

    def covers(self, text: str) -> bool:
        """True when the matrix has a glyph for every non-space character of ``text``."""
        return all(ch.isspace() or _has_glyph(self.path, self.dots, ch) for ch in set(text))


@lru_cache(maxsize=4096)
def _has_glyph(path: Path, dots: int, ch: str) -> bool:
    font = load_font(path, dots)
    return bytes(font.getmask(ch)) != bytes(font.getmask(_MISSING))


@lru_cache(maxsize=1)
def print_heads() -> tuple[PrintHead, ...]:
    """Every print-head matrix installed (``xfonts-base``), in a fixed order."""
    found: dict[str, Path] = {}
    for base in FONT_DIRS:
        if base.is_dir():
            for path in sorted(base.rglob("*.pcf.gz")):
                found.setdefault(path.name.removesuffix(".pcf.gz"), path)
    return tuple(PrintHead(name, found[name], int(name.split("x")[1]), split)
                 for name, split in PRINT_HEADS.items() if name in found)


def print_head(font: FontInfo, text: str, *, width: float, height: float
               ) -> PrintHead | None:
    """The matrix a plate set in ``font`` prints ``text`` with, in a ``width`` × ``height``
    pixel box: one of the split's heads that has every character, whose dots stand at least
    ``MIN_PITCH`` pixels apart there and whose matrix fits the box with dots about as far
    apart across as down (``MIN_ASPECT``), the same one for the same plate font and box.
    Failing the fit, the head that comes closest. None when no head has every character.
    Raises ``FontNotFound`` when no matrix is installed at all: dot matrix would silently
    change its look (and the training data) otherwise."""
    if not print_heads():
        raise FontNotFound("no print-head matrices installed (Debian xfonts-base); run the "
                           "README set-up")
    heads = [h for h in print_heads() if h.split == font.split and h.covers(text)]
    if not heads:
        return None
    spaced = [h for h in heads if height / (CAPITAL_SHARE * h.dots) >= MIN_PITCH] or \
        [min(heads, key=lambda h: h.dots)]
    aspects = [_aspect(h, text, width, height) for h in spaced]
    fitting = [h for h, a in zip(spaced, aspects, strict=True) if a >= MIN_ASPECT]
    if not fitting:
        return spaced[int(np.argmax(aspects))]
    return fitting[zlib.crc32(font.stem.encode()) % len(fitting)]


def _aspect(head: PrintHead, text: str, width: float, height: float) -> float:
    """Column pitch over row pitch when ``head``'s matrix for ``text`` fills the box."""
    rows, cols = dot_grid(head, text).shape
    return (width / cols) / (height / rows)


@lru_cache(maxsize=4096)
def dot_grid(head: PrintHead, text: str) -> np.ndarray:
    """Where ``head`` fires a dot for ``text``: a boolean rows × columns grid, one cell per
    dot position, cropped to the dots (columns between characters kept). Cached, so
    read-only: choosing a head and printing with it render the grid once."""
    font = load_font(head.path, head.dots)
    width = max(1, int(font.getlength(text)) + 2)
    drawn = Image.new("1", (width, 2 * head.dots), 0)
    ImageDraw.Draw(drawn).text((1, 0), text, font=font, fill=1)
    grid = np.asarray(drawn, dtype=bool)
    rows, cols = np.nonzero(grid.any(1))[0], np.nonzero(grid.any(0))[0]
    dots = grid[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] if rows.size \
        else np.zeros((1, 1), bool)
    dots.flags.writeable = False
    return dots
