"""Draw a layout's text into ink and relief masks, in the plate's glyph styles.

``ink`` is how much of the ink colour covers a pixel; ``relief`` is raised or sunk metal that
catches light (engraved and stamped text). Items in ``omit`` are drawn with zero ink while
consuming the random stream the same way, so a test can render a plate with and without one
item and compare.
"""

from __future__ import annotations

import itertools
import random
import re
import zlib

import cv2
import numpy as np
from PIL import Image, ImageDraw

from appliance.synth.fonts import FontInfo, catalogue
from appliance.synth.layout import Layout, TextItem, load_font
from appliance.synth.printhead import MIN_ASPECT, dot_grid, print_head

Box = tuple[float, float, float, float]
#: font kinds a dot-matrix print head's own face looks like, and faces that are not plain
PRINT_HEAD_KINDS = ("sans", "mono", "din", "ocr", "technical")
_NOT_PLAIN = re.compile("Italic|Oblique|Cond|Narrow|Light|Thin")
#: Zhang-Suen neighbours P2..P9 (north, then clockwise) as (row, column) shifts for np.roll
_NEIGHBOURS = ((1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1))


def _union(a: Box | None, b: Box) -> Box:
    if a is None:
        return b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def draw_items(layout: Layout, rng: random.Random, *, omit: frozenset[int] = frozenset(),
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Box]]:
    """Return (ink, relief, text, box per item) for ``layout``; masks are float32 0..1.
    ``text`` is where the items' glyphs are (ink or relief), without the plate's lines,
    boxes and emblems: what a person reading a value looks at."""
    size = (layout.width, layout.height)
    ink = Image.new("L", size, 0)
    relief = Image.new("L", size, 0)
    boxes: list[Box] = []
    for index, item in enumerate(layout.items):
        on = index not in omit
        if item.style == "stamped":
            boxes.append(_stamped(item, ink, relief, rng, on))
        elif item.style == "dotmatrix":
            boxes.append(_dotmatrix(item, ink, rng, on))
        else:
            strength = {"print": 1.0, "laser": rng.uniform(0.22, 0.45),
                        "engraved": rng.uniform(0.35, 0.7)}[item.style]
            font = load_font(item.font, item.size)
            ImageDraw.Draw(ink).text((item.x, item.y), item.text, font=font,
                                     fill=int(255 * strength) if on else 0)
            if item.style == "engraved":
                ImageDraw.Draw(relief).text((item.x, item.y), item.text, font=font,
                                            fill=255 if on else 0)
            boxes.append(item.bbox())
    text = np.maximum(np.asarray(ink, np.float32), np.asarray(relief, np.float32)) / 255.0
    draw = ImageDraw.Draw(ink)
    line_width = max(2, int(layout.height / 250))
    for box in layout.boxes:
        draw.rectangle(box, outline=200, width=line_width)
    for line in layout.lines:
        draw.line(line, fill=200, width=line_width)
    for x, y, s in layout.blocks:
        _code_block(draw, x, y, s, rng)
    for x, y, s, shape in layout.logos:
        _logo(draw, x, y, s, shape, line_width)
    for x, y, w, kind in layout.diagrams:
        _diagram(draw, x, y, w, kind, line_width)
    return (np.asarray(ink, np.float32) / 255.0, np.asarray(relief, np.float32) / 255.0, text,
            boxes)


def _stamped(item: TextItem, ink: Image.Image, relief: Image.Image, rng: random.Random,
             on: bool) -> Box:
    """Characters punched one by one: uneven depth, misaligned baseline and spacing."""
    font = load_font(item.font, item.size)
    box: Box | None = None
    x = item.x
    for ch in item.text:
        dy = rng.gauss(0, item.size * 0.04)
        dx = rng.gauss(0, item.size * 0.02)
        depth = rng.uniform(0.45, 1.0)
        pos = (x + dx, item.y + dy)
        if not ch.isspace():
            ImageDraw.Draw(ink).text(pos, ch, font=font, fill=int(120 * depth) if on else 0)
            ImageDraw.Draw(relief).text(pos, ch, font=font, fill=int(255 * depth) if on else 0)
            x0, y0, x1, y1 = font.getbbox(ch)
            box = _union(box, (pos[0] + x0, pos[1] + y0, pos[0] + x1, pos[1] + y1))
        x += font.getlength(ch)
    return box or item.bbox()


