"""Attach recognised text to schema fields using label words and value regexes.

Input is a list of text lines, each made of words with boxes and confidences (from any text
recogniser). A field is found as ``<label> [:] <value>`` on a line, or, where the schema
allows, as a value of the right format anywhere (``230/400 V`` needs no label).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from appliance.reader.calibration import field_kind
from appliance.reader.captions import captioned
from appliance.reader.elimination import by_elimination
from appliance.reader.labels import (
    before_next_label,
    fuzzy_label,
    fuzzy_label_ends,
    is_label,
    label_regex,
    starts_a_label,
)
from appliance.reader.lines import Box, Line, Word
from appliance.reader.shared_runs import settle_shared_runs
from appliance.reader.textmatch import code_case
from appliance.reader.value_ends import (
    before_other_value,
    glued_value,
    labelled_value,
    other_format,
    starts_never,
    without_glued_label,
)
from appliance.schema import FieldSpec, PlateSchema
from appliance.transport.messages import FieldValue


def _evidence(line: Line, spans: list[tuple[int, int]], start: int, end: int) -> tuple[float, Box]:
    parts = [w.evidence(max(0, start - a), min(len(w.text), end - a))
             for w, (a, b) in zip(line.words, spans, strict=True) if a < end and b > start]
    if not parts:
        return 0.0, line.words[0].box
    boxes = [box for _, box in parts]
    return (min(conf for conf, _ in parts),
            (min(b[0] for b in boxes), min(b[1] for b in boxes),
             max(b[2] for b in boxes), max(b[3] for b in boxes)))


#: a gap between two runs wider than this many text heights ends a value (the next column,
#: another item); closer runs may be one value the detector split (``230/400`` ``V``)
FAR_GAP = 0.9
#: leader dots between a label and its value: ``Voltage ........ 230 V``
LEADER = re.compile(r"[.·…_]{3,}\s*")


@dataclass
class _Candidate:
    """A value found for a label, with what decides between a value beside and one below."""

    value: FieldValue
    whole: bool          # the value is its whole run (up to a far gap or the next label)
    other_format: bool   # the run reads as another field's value ("67.0 A" for a model)
    gap: float = 0.0     # label to value, in label heights (beside) or vertical (below)
    aligned: bool = True


def _word_at(spans: list[tuple[int, int]], position: int) -> int:
    """Index of the word holding character ``position`` (or the first after it)."""
    for index, (_start, end) in enumerate(spans):
        if position < end:
            return index
    return len(spans) - 1


def _run_limit(line: Line, spans: list[tuple[int, int]], start: int) -> int:
    """Where text that begins at ``start`` stops: the first gap wider than ``FAR_GAP``."""
    words = line.words
    for index in range(_word_at(spans, start), len(words) - 1):
        word, after = words[index], words[index + 1]
        height = max(word.box[3] - word.box[1], after.box[3] - after.box[1], 1)
        if after.box[0] - word.box[2] > FAR_GAP * height:
            return spans[index][1]
    return spans[-1][1]


def _beside(spec: FieldSpec, line: Line, text: str, spans: list[tuple[int, int]], end: int,
            schema: PlateSchema) -> _Candidate | None:
    """The value that follows a label ending at ``end`` on its own line."""
    start = end + len(text[end:]) - len(text[end:].lstrip())
    leader = LEADER.match(text, start)
    if leader:
        start = leader.end()
    if start >= len(text):
        return None
    whole_run = text[:_run_limit(line, spans, start)]
    # "MAXGALRO Inc. Fréquence": the maker, then the next field's label
    run = whole_run[:start] + before_next_label(whole_run[start:], schema)
    value_re = spec.value_regex()
    match = value_re.match(run, start)
    if match is None or starts_a_label(whole_run, start, match.end(), schema):
        # "MODEL  RATED CURRENT", "Typ/Model:  RATED POWER": a label, not this field's
        # value (looked for before the label's own words are cut off: "RATED" alone
        # would pass for a model)
        return None
    if match.end() < len(run) and run[match.end()].isalnum():
        return None
    value = without_glued_label(spec, match.group(0), run[match.end():], schema)
    shorter = before_next_label(value, schema)
    if shorter != value and value_re.fullmatch(shorter):
        value = shorter  # the next field's label and value were swallowed
    value = before_other_value(spec, value, run[start:], schema)
    rest = run[start:].strip()
    after = rest[len(value):].strip()
    if after and spec.also and re.fullmatch(spec.also, after):
        after = ""  # "30,480 kg 67,200 lbs": the same value in a second unit
    # whole: nothing else in the run, or only another field's value ("R3FG707PKX2 50 Hz")
    # or a code it never is ("MOTAQUA GB 18613")
    whole = not after or (after != rest and (other_format(spec, after, schema)
                                             or starts_never(spec, after)))
    conf, box = _evidence(line, spans, start, start + len(value))
    label_word = line.words[_word_at(spans, len(text[:end].rstrip()) - 1)]
    value_word = line.words[_word_at(spans, start)]
    height = max(1, label_word.box[3] - label_word.box[1])
    gap = max(0, value_word.box[0] - label_word.box[2]) / height \
        if value_word is not label_word and not leader else 0.0  # dots tie the two
    return _Candidate(FieldValue(value=value, confidence=conf, box=box), whole=whole,
                      other_format=other_format(spec, rest, schema), gap=gap)


def _stacked(spec: FieldSpec, lines: list[Line], index: int, label_word: Word,
             schema: PlateSchema, *, above: bool = False) -> _Candidate | None:
    """A whole run just below a label and starting under it (stacked labels), or with
    ``above``, just over it (a caption set small under its value)."""
    x0, y0, x1, y1 = label_word.box
    height = max(1, y1 - y0)
    near = lines[max(0, index - 2) : index][::-1] if above else lines[index + 1 : index + 3]
    for other in near:
        line_text, spans = other.text_and_spans()
        for word, (start, _) in zip(other.words, spans, strict=True):
            gap = (y0 - word.box[3]) if above else (word.box[1] - y1)
            if gap > 1.5 * height or word.box[0] > x1 or word.box[2] < x0:
                continue
            text = word.text.strip()
            # a run the detector joined with its neighbour's value: "2021-486715 90 hp"
            text = before_other_value(spec, text, text, schema)
            lead = len(word.text) - len(word.text.lstrip())
            if before_next_label(text, schema) != text or is_label(text, schema) \
                    or not spec.value_regex().fullmatch(text) or starts_a_label(
                        line_text, start + lead, start + len(word.text.rstrip()), schema):
                # the last test: a label that begins at this run and covers it ("RATED" of
                # "RATED  CURRENT: 61.5A", a label the detector cut in two) is no value
                continue
            conf, box = word.evidence(0, len(text))
            return _Candidate(FieldValue(value=text, confidence=conf, box=box), whole=True,
                              other_format=other_format(spec, text, schema),
                              gap=max(0, gap) / max(height, word.box[3] - word.box[1]),
                              aligned=abs(word.box[0] - x0) < height)
    return None


#: on a plate whose labels stand under their values, the most a value above its label may
#: stand off (label heights; a value's descenders and a caption's small type)
CAPTION_GAP = 1.5


def _digits(candidate: _Candidate) -> bool:
    return any(ch.isdigit() for ch in candidate.value.value or "")


def _wrapped(spec: FieldSpec, lines: list[Line], index: int, found: FieldValue,
             schema: PlateSchema) -> FieldValue:
    """``found`` continued onto up to ``spec.wraps`` following lines: a run that starts
    under the value's start, just below it, is no label or other field's value, and keeps
    the whole a value of this field (``Drivetrex Antriebs-`` / ``technik GmbH``)."""
    if not spec.wraps or found.box is None or found.value is None:
        return found
    value, conf, box = found.value, found.confidence, found.box
    for other in lines[index + 1 : index + 1 + spec.wraps]:
        height = max(1, box[3] - box[1])
        word = min(other.words, key=lambda w: abs(w.box[0] - box[0]))
        text = word.text.strip()
        joined = value[:-1] + text if value.endswith("-") else f"{value} {text}"
        if abs(word.box[0] - box[0]) > height or word.box[1] - box[3] > 0.8 * height \
                or is_label(text, schema) or before_next_label(text, schema) != text \
                or other_format(spec, text, schema) or not spec.value_regex().fullmatch(joined):
            break
        value, conf = joined, min(conf, word.confidence)
        box = (min(box[0], word.box[0]), box[1], max(box[2], word.box[2]), word.box[3])
    return FieldValue(value=value, confidence=conf, box=box)


def _prefer_below(spec: FieldSpec, beside: _Candidate, below: _Candidate | None) -> bool:
    """Whether a stacked value below the label beats what stands beside it."""
    if below is None or below.other_format or not below.aligned:
        return False
    if field_kind(spec) == "code" and _digits(beside) and not _digits(below):
        return False  # "S/N 7235187993 VDE0530" over a "QCPASS" sticker
    if beside.other_format or not beside.whole:
        return True  # "Modelo  67.0 A" over "4ZH0416": the run beside is a current
    # both plausible: stacked when the run beside is far (the next column) and the one
    # below sits close under the label, left-aligned
    return beside.gap > 2.5 and below.gap < 0.8 and below.aligned


def _labelled(spec: FieldSpec, lines: list[Line], schema: PlateSchema, *,
              captions: bool = False) -> FieldValue | None:
    """The value beside, below or (``captions``: the plate sets labels under their values)
    above a label of this field."""
    label = label_regex(spec)
    if label is None:
        return None
    for fuzzy in (False, True):  # exact labels first, then labels with misread characters
        for index, line in enumerate(lines):
            text, spans = line.text_and_spans()
            if fuzzy:
                ends = fuzzy_label_ends(spec, text, schema)
            else:
                ends = [found.end() for found in label.finditer(text)]
            for end in ends:
                beside = _beside(spec, line, text, spans, end, schema)
                label_word = line.words[_word_at(spans, len(text[:end].rstrip()) - 1)]
                # nothing beside, or only a run far off (the next column) or not whole
                far = beside is None or not (beside.whole and beside.gap < 2.5)
                below = _stacked(spec, lines, index, label_word, schema) if far else None
                over = _stacked(spec, lines, index, label_word, schema, above=True) \
                    if beside is None or (captions and far) else None
                if over is not None and (over.other_format or not over.aligned):
                    over = None
                if captions and over is not None and over.gap < CAPTION_GAP:
                    return over.value  # a plate of captions: the run just over its label
                if beside is not None and not _prefer_below(spec, beside, below) \
                        and (not beside.other_format or below is None):
                    return _wrapped(spec, lines, index, beside.value, schema) \
                        if beside.whole else beside.value
                if over is not None and beside is None and over.gap < 0.6 \
                        and (below is None or over.gap < 0.5 * below.gap):
                    return over.value  # the nearest run is the one just above: a caption
                if below is not None and not below.other_format and below.aligned:
                    return below.value
    return None


def _above(spec: FieldSpec, lines: list[Line], schema: PlateSchema) -> FieldValue | None:
    """A label that ends its line with the value just below it (rating tables, stacked), or
    to its right but grouped into the next line (a tilted plate, a wide gap)."""
    label = label_regex(spec)
    if label is None:
        return None
    value_re = spec.value_regex()
    for index, line in enumerate(lines[:-1]):
        for position, word in enumerate(line.words):
            found = label.fullmatch(word.text.strip()) or label.fullmatch(word.text.strip() + " ") \
                or fuzzy_label(spec, word.text.strip(), schema)
            if not found or any(ch.isdigit() for ch in word.text):
                # a run with digits holds its value ("Type/TypJW-50/250"): no label alone
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
                    text = cand.text.strip()
                    match = value_re.match(text)
                    if match and (is_label(text, schema) or other_format(spec, text, schema)):
                        # "S/N/S" of "S/N/Serial:": a label is no value; "690 V" or "24V"
                        # under a model's label is a voltage, not a model "690" (the model
                        # itself unread): that guess made false MISMATCHes (session 18)
                        match = None
                    if ((overlaps and near) or beside) and match:
                        conf, box = cand.evidence(0, match.end())
                        return FieldValue(value=match.group(0), confidence=conf, box=box)
    return None


#: the most a value may claim that is the tail of a longer number (``77.94/52 5 A``: the
#: engine split one value; ``5 A`` alone would be a sure, wrong current)
FRAGMENT_CONFIDENCE = 0.5
_NUMBER_BEFORE = re.compile(r"[\d.,/-] ?$")


def _anywhere(spec: FieldSpec, lines: list[Line], taken: set[str]) -> FieldValue | None:
    value_re = re.compile(rf"(?<![\w.,/-])(?:{spec.value})(?![\w/])")
    for line in lines:
        text, spans = line.text_and_spans()
        for match in value_re.finditer(text):
            if match.group(0) in taken:
                continue
            conf, box = _evidence(line, spans, match.start(), match.end())
            word = _word_at(spans, match.start())
            if _NUMBER_BEFORE.search(text[spans[word][0] : match.start()]):
                conf = min(conf, FRAGMENT_CONFIDENCE)
            return FieldValue(value=match.group(0), confidence=conf, box=box)
    return None


def _first_line(spec: FieldSpec, lines: list[Line], schema: PlateSchema,
                taken: set[str]) -> FieldValue | None:
    """The title: among the first lines' runs that are a value on their own (not a label
    or another field's value, longer than logo letters where there is a choice), the
    first one from the top unless a later one is clearly taller (descenders make
    ``Bearing`` as tall as ``VENTMAX``; a title is set 1.3 to 2 times larger); else the
    first line as a whole."""
    candidates = []
    for line in lines[:3]:
        for word in line.words:
            text = before_next_label(word.text.strip(), schema)
            # "Rated" of "Rated current:": the first word of a label is no title, nor is
            # a label with its own value ("MODELO V3UT784U4")
            if text and spec.matches(text) and text not in taken \
                    and not is_label(text, schema) \
                    and not starts_a_label(word.text.strip(), 0, len(text), schema) \
                    and not labelled_value(text, schema):
                letters = sum(ch.isalpha() for ch in text)
                candidates.append((letters >= 3, word.box[3] - word.box[1], word, text))
    if candidates:
        best = max(c[0] for c in candidates)
        ranked = [c for c in candidates if c[0] == best]  # top to bottom, left to right
        _, height, word, text = ranked[0]
        for candidate in ranked[1:]:
            if candidate[1] > 1.3 * height:
                _, height, word, text = candidate
        start = word.text.index(text)  # a prefix of the stripped run
        conf, box = word.evidence(start, start + len(text))
        return FieldValue(value=text, confidence=conf, box=box)
    for line in lines[:2]:
        text, spans = line.text_and_spans()
        if spec.matches(text) and text not in taken and not is_label(text, schema) \
                and not any(labelled_value(w.text.strip(), schema) for w in line.words):
            conf, box = _evidence(line, spans, 0, len(text))
            return FieldValue(value=text, confidence=conf, box=box)
    return None


def assign_fields(lines: list[Line], schema: PlateSchema) -> dict[str, FieldValue]:
    """Return a value (or not-read) for every schema field, found in ``lines``.

    Labelled values come first; a title field (``unlabelled = "first_line"``) without a
    label is looked for last, among what no other field took. Codes a reader wrote with a
    lowercase twin of a capital (``K1sE942P4``) are read in capitals (``code_case``).
    """
    lines = [Line([replace(w, text=code_case(w.text)) for w in line.words]) for line in lines]
    result: dict[str, FieldValue] = {}
    taken: set[str] = set()
    captions = captioned(lines, schema)
    for name, spec in schema.fields.items():
        found = _labelled(spec, lines, schema, captions=captions) or _above(spec, lines, schema)
        if found is not None and found.value and is_label(found.value, schema):
            found = None  # "SERIAL", "TENSION": a label word is never a value
        if found is None:
            found = glued_value(spec, lines, schema, taken)
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
    by_elimination(result, lines, schema, taken)
    settle_shared_runs(result, lines, schema)
    return result

