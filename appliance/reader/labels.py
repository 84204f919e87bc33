"""Label words: which field a piece of text names, exactly or with a few characters misread.

Every schema field lists its label words (``Voltage``, ``Spannung``, ``U``); plates stack
languages (``Typ/Type``), drop trailing dots and OCR misreads letters, so labels are matched
as patterns and, from four letters on, within a small edit distance.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from appliance.reader.textmatch import edit_distance
from appliance.schema import FieldSpec, PlateSchema


def _letter(ch: str) -> str:
    """One character of a label as a pattern: an accented letter also matches its bare
    letter (plates and engines drop accents: ``No de serie``), a space may be missing
    (``SerialNo.``)."""
    if ch.isspace():
        return r"\s*"
    bare = unaccented(ch)
    return f"[{re.escape(ch)}{re.escape(bare)}]" if bare != ch else re.escape(ch)


def _label_word(label: str) -> str:
    """One label as a pattern, its trailing '.' optional (it is often lost)."""
    core = label.rstrip(".")
    return "".join(map(_letter, core)) + (r"\.?" if core != label else "")


@functools.lru_cache(maxsize=256)
def _compiled_label(labels: tuple[str, ...]) -> re.Pattern[str] | None:
    if not labels:
        return None
    alternatives = "|".join(_label_word(label)
                            for label in sorted(labels, key=len, reverse=True))
    # Plates stack languages: "Typ/Type", "Spannung / Voltage", "Ser. No./编号:".
    chain = rf"(?:{alternatives})(?:\s*/\s*(?:{alternatives}))*"
    # "SN-48213907", "No.# 5521": a hyphen or hash may follow the label like a colon
    # a digit may follow straight away: engines drop the space ("S/N2015-794241", "Un110V");
    # a speck beside the colon reads as a second mark ("I:.31,6/58,2A")
    return re.compile(rf"(?<![\w/])(?:{chain})(?![^\W\d])\s*[:：.#-]{{0,2}}\s*",
                      re.IGNORECASE)


def label_regex(spec: FieldSpec) -> re.Pattern[str] | None:
    """The pattern of all of a field's labels (with a trailing ``:`` or ``-``), or None."""
    return _compiled_label(tuple(spec.labels))


def allowed_edits(label: str) -> int:
    """Misread characters tolerated in a label: none under 4 letters, two from 9 on."""
    return 0 if len(label) < 4 else 1 if len(label) < 9 else 2


@functools.lru_cache(maxsize=16384)
def unaccented(text: str) -> str:
    """``text`` with each accented letter as its bare letter, one character for one (readers
    drop and confuse accents: ``série`` read ``sene``)."""
    return "".join(unicodedata.normalize("NFD", c)[0] for c in text)


@functools.lru_cache(maxsize=256)
def _fuzzy_forms(labels: tuple[str, ...]) -> tuple[str, ...]:
    forms = {unaccented(re.sub(r"\s+", "", label).rstrip(".").casefold()) for label in labels}
    return tuple(form for form in forms if allowed_edits(form))


LabelTable = tuple[tuple[str, tuple[str, ...]], ...]
#: the letters digits are mistaken for in a word (a ``1`` is an ``l`` or an ``i``)
_DIGITS_AS_LETTERS = (str.maketrans("01258", "olszb"), str.maketrans("01258", "oiszb"))


@functools.lru_cache(maxsize=64)
def _fuzzy_table(table: LabelTable) -> tuple[tuple[str, str, int, frozenset[str]], ...]:
    """(field, label form, edits allowed, the form's characters) for fuzzy matching."""
    return tuple((name, form, allowed_edits(form), frozenset(form))
                 for name, labels in table for form in _fuzzy_forms(labels))


@functools.lru_cache(maxsize=65536)
def nearest_field(text: str, table: LabelTable) -> str | None:
    """The field whose label ``text`` is, exactly or with a few characters misread; None when
    no label is near enough or two fields' labels are equally near (``Manufacture`` is
    neither the maker nor the date)."""
    for name, labels in table:
        label = _compiled_label(labels)
        if label is not None and label.fullmatch(text + " "):
            return name
    parts = [p for p in unaccented(re.sub(r"\s+", "", text).rstrip(":：.").casefold()).split("/")
             if p]
    # a label is a word: a digit in one is a letter misread (``Mode11``, ``SER1AL``)
    parts += list(dict.fromkeys(
        folded for p in parts if any(c.isalpha() for c in p)
        for table in _DIGITS_AS_LETTERS if (folded := p.translate(table)) != p))
    best: dict[str, int] = {}
    for name, form, allowed, letters in _fuzzy_table(table):
        for part in parts:
            # each character the form lacks costs an edit: most words are out of reach
            if abs(len(part) - len(form)) > allowed or \
                    sum(c not in letters for c in part) > allowed:
                continue
            distance = edit_distance(part, form, limit=allowed)
            if distance <= allowed and distance < best.get(name, allowed + 1):
                best[name] = distance
    if not best:
        return None
    nearest = min(best.values())
    owners = [name for name, distance in best.items() if distance == nearest]
    return owners[0] if len(owners) == 1 else None


def fuzzy_label(spec: FieldSpec, text: str, schema: PlateSchema) -> bool:
    """True when ``text`` (e.g. ``Herslelldatum:``, ``SEIAL NO``, ``Spanung/Voltage``) is one
    of this field's labels of four letters or more with a few characters misread, and
    nearer to it than to any other field's label."""
    return nearest_field(text, schema.label_table) == spec.name


def fuzzy_label_ends(spec: FieldSpec, text: str, schema: PlateSchema) -> list[int]:
    """Where a fuzzily read label of one to three words ends in ``text`` (a colon ends a
    word too: engines drop the space in ``Annee:12.2017``)."""
    words = list(re.finditer(r"[^\s:：]+[:：]?|[:：]", text))
    ends = []
    for last, word in enumerate(words):
        for first in range(max(0, last - 2), last + 1):
            if fuzzy_label(spec, text[words[first].start():word.end()], schema):
                ends.append(word.end())
                break
    return ends


def starts_a_label(text: str, start: int, end: int, schema: PlateSchema) -> bool:
    """True when some field's label begins at ``start`` and covers ``text[start:end]``."""
    for spec in schema.fields.values():
        label = label_regex(spec)
        found = label.match(text, start) if label is not None else None
        if found and len(found.group(0).rstrip()) >= end - start:
            return True
    return False


def is_label(text: str, schema: PlateSchema) -> bool:
    """True when ``text`` is, as a whole, some field's label (exactly or a little misread)."""
    return nearest_field(text, schema.label_table) is not None


def before_next_label(text: str, schema: PlateSchema) -> str:
    """``text`` up to the first word that starts another field's label (runs merged by the
    detector: ``TRADRIVE S.p.A. SPEED 2953`` is the maker's name and the speed)."""
    cut = len(text)
    # label words glued to a value's last digit (``6YW4Intensidad``, ``882204manufactured``)
    glued = [m.start() for m in re.finditer(r"(?<=\d)[^\W\d_]{4,}", text)]
    for spec in schema.fields.values():
        label = label_regex(spec)
        if label is None:
            continue
        found = label.search(text, 1)
        if found and text[found.start() - 1].isspace():
            cut = min(cut, found.start())
        cut = next((at for at in glued if at < cut and label.match(text[at:])), cut)
    return text[:cut].strip()
