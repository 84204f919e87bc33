"""Attach recognised text to schema fields using label words and value regexes.

Input is a list of text lines, each made of words with boxes and confidences (from any text
recogniser). A field is found as ``<label> [:] <value>`` on a line, or, where the schema
allows, as a value of the right format anywhere (``230/400 V`` needs no label).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from appliance.reader.textmatch import edit_distance
from appliance.schema import FieldSpec, PlateSchema
from appliance.transport.messages import FieldValue

Box = tuple[int, int, int, int]


@dataclass
class Word:
    """A recognised word (or text run) with its box and confidence in 0..1.

    ``box`` orders words into lines (for a rotated plate, in the plate's own frame);
    ``quad`` is where the word really is in the image and ``char_x`` each character's
    position along it (0..1), so a value inside a longer run gets its own evidence box.
    """

    text: str
    box: Box
    confidence: float
    quad: object | None = None
    char_x: list[float] | None = None
    char_conf: list[float] | None = None

    def evidence(self, start: int, end: int) -> tuple[float, Box]:
        """Confidence and image box of characters ``start:end`` of this word."""
        if self.quad is None or not self.char_x or len(self.char_x) != len(self.text):
            return self.confidence, self.box
        from appliance.geometry import quad_box, sub_quad

        xs = self.char_x
        step = (xs[-1] - xs[0]) / max(1, len(xs) - 1) if len(xs) > 1 else 0.05
        sub = sub_quad(self.quad, xs[start] - step / 2, xs[end - 1] + step / 2)  # type: ignore[arg-type]
        confs = (self.char_conf or [self.confidence] * len(self.text))[start:end]
        return (min(confs) if confs else self.confidence), quad_box(sub)


@dataclass
class Line:
    """A line of words, in reading order."""

    words: list[Word]

    def text_and_spans(self) -> tuple[str, list[tuple[int, int]]]:
        """The line's text (words joined by one space) and each word's character span."""
        spans, pos, parts = [], 0, []
        for word in self.words:
            spans.append((pos, pos + len(word.text)))
            parts.append(word.text)
            pos += len(word.text) + 1
        return " ".join(parts), spans


def group_lines(words: list[Word]) -> list[Line]:
    """Group words into lines by vertical overlap (engines split columns into blocks)."""
    lines: list[list[Word]] = []
    for word in sorted(words, key=lambda w: (w.box[1] + w.box[3]) / 2):
        centre = (word.box[1] + word.box[3]) / 2
        height = max(1, word.box[3] - word.box[1])
        for line in lines:
            top = min(w.box[1] for w in line)
            bottom = max(w.box[3] for w in line)
            line_centre, line_height = (top + bottom) / 2, bottom - top
            if abs(centre - line_centre) < 0.5 * max(height, line_height):
                line.append(word)
                break
        else:
            lines.append([word])
    ordered = [Line(sorted(line, key=lambda w: w.box[0])) for line in lines]
    ordered.sort(key=lambda ln: min(w.box[1] for w in ln.words))
    return ordered


def _label_word(label: str) -> str:
    """One label as a pattern, its trailing '.' optional (it is often lost)."""
    core = label.rstrip(".")
    return re.escape(core) + (r"\.?" if core != label else "")


@functools.lru_cache(maxsize=256)
def _compiled_label(labels: tuple[str, ...]) -> re.Pattern[str] | None:
    if not labels:
        return None
    alternatives = "|".join(_label_word(label)
                            for label in sorted(labels, key=len, reverse=True))
    # Plates stack languages: "Typ/Type", "Spannung / Voltage", "Ser. No./编号:".
    chain = rf"(?:{alternatives})(?:\s*/\s*(?:{alternatives}))*"
    # "SN-48213907", "No.# 5521": a hyphen or hash may follow the label like a colon
    return re.compile(rf"(?<![\w/])(?:{chain})(?![\w])\s*[:：.#-]?\s*", re.IGNORECASE)


def _label_regex(spec: FieldSpec) -> re.Pattern[str] | None:
    return _compiled_label(tuple(spec.labels))


def allowed_edits(label: str) -> int:
    """Misread characters tolerated in a label: none under 4 letters, two from 9 on."""
    return 0 if len(label) < 4 else 1 if len(label) < 9 else 2


@functools.lru_cache(maxsize=256)
def _fuzzy_forms(labels: tuple[str, ...]) -> tuple[str, ...]:
    forms = {re.sub(r"\s+", "", label).rstrip(".").casefold() for label in labels}
    return tuple(form for form in forms if allowed_edits(form))


LabelTable = tuple[tuple[str, tuple[str, ...]], ...]


def _label_table(schema: PlateSchema) -> LabelTable:
    return tuple((name, tuple(spec.labels)) for name, spec in schema.fields.items())


@functools.lru_cache(maxsize=65536)
def _nearest_field(text: str, table: LabelTable) -> str | None:
    """The field whose label ``text`` is, exactly or with a few characters misread; None when
    no label is near enough or two fields' labels are equally near (``Manufacture`` is
    neither the maker nor the date)."""
    for name, labels in table:
        label = _compiled_label(labels)
        if label is not None and label.fullmatch(text + " "):
            return name
    parts = [p for p in re.sub(r"\s+", "", text).rstrip(":：.").casefold().split("/") if p]
    best: dict[str, int] = {}
    for name, labels in table:
        for form in _fuzzy_forms(labels):
            allowed = allowed_edits(form)
            for part in parts:
                distance = edit_distance(part, form, limit=allowed)
                if distance <= allowed and distance < best.get(name, allowed + 1):
                    best[name] = distance
    if not best:
        return None
    nearest = min(best.values())
    owners = [name for name, distance in best.items() if distance == nearest]
    return owners[0] if len(owners) == 1 else None


def _fuzzy_label(spec: FieldSpec, text: str, schema: PlateSchema) -> bool:
    """True when ``text`` (e.g. ``Herslelldatum:``, ``SEIAL NO``, ``Spanung/Voltage``) is one
    of this field's labels of four letters or more with a few characters misread, and
    nearer to it than to any other field's label."""
    return _nearest_field(text, _label_table(schema)) == spec.name


