"""Plate layouts: where each label, value and distractor goes on the plate.

A layout is data: a list of :class:`TextItem` (plate pixel coordinates) and decorations.
Drawing them is :mod:`appliance.synth.glyphs`' job.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import ImageFont

from appliance.schema import PlateSchema
from appliance.synth.fonts import HELDOUT_SPLITS, FontInfo, pick_font, split_covers
from appliance.synth.values import DISTRACTORS, label_variant, value_for
from appliance.synth.words import pseudo_word, random_text

UNIT_FIELDS = ("voltage", "current", "power", "frequency", "speed", "ip_rating")
#: placements only the held-out split draws, to measure the attachment on layouts it never
#: saw: ``leader`` (``Voltage ........ 230 V``, values flush right) and ``caption`` (a value
#: with its label set small underneath)
HELDOUT_PLACEMENTS = ("leader", "caption")
SHORT_LABELS = {"voltage": ["U", "V", "Un"], "current": ["I", "A", "In"],
                "power": ["P", "kW", "Pn"], "frequency": ["f", "Hz"], "speed": ["n", "r/min"],
                "ip_rating": ["IP"]}


@dataclass
class TextItem:
    """One run of text on the plate."""

    text: str
    role: str                      # title | label | value | distractor
    field: str | None
    x: float
    y: float
    font: FontInfo
    size: int
    style: str = "print"           # print | engraved | stamped | dotmatrix | laser

    def bbox(self) -> tuple[float, float, float, float]:
        """Ink box in plate pixels (PIL's text box at (x, y))."""
        font = load_font(self.font, self.size)
        x0, y0, x1, y1 = font.getbbox(self.text)
        return (self.x + x0, self.y + y0, self.x + x1, self.y + y1)

    def width(self) -> float:
        """Advance width in plate pixels."""
        return float(load_font(self.font, self.size).getlength(self.text))


@dataclass
class Layout:
    """A whole plate: size, text items and decorations."""

    width: int
    height: int
    items: list[TextItem] = field(default_factory=list)
    lines: list[tuple[float, float, float, float]] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    blocks: list[tuple[float, float, float]] = field(default_factory=list)  # x, y, size (QR)
    logos: list[tuple[float, float, float, str]] = field(default_factory=list)  # x, y, size, shape
    diagrams: list[tuple[float, float, float, str]] = field(default_factory=list)  # x, y, w, Δ/Y
    params: dict[str, object] = field(default_factory=dict)


_FONT_CACHE: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}


def load_font(font: FontInfo | Path, size: int) -> ImageFont.FreeTypeFont:
    """A cached PIL font object (a plate font, or a font file such as a print head's)."""
    key = (str(font if isinstance(font, Path) else font.path), size)
    if key not in _FONT_CACHE:
        if len(_FONT_CACHE) > 512:
            _FONT_CACHE.clear()
        _FONT_CACHE[key] = ImageFont.truetype(key[0], size)
    return _FONT_CACHE[key]


def plate_values(schema: PlateSchema, rng: random.Random) -> dict[str, str]:
    """Random values for every field of ``schema`` (through each field's synth generator)."""
    values = {}
    for name, spec in schema.fields.items():
        synth = spec.synth or {}
        values[name] = value_for(name, rng, generator_name=synth.get("generator"),
                                 examples=synth.get("examples"))
    return values


def _pick_label(schema: PlateSchema, name: str, rng: random.Random, language: int) -> str | None:
    labels = schema.fields[name].labels
    if not labels:
        return None
    # a plate mostly keeps one language: the language index picks a consistent position
    consistent = rng.random() < 0.6
    label = labels[min(language, len(labels) - 1)] if consistent else rng.choice(labels)
    if rng.random() < 0.12 and len(labels) > 1:  # bilingual "Typ/Type"
        other = rng.choice(labels)
        if other != label:
            label = f"{label}/{other}"
    return label_variant(label, rng)