def _dotmatrix(item: TextItem, ink: Image.Image, rng: random.Random, on: bool) -> Box:
    """Dot-peen / ink-jet dot matrix: the print head's own character matrix
    (``printhead.print_head``), one round dot per cell, stretched over the item's box.

    Where no installed matrix has every character, the print head's plain outline face is
    thinned to its centre lines and sampled on a pitch grid instead (``_print_head_lines``).
    (Session 13 printed a dot wherever a bold glyph covered 15 % of a cell: counters filled
    and a person could not read most of those values.)"""
    x0, y0, x1, y1 = (int(v) for v in item.bbox())
    w, h = max(1, x1 - x0 + 2), max(1, y1 - y0 + 2)
    spacing = rng.uniform(8.0, 11.0)  # drawn for either path: keep the stream aligned
    radius_share = rng.uniform(0.32, 0.48)
    level = int(255 * rng.uniform(0.7, 1.0))
    level = level if on else 0
    head = print_head(item.font, item.text, width=w, height=h)
    if head is not None:
        grid = dot_grid(head, item.text)
        rows, cols = grid.shape
        pitch_y = h / rows
        # dots about as far apart across as down, and the matrix inside the layout's box,
        # so it never runs into the next item: a matrix too wide for the box prints smaller
        pitch_x = min(w / cols, 1.25 * pitch_y)
        top = 0.0
        if pitch_x < MIN_ASPECT * pitch_y:
            pitch_y = pitch_x / MIN_ASPECT
            top = (h - rows * pitch_y) / 2
        xs, ys = (np.arange(cols) + 0.5) * pitch_x, top + (np.arange(rows) + 0.5) * pitch_y
        box = (float(x0), y0 - 1 + top, x0 - 1 + cols * pitch_x, y0 - 1 + top + rows * pitch_y)
    else:
        pitch = max(2.0, item.size / spacing)  # 6-8 dots per capital
        # and at least five columns of dots per character, as a print head's matrix has
        pitch = pitch_x = pitch_y = max(2.0, min(pitch, w / max(1, len(item.text)) / 5))
        cell = max(1, round(pitch))
        crossed = cv2.blur(_print_head_lines(item, w, h), (cell, cell))
        ys, xs = np.arange(pitch / 2, h, pitch), np.arange(pitch / 2, w, pitch)
        # a float arange can overshoot its stop by a rounding error: keep indices in the mask
        grid = crossed[np.minimum(ys.astype(int), h - 1)[:, None],
                       np.minimum(xs.astype(int), w - 1)[None, :]] > 0
        box = (float(x0), float(y0), float(x1), float(y1))
    radius = min(pitch_x, pitch_y) * radius_share
    draw = ImageDraw.Draw(ink)
    for row, col in zip(*np.nonzero(grid), strict=True):
        cx, cy = x0 - 1 + xs[col], y0 - 1 + ys[row]
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=level)
    return box


def print_head_font(font: FontInfo, text: str) -> FontInfo:
    """The face a dot-matrix head writes ``text`` in on a plate set in ``font``: a plain
    upright face of the same font split, the same one for the same plate font. A print head
    has its own simple font; the centre lines of serif, segment, condensed or italic faces
    came out as dot clutter that nobody could read (session 17's audit by eye)."""
    faces = [f for f in catalogue() if f.split == font.split and f.kind in PRINT_HEAD_KINDS
             and not _NOT_PLAIN.search(f.stem) and f.covers(text)]
    if not faces:
        return font
    return faces[zlib.crc32(font.stem.encode()) % len(faces)]