def _fuzzy_label_ends(spec: FieldSpec, text: str, schema: PlateSchema) -> list[int]:
    """Where a fuzzily read label of one to three words ends in ``text``."""
    words = list(re.finditer(r"\S+", text))
    ends = []
    for last, word in enumerate(words):
        for first in range(max(0, last - 2), last + 1):
            if _fuzzy_label(spec, text[words[first].start():word.end()], schema):
                ends.append(word.end())
                break
    return ends


def _evidence(line: Line, spans: list[tuple[int, int]], start: int, end: int) -> tuple[float, Box]:
    parts = [w.evidence(max(0, start - a), min(len(w.text), end - a))
             for w, (a, b) in zip(line.words, spans, strict=True) if a < end and b > start]
    if not parts:
        return 0.0, line.words[0].box
    boxes = [box for _, box in parts]
    return (min(conf for conf, _ in parts),
            (min(b[0] for b in boxes), min(b[1] for b in boxes),
             max(b[2] for b in boxes), max(b[3] for b in boxes)))


def _starts_a_label(text: str, start: int, end: int, schema: PlateSchema) -> bool:
    """True when some field's label begins at ``start`` and covers ``text[start:end]``."""
    for spec in schema.fields.values():
        label = _label_regex(spec)
        found = label.match(text, start) if label is not None else None
        if found and len(found.group(0).rstrip()) >= end - start:
            return True
    return False


def _labelled(spec: FieldSpec, lines: list[Line], schema: PlateSchema,
              ) -> FieldValue | None:
    label = _label_regex(spec)
    if label is None:
        return None
    value_re = spec.value_regex()
    for fuzzy in (False, True):  # exact labels first, then labels with misread characters
        for line in lines:
            text, spans = line.text_and_spans()
            if fuzzy:
                ends = _fuzzy_label_ends(spec, text, schema)
            else:
                ends = [found.end() for found in label.finditer(text)]
            for end in ends:
                start = end + len(text[end:]) - len(text[end:].lstrip())
                match = value_re.match(text, start)
                if match and _starts_a_label(text, start, match.end(), schema):
                    continue  # "MODEL  RATED CURRENT": a label, not this field's value
                if match and (match.end() == len(text) or not text[match.end()].isalnum()):
                    value = match.group(0)
                    shorter = _before_next_label(value, schema)
                    if shorter != value and value_re.fullmatch(shorter):
                        value = shorter  # the next field's label and value were swallowed
                    conf, box = _evidence(line, spans, match.start(), match.start() + len(value))
                    return FieldValue(value=value, confidence=conf, box=box)
    return None