def build_layout(schema: PlateSchema, values: dict[str, str], rng: random.Random, *,
                 split: str) -> Layout:
    """Lay out ``values`` on a plate of random size, columns, label placement and fonts."""
    width = rng.randint(700, 1300)
    height = int(width / rng.uniform(1.15, 2.3))
    layout = Layout(width, height)
    margin = width * rng.uniform(0.04, 0.07)
    language = rng.randrange(8)
    columns = rng.choice((1, 1, 2, 2, 2, 3))
    placement = rng.choice(("beside", "beside", "beside", "above", "table"))
    if split in HELDOUT_SPLITS and rng.random() < 0.5:
        placement = rng.choice(HELDOUT_PLACEMENTS)  # layouts no other split ever shows
    style = rng.choices(("print", "engraved", "stamped", "dotmatrix", "laser"),
                        weights=(50, 12, 12, 12, 14))[0]
    value_style = style if rng.random() < 0.7 else rng.choice(("print", "stamped", "dotmatrix"))
    kinds: tuple[str, ...] = ()
    if rng.random() < 0.15:
        kinds = (rng.choice(("mono", "ocr", "din", "technical", "condensed")),)
    shown = [n for n in schema.fields
             if rng.random() < (0.985 if n in ("model", "serial") else 0.9)]
    body_items: list[tuple[str | None, str, str | None]] = []  # (field, value, label)
    title_field = "manufacturer" if "manufacturer" in shown and rng.random() < 0.85 else None
    for name in shown:
        if name == title_field:
            continue
        label = _pick_label(schema, name, rng, language)
        if name in UNIT_FIELDS and rng.random() < 0.3:
            label = None  # the unit says what it is
        if label and split == "train" and rng.random() < 0.2:
            label = label_variant(pseudo_word(rng), rng)  # a label word no schema has
        body_items.append((name, values[name], label))
    for _ in range(rng.randint(1, 6)):
        text = rng.choice(DISTRACTORS)
        if split == "train" and rng.random() < 0.6:
            text = random_text(rng)
        body_items.insert(rng.randint(0, len(body_items)), (None, text, None))
    if rng.random() < 0.5:  # model and serial usually come first
        body_items.sort(key=lambda it: 0 if it[0] in ("model", "serial") else 1)
    layout.params.update(columns=columns, placement=placement, style=style,
                         value_style=value_style, language=language, font_kinds=list(kinds))
    size = int(height / rng.uniform(11, 17))
    for _attempt in range(8):
        if _place(layout, schema, body_items, values, title_field, rng, split=split, size=size,
                  margin=margin, columns=columns, placement=placement, style=style,
                  value_style=value_style, kinds=kinds):
            break
        size = max(9, int(size * 0.85))
    if rng.random() < 0.7:
        inset = rng.uniform(4, 14)
        layout.boxes.append((inset, inset, width - inset, height - inset))
    if rng.random() < 0.25:
        qs = rng.uniform(0.12, 0.2) * height
        _place_decoration(layout, (width - margin - qs, height - margin - qs, qs, qs),
                          lambda: layout.blocks.append((width - margin - qs,
                                                        height - margin - qs, qs)))
    if rng.random() < 0.3:
        _add_logo(layout, rng, margin, split)
    if rng.random() < 0.25:
        _add_wiring_diagram(layout, rng, margin, split)
    return layout


def _free(layout: Layout, rect: tuple[float, float, float, float]) -> bool:
    x, y, w, h = rect
    if x < 0 or y < 0 or x + w > layout.width or y + h > layout.height:
        return False
    for item in layout.items:
        x0, y0, x1, y1 = item.bbox()
        if x0 < x + w and x < x1 and y0 < y + h and y < y1:
            return False
    return True


def _place_decoration(layout: Layout, rect: tuple[float, float, float, float],
                      add: object) -> bool:
    """Add a decoration only where it covers no text."""
    if _free(layout, rect):
        add()  # type: ignore[operator]
        return True
    return False