def _print_head_lines(item: TextItem, w: int, h: int) -> np.ndarray:
    """The centre lines of ``item``'s text in its print-head face, stretched over the item's
    own box (the layout, made with the plate's font, still holds it): an h × w float mask.
    Thinned where the glyphs are large, so thin strokes do not break when squeezed."""
    face = print_head_font(item.font, item.text)
    size = max(96, 2 * h)
    font = load_font(face, size)
    left, top, right, bottom = (int(v) for v in font.getbbox(item.text))
    drawn = Image.new("L", (max(1, right - left + 2), max(1, bottom - top + 2)), 0)
    ImageDraw.Draw(drawn).text((1 - left, 1 - top), item.text, font=font, fill=255)
    mask = np.asarray(drawn) >= 128
    lines = thin(mask)
    # thinning can erase a small blob whole (a full stop, the dot of an i): keep its centre
    count, labels, _, centres = cv2.connectedComponentsWithStats(mask.astype(np.uint8),
                                                                   connectivity=8)
    kept = np.zeros(count, bool)
    kept[labels[lines]] = True
    for label in np.nonzero(~kept[1:])[0] + 1:
        lines[int(centres[label][1]), int(centres[label][0])] = True
    rows, cols = np.nonzero(lines)
    out = np.zeros((h, w), np.float32)
    out[(rows * (h - 1) / max(1, drawn.height - 1)).astype(int),
          (cols * (w - 1) / max(1, drawn.width - 1)).astype(int)] = 1.0
    return out


def thin(mask: np.ndarray) -> np.ndarray:
    """A boolean mask thinned to one-pixel-wide centre lines (Zhang and Suen, 1984)."""
    image = np.pad(mask.astype(np.uint8), 1)
    changed = True
    while changed:
        changed = False
        for sub_step in (0, 1):
            p2, p3, p4, p5, p6, p7, p8, p9 = (np.roll(image, shift, (0, 1))
                                              for shift in _NEIGHBOURS)
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)
            neighbours = p2 + p3 + p4 + p5 + p6 + p7 + p8 + p9
            transitions = sum(((a == 0) & (b == 1)).astype(np.uint8)
                              for a, b in itertools.pairwise(ring))
            if sub_step == 0:
                spare = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                spare = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = ((image == 1) & (neighbours >= 2) & (neighbours <= 6)
                      & (transitions == 1) & spare)
            if remove.any():
                image = image.copy()
                image[remove] = 0
                changed = True
    return image[1:-1, 1:-1].astype(bool)


def _logo(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, shape: str,
          width: int) -> None:
    """A maker's emblem outline around its letters."""
    if shape == "circle":
        draw.ellipse((x, y, x + s, y + s), outline=220, width=width)
    elif shape == "square":
        draw.rectangle((x, y, x + s, y + s), outline=220, width=width)
    elif shape == "diamond":
        draw.polygon([(x + s / 2, y), (x + s, y + s / 2), (x + s / 2, y + s), (x, y + s / 2)],
                     outline=220, width=width)
    else:
        draw.polygon([(x + s / 2, y), (x + s, y + s), (x, y + s)], outline=220, width=width)


def _diagram(draw: ImageDraw.ImageDraw, x: float, y: float, w: float, kind: str,
             width: int) -> None:
    """Six terminal studs and the links of a Δ or Y connection."""
    h = w * 0.55
    r = h * 0.08
    studs = [[(x + (c + 0.5) * w / 3, y + h * (0.32 + 0.36 * row)) for c in range(3)]
             for row in range(2)]
    for row in studs:
        for cx, cy in row:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=220, width=width)
    top, bottom = studs
    if kind == "star":  # the three upper studs bridged together
        draw.line((top[0][0] + r, top[0][1], top[2][0] - r, top[2][1]), fill=220, width=width)
    else:               # each upper stud linked to the lower one beside it
        for (tx, ty), (bx, by) in zip(top, bottom, strict=True):
            draw.line((tx, ty + r, bx, by - r), fill=220, width=width)


def _code_block(draw: ImageDraw.ImageDraw, x: float, y: float, size: float,
                rng: random.Random) -> None:
    """A QR/DataMatrix-like block of random modules (a distractor, never read)."""
    n = rng.choice((14, 18, 21))
    cell = size / n
    for i in range(n):
        for j in range(n):
            finder = (i < 3 and j < 3) or (i < 3 and j >= n - 3) or (i >= n - 3 and j < 3)
            if finder or rng.random() < 0.45:
                draw.rectangle((x + j * cell, y + i * cell, x + (j + 1) * cell,
                                y + (i + 1) * cell), fill=230)
