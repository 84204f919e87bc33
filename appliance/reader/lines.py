"""Text runs and the lines they form: what attachment reads, from any recogniser.

A :class:`Word` is one run the reader found (its text, box, confidence and, where the reader
gives them, each character's place and confidence); :func:`group_lines` puts runs into
lines in reading order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

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
        from appliance.geometry import quad_box, sub_quad

        if self.quad is None:
            return self.confidence, self.box
        if not self.char_x or len(self.char_x) != len(self.text):  # the whole run's place
            return self.confidence, quad_box(self.quad)  # type: ignore[arg-type]

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
        """The line's text (words joined by one space) and each word's character span
        (worked out once: attachment asks for every field; a line's words stay put)."""
        return self._text_and_spans

    @functools.cached_property
    def _text_and_spans(self) -> tuple[str, list[tuple[int, int]]]:
        spans, pos, parts = [], 0, []
        for word in self.words:
            spans.append((pos, pos + len(word.text)))
            parts.append(word.text)
            pos += len(word.text) + 1
        return " ".join(parts), spans


def _x_distance(a: Word, b: Word) -> int:
    """Horizontal gap between two boxes (0 where they overlap in x)."""
    return max(0, a.box[0] - b.box[2], b.box[0] - a.box[2])


def _x_overlap(a: Word, b: Word) -> bool:
    """Whether two boxes share over a third of the narrower one's width (``89.8`` and
    ``A`` may touch; a label over its value shares much more)."""
    shared = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
    return shared > min(a.box[2] - a.box[0], b.box[2] - b.box[0]) / 3


def _row_offset(a: Word, b: Word) -> float:
    """How far apart two words' centres are vertically, in the taller one's height."""
    height = max(1, a.box[3] - a.box[1], b.box[3] - b.box[1])
    return abs((a.box[1] + a.box[3]) - (b.box[1] + b.box[3])) / 2 / height


def group_lines(words: list[Word]) -> list[Line]:
    """Group words into lines by vertical overlap (engines split columns into blocks).

    Words join left to right the line whose nearest word (not the whole band the line has
    grown to) sits at their height, so two rows never chain into one and a tilted row still
    holds together. Outsized words (a logo letter, a big title: over 1.6 times the median
    height) are placed last, into the line whose band holds their centre, so they never
    stretch a line over the row below it.
    """
    if not words:
        return []
    heights = sorted(max(1, w.box[3] - w.box[1]) for w in words)
    tall = 1.6 * heights[len(heights) // 2]
    ordinary = [w for w in words if w.box[3] - w.box[1] <= tall]
    outsized = [w for w in words if w.box[3] - w.box[1] > tall]
    lines: list[list[Word]] = []
    for word in sorted(ordinary, key=lambda w: (w.box[0], w.box[1])):
        best, best_offset = None, 0.5
        height = word.box[3] - word.box[1]
        for line in lines:
            # leader dots are slivers at the baseline: a value is measured against text
            anchors = [w for w in line if 2 * (w.box[3] - w.box[1]) >= height] or line
            if any(_x_overlap(w, word) and _row_offset(w, word) > 0.25 for w in anchors):
                continue  # one over the other (a label above its value): two lines
            offset = _row_offset(word, min(anchors, key=lambda w: _x_distance(w, word)))
            if offset < best_offset:
                best, best_offset = line, offset
        if best is None:
            lines.append([word])
        else:
            best.append(word)
    bands = [(min(w.box[1] for w in line), max(w.box[3] for w in line)) for line in lines]
    for word in outsized:
        centre = (word.box[1] + word.box[3]) / 2
        home = next((index for index, (top, bottom) in enumerate(bands)
                     if top <= centre <= bottom), None)
        if home is None:
            lines.append([word])
            bands.append((word.box[1], word.box[3]))
        else:
            lines[home].append(word)
    ordered = [Line(sorted(line, key=lambda w: w.box[0])) for line in lines]
    ordered.sort(key=lambda ln: min(w.box[1] for w in ln.words))
    return ordered