def _add_logo(layout: Layout, rng: random.Random, margin: float, split: str) -> None:
    """A maker's emblem (circle, diamond, triangle or square) with one to three letters."""
    size = layout.height * rng.uniform(0.09, 0.16)
    x, y = layout.width - margin - size, margin
    if not _free(layout, (x, y, size, size)):
        return
    shape = rng.choice(("circle", "diamond", "triangle", "square"))
    layout.logos.append((x, y, size, shape))
    letters = "".join(rng.choice("ABCDEFGHKLMNPRSTVWXZ") for _ in range(rng.randint(1, 3)))
    font = pick_font(rng, letters, split=split)
    fsize = max(8, int(size * (0.45 if len(letters) < 3 else 0.3)))
    item = TextItem(letters, "distractor", None, 0, 0, font, fsize, "print")
    x0, y0, x1, y1 = item.bbox()
    item.x = x + (size - (x1 - x0)) / 2 - x0
    item.y = y + (size - (y1 - y0)) / 2 - y0
    layout.items.append(item)


def _add_wiring_diagram(layout: Layout, rng: random.Random, margin: float, split: str) -> None:
    """A Δ or Y connection diagram: six terminals with their labels and the links."""
    w = layout.width * rng.uniform(0.16, 0.24)
    h = w * 0.55
    x, y = margin, layout.height - margin - h
    if not _free(layout, (x, y, w, h)):
        return
    kind = rng.choice(("delta", "star"))
    layout.diagrams.append((x, y, w, kind))
    font = pick_font(rng, "UVW12", split=split)
    size = max(8, int(h * 0.2))
    rows = (("W2", "U2", "V2"), ("U1", "V1", "W1"))
    for r, names in enumerate(rows):
        for c, name in enumerate(names):
            tx = x + (c + 0.5) * w / 3 - size * 0.6
            ty = y + (0.0 if r == 0 else 0.78) * h - (size if r == 0 else 0)
            layout.items.append(TextItem(name, "distractor", None, tx, ty + size * 0.2, font,
                                         size, "print"))


def _place(layout: Layout, schema: PlateSchema, body: list[tuple[str | None, str, str | None]],
           values: dict[str, str], title_field: str | None, rng: random.Random, *, split: str,
           size: int, margin: float, columns: int, placement: str, style: str,
           value_style: str, kinds: tuple[str, ...]) -> bool:
    """Try one font size; False if the text does not fit the plate."""
    layout.items.clear()
    layout.lines.clear()
    labels = [lbl for _, _, lbl in body if lbl]
    if split in HELDOUT_SPLITS:
        # the plate's face is held out; a label in a script no held-out family has (Chinese)
        # gets a face of its own (``label_face``)
        labels = [lbl for lbl in labels if split_covers("heldout", lbl)]
    sample = "".join(v for _, v, _ in body) + "".join(labels)
    font = pick_font(rng, sample, split=split, kinds=kinds)
    value_font = font if rng.random() < 0.7 else pick_font(rng, sample, split=split)

    def label_face(text: str) -> FontInfo:
        """The plate's face, or for text it lacks one that has it (held-out splits only:
        elsewhere the face was picked to cover every label)."""
        return font if font.covers(text) else pick_font(rng, text, split=split)
    y = margin
    if title_field:
        title = values[title_field]
        tfont = pick_font(rng, title, split=split)
        tsize = int(size * rng.uniform(1.3, 2.0))
        item = TextItem(title, "value", title_field, margin, y, tfont, tsize, style="print")
        if rng.random() < 0.4:
            item.x = (layout.width - item.width()) / 2
        layout.items.append(item)
        y = item.bbox()[3] + size * rng.uniform(0.6, 1.2)
    col_width = (layout.width - 2 * margin) / columns
    row_height = size * rng.uniform(1.45, 1.9)
    if placement in ("above", "caption"):
        row_height *= 1.9
    rows = (len(body) + columns - 1) // columns
    if placement == "table":
        return _place_table(layout, body, rng, y=y, size=size, margin=margin,
                            label_face=label_face, value_font=value_font, style=style,
                            value_style=value_style)
    if y + rows * row_height > layout.height - margin:
        return False
    stacked = placement in ("above", "caption")
    label_size = int(size * (0.75 if stacked else rng.uniform(0.85, 1.0)))
    for index, (name, value, label) in enumerate(body):
        col, row = index // rows, index % rows
        x0 = margin + col * col_width
        top = y + row * row_height
        role = "value" if name else "distractor"
        if label and placement == "caption":
            layout.items.append(TextItem(label, "label", name, x0, top + size * 1.15,
                                         label_face(label), label_size, style))
        elif label and placement == "leader":
            lab = TextItem(label, "label", name, x0, top, label_face(label), label_size, style)
            layout.items.append(lab)
            right = margin + (col + 1) * col_width - size * 0.5
            width = TextItem(value, role, name, 0, top, value_font, size, style).width()
            dots_x = x0 + lab.width() + size * 0.3
            dots = TextItem(".", "distractor", None, dots_x, top, font, label_size, style)
            count = int((right - width - size * 0.3 - dots_x) / max(1.0, dots.width()))
            if count < 3:
                return False
            dots.text = "." * count
            layout.items.append(dots)
            x0 = right - width
        elif label and placement == "above":
            layout.items.append(TextItem(label, "label", name, x0, top, label_face(label),
                                         label_size, style))
            top += label_size * 1.25
        elif label:
            lab = TextItem(label, "label", name, x0, top, label_face(label), label_size, style)
            layout.items.append(lab)
            gap = max(size * 0.6, rng.uniform(0.3, 0.45) * col_width - lab.width())
            x0 = x0 + lab.width() + gap if rng.random() < 0.5 else x0 + lab.width() + size * 0.6
        vstyle = value_style if name else style
        vfont = value_font if name else label_face(value)
        if name and rng.random() < 0.04 and any(ch.isdigit() for ch in value):
            vfont = pick_font(rng, value, split=split, kinds=("segment7", "segment14"))
        item = TextItem(value, role, name, x0, top, vfont, size, vstyle)
        if item.bbox()[2] > margin + (col + 1) * col_width + size * 0.3:
            return False
        layout.items.append(item)
    if rng.random() < 0.4:
        for col in range(1, columns):
            x = margin + col * col_width - size * 0.3
            layout.lines.append((x, y, x, y + rows * row_height))
    return True


