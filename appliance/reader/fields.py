"""Attach recognised text to schema fields using label words and value regexes.

Input is a list of text lines, each made of words with boxes and confidences (from any text
recogniser). A field is found as ``<label> [:] <value>`` on a line, or, where the schema
allows, as a value of the right format anywhere (``230/400 V`` needs no label).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

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


FUZZY_LABEL_LEN = 6  # one-word labels this long may be read with one character wrong


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
    return re.compile(rf"(?<![\w/])(?:{chain})(?![\w])\s*[:：.]?\s*", re.IGNORECASE)


def _label_regex(spec: FieldSpec) -> re.Pattern[str] | None:
    return _compiled_label(tuple(spec.labels))


def within_one_edit(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by at most one inserted, dropped or changed character."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1:] == b[i + 1:]
    return a[i:] == b[i + 1:]


def _fuzzy_label(spec: FieldSpec, token: str) -> bool:
    """A whitespace-free token such as ``Herslelldatum:`` or ``Spanung/Voltage`` that is one
    of the field's long one-word labels with at most one character misread."""
    long_labels = [lb.casefold() for lb in spec.labels
                   if len(lb) >= FUZZY_LABEL_LEN and lb.isalpha()]
    parts = token.rstrip(":：.").casefold().split("/")
    return any(within_one_edit(part, label) for part in parts for label in long_labels)


def _evidence(line: Line, spans: list[tuple[int, int]], start: int, end: int) -> tuple[float, Box]:
    parts = [w.evidence(max(0, start - a), min(len(w.text), end - a))
             for w, (a, b) in zip(line.words, spans, strict=True) if a < end and b > start]
    if not parts:
        return 0.0, line.words[0].box
    boxes = [box for _, box in parts]
    return (min(conf for conf, _ in parts),
            (min(b[0] for b in boxes), min(b[1] for b in boxes),
             max(b[2] for b in boxes), max(b[3] for b in boxes)))


def _labelled(spec: FieldSpec, lines: list[Line]) -> FieldValue | None:
    label = _label_regex(spec)
    if label is None:
        return None
    value_re = spec.value_regex()
    for fuzzy in (False, True):  # exact labels first, then labels with one misread character
        for line in lines:
            text, spans = line.text_and_spans()
            if fuzzy:
                ends = [m.end() for m in re.finditer(r"\S+", text)
                        if _fuzzy_label(spec, m.group(0))]
            else:
                ends = [found.end() for found in label.finditer(text)]
            for end in ends:
                start = end + len(text[end:]) - len(text[end:].lstrip())
                match = value_re.match(text, start)
                if match and (match.end() == len(text) or not text[match.end()].isalnum()):
                    conf, box = _evidence(line, spans, match.start(), match.end())
                    return FieldValue(value=match.group(0), confidence=conf, box=box)
    return None


def _above(spec: FieldSpec, lines: list[Line]) -> FieldValue | None:
    """A label alone on its line with the value just below it (rating tables, stacked)."""
    label = _label_regex(spec)
    if label is None:
        return None
    value_re = spec.value_regex()
    for index, line in enumerate(lines[:-1]):
        for word in line.words:
            found = label.fullmatch(word.text.strip()) or label.fullmatch(word.text.strip() + " ") \
                or _fuzzy_label(spec, word.text.strip())
            if not found:
                continue
            x0, _, x1, y1 = word.box
            height = max(1, word.box[3] - word.box[1])
            for below in lines[index + 1 : index + 3]:
                for cand in below.words:
                    overlaps = cand.box[0] < x1 + height and cand.box[2] > x0 - height
                    near = cand.box[1] - y1 < 2.5 * height
                    match = value_re.match(cand.text.strip())
                    if overlaps and near and match:
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


def _first_line(spec: FieldSpec, lines: list[Line]) -> FieldValue | None:
    """The title: the tallest text run of the first lines that is a value on its own (stray
    marks beside it on the same line stay out), else the first line as a whole."""
    runs = [w for line in lines[:2] for w in line.words]
    for word in sorted(runs, key=lambda w: w.box[3] - w.box[1], reverse=True):
        if spec.matches(word.text.strip()):
            conf, box = word.evidence(0, len(word.text))
            return FieldValue(value=word.text.strip(), confidence=conf, box=box)
    for line in lines[:2]:
        text, spans = line.text_and_spans()
        if spec.matches(text):
            conf, box = _evidence(line, spans, 0, len(text))
            return FieldValue(value=text, confidence=conf, box=box)
    return None


def assign_fields(lines: list[Line], schema: PlateSchema) -> dict[str, FieldValue]:
    """Return a value (or not-read) for every schema field, found in ``lines``."""
    result: dict[str, FieldValue] = {}
    taken: set[str] = set()
    for name, spec in schema.fields.items():
        found = _labelled(spec, lines) or _above(spec, lines)
        if found is None and spec.unlabelled == "anywhere":
            found = _anywhere(spec, lines, taken)
        if found is None and spec.unlabelled == "first_line":
            found = _first_line(spec, lines)
        if found is not None and found.value:
            taken.add(found.value)
        result[name] = found or FieldValue(value=None, confidence=0.0)
    return result