def _above(spec: FieldSpec, lines: list[Line], schema: PlateSchema) -> FieldValue | None:
    """A label that ends its line with the value just below it (rating tables, stacked), or
    to its right but grouped into the next line (a tilted plate, a wide gap)."""
    label = _label_regex(spec)
    if label is None:
        return None
    value_re = spec.value_regex()
    for index, line in enumerate(lines[:-1]):
        for position, word in enumerate(line.words):
            found = label.fullmatch(word.text.strip()) or label.fullmatch(word.text.strip() + " ") \
                or _fuzzy_label(spec, word.text.strip(), schema)
            if not found:
                continue
            x0, y0, x1, y1 = word.box
            height = max(1, y1 - y0)
            last = position == len(line.words) - 1
            for below in lines[index + 1 : index + 3]:
                for cand in below.words:
                    overlaps = cand.box[0] < x1 + height and cand.box[2] > x0 - height
                    near = cand.box[1] - y1 < 2.5 * height
                    beside = last and cand is below.words[0] and cand.box[0] >= x1 and \
                        abs((cand.box[1] + cand.box[3]) - (y0 + y1)) / 2 < 0.9 * height
                    match = value_re.match(cand.text.strip())
                    if ((overlaps and near) or beside) and match:
                        conf, box = cand.evidence(0, match.end())
                        return FieldValue(value=match.group(0), confidence=conf, box=box)
    return None


def _anywhere(spec: FieldSpec, lines: list[Line], taken: set[str]) -> FieldValue | None:
    value_re = re.compile(rf"(?<![\w.,/-])(?:{spec.value})(?![\w/])")
    for line in lines:
        text, spans = line.text_and_spans()
        for match in value_re.finditer(text):
            if match.group(0) in taken:
                continue
            conf, box = _evidence(line, spans, match.start(), match.end())
            return FieldValue(value=match.group(0), confidence=conf, box=box)
    return None


def _is_label(text: str, schema: PlateSchema) -> bool:
    """True when ``text`` is, as a whole, some field's label (exactly or a little misread)."""
    return _nearest_field(text, _label_table(schema)) is not None


def _before_next_label(text: str, schema: PlateSchema) -> str:
    """``text`` up to the first word that starts another field's label (runs merged by the
    detector: ``TRADRIVE S.p.A. SPEED 2953`` is the maker's name and the speed)."""
    cut = len(text)
    for spec in schema.fields.values():
        label = _label_regex(spec)
        found = label.search(text, 1) if label is not None else None
        if found and text[found.start() - 1].isspace():
            cut = min(cut, found.start())
    return text[:cut].strip()


def _first_line(spec: FieldSpec, lines: list[Line], schema: PlateSchema,
                taken: set[str]) -> FieldValue | None:
    """The title: the tallest text run of the first lines that is a value on its own, not a
    label or another field's value, longer than logo letters where there is a choice; else
    the first line as a whole."""
    candidates = []
    for line in lines[:3]:
        for word in line.words:
            text = _before_next_label(word.text.strip(), schema)
            if text and spec.matches(text) and text not in taken \
                    and not _is_label(text, schema):
                letters = sum(ch.isalpha() for ch in text)
                candidates.append((letters >= 3, word.box[3] - word.box[1], word, text))
    if candidates:
        _, _, word, text = max(candidates, key=lambda c: (c[0], c[1]))
        start = word.text.index(text)  # a prefix of the stripped run
        conf, box = word.evidence(start, start + len(text))
        return FieldValue(value=text, confidence=conf, box=box)
    for line in lines[:2]:
        text, spans = line.text_and_spans()
        if spec.matches(text) and text not in taken and not _is_label(text, schema):
            conf, box = _evidence(line, spans, 0, len(text))
            return FieldValue(value=text, confidence=conf, box=box)
    return None


def assign_fields(lines: list[Line], schema: PlateSchema) -> dict[str, FieldValue]:
    """Return a value (or not-read) for every schema field, found in ``lines``.

    Labelled values come first; a title field (``unlabelled = "first_line"``) without a
    label is looked for last, among what no other field took.
    """
    result: dict[str, FieldValue] = {}
    taken: set[str] = set()
    for name, spec in schema.fields.items():
        found = _labelled(spec, lines, schema) or _above(spec, lines, schema)
        if found is None and spec.unlabelled == "anywhere":
            found = _anywhere(spec, lines, taken)
        if found is not None and found.value:
            taken.add(found.value)
        result[name] = found or FieldValue(value=None, confidence=0.0)
    for name, spec in schema.fields.items():
        if result[name].value is None and spec.unlabelled == "first_line":
            found = _first_line(spec, lines, schema, taken)
            if found is not None and found.value:
                taken.add(found.value)
                result[name] = found
    return result