def _place_table(layout: Layout, body: list[tuple[str | None, str, str | None]],
                 rng: random.Random, *, y: float, size: int, margin: float,
                 label_face: Callable[[str], FontInfo], value_font: FontInfo, style: str,
                 value_style: str) -> bool:
    """Rating table: a header row of labels over a row of values, cells boxed."""
    unit_items = [b for b in body if b[0] in UNIT_FIELDS]
    other = [b for b in body if b[0] not in UNIT_FIELDS]
    row_height = size * 1.7
    rows_needed = len(other) + 2 * ((len(unit_items) + 3) // 4)
    if y + rows_needed * row_height > layout.height - margin:
        return False
    for name, value, label in other:   # label: value lines first
        x = margin
        if label:
            lab = TextItem(label, "label", name, x, y, label_face(label), size, style)
            layout.items.append(lab)
            x += lab.width() + size * 0.7
        item = TextItem(value, "value" if name else "distractor", name, x, y, value_font, size,
                        value_style if name else style)
        if item.bbox()[2] > layout.width - margin:
            return False
        layout.items.append(item)
        y += row_height
    cell_w = (layout.width - 2 * margin) / 4
    for start in range(0, len(unit_items), 4):
        for i, (name, value, _label) in enumerate(unit_items[start:start + 4]):
            x = margin + i * cell_w + size * 0.3
            head = rng.choice(SHORT_LABELS.get(name or "", ["-"]))
            layout.items.append(TextItem(head, "label", name, x, y, label_face(head),
                                         int(size * 0.8), style))
            item = TextItem(value, "value", name, x, y + row_height, value_font, size, value_style)
            if item.bbox()[2] > margin + (i + 1) * cell_w:
                return False
            layout.items.append(item)
            layout.boxes.append((margin + i * cell_w, y - size * 0.25, margin + (i + 1) * cell_w,
                                 y + 2 * row_height - size * 0.2))
        y += 2 * row_height
    return True
