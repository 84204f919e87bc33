"""Where a value ends: what a detector or an engine joined to it that is not part of it.

Runs come joined (``NIKMAX Motors 50/60 Hz``, ``2021-486715 90 hp``, ``N04-180M-4P:75 kW``,
``91458433JG6306-2RS``) or glued to their label (``TYPREA0933T``); these cut the value out.
"""

from __future__ import annotations

import re

from appliance.reader.labels import is_label, label_regex, unaccented
from appliance.reader.lines import Line
from appliance.reader.textmatch import code_case
from appliance.schema import FieldSpec, PlateSchema
from appliance.transport.messages import FieldValue


def other_format(spec: FieldSpec, text: str, schema: PlateSchema) -> bool:
    """True when ``text`` is, as a whole, the value of another field whose format is
    distinctive enough to be found without a label (a voltage, a speed, an IP code)."""
    return any(other.name != spec.name and other.unlabelled == "anywhere"
               and other.value_regex().fullmatch(text)
               for other in schema.fields.values())


def before_other_value(spec: FieldSpec, value: str, run: str, schema: PlateSchema) -> str:
    """``value`` without trailing words that begin another field's value running to the
    end of the run (``NIKMAX Motors 50/60 Hz``: a maker, then a frequency) or a code this
    field never is (``Ferro IM 1001``, ``MOTAQUA GB 18613``: a maker, then a mounting code
    or a standard)."""
    if starts_never(spec, value):
        return value  # "NDE 6205-2Z" is one code, not "NDE" and a bearing
    # glued, no space: "91458433JG6306-2RS", a serial and a bearing
    glued = re.search(rf"(?<=[A-Z0-9])(?:{spec.never_pattern})$", value) \
        if spec.never_pattern else None
    if glued and glued.start() >= 5 and spec.value_regex().fullmatch(value[:glued.start()]):
        return value[:glued.start()]
    for cut in (m.start() for m in re.finditer(r"(?<= )\S", value)):
        head = value[:cut].rstrip()
        tail = run[cut:].strip()
        if spec.value_regex().fullmatch(head) and (
                other_format(spec, tail, schema) or starts_never(spec, tail)):
            return head
    return value


def without_glued_label(spec: FieldSpec, value: str, after: str,
                        schema: PlateSchema) -> str:
    """``value`` without another field's label glued to its end, when a colon and that
    field's value follow (``N04-180M-4P:75 kW``: the detector joined a model to the power's
    ``P:``)."""
    if not after.startswith((":", "：")):
        return value
    rest = after[1:].strip()
    for size in range(1, min(4, len(value) - 2)):
        head, tail = value[:-size], value[-size:]
        if not spec.value_regex().fullmatch(head):
            continue
        for other in schema.fields.values():
            label = label_regex(other)
            if other is not spec and label is not None and label.fullmatch(tail + ":") \
                    and other.value_regex().match(rest):
                return head
    return value


def labelled_value(text: str, schema: PlateSchema) -> bool:
    """True when ``text`` is a field's label followed by a value of that field."""
    for spec in schema.fields.values():
        label = label_regex(spec)
        found = label.match(text) if label is not None else None
        if found and found.end() < len(text) and spec.value_regex().fullmatch(text[found.end():]):
            return True
    return False


def starts_never(spec: FieldSpec, text: str) -> bool:
    """True when ``text`` begins with a whole token of a pattern this field never is."""
    token = spec.never_token()
    return token is not None and token.match(text) is not None


def glued_value(spec: FieldSpec, lines: list[Line], schema: PlateSchema,
                taken: set[str]) -> FieldValue | None:
    """A run that is a label and a value without any space (engines drop spaces:
    ``TYPREA0933T``, ``SERIALNO.09893408AF``, ``SchutzartIP56``, ``ModeleB77-160L-2``,
    ``Model/TypeJ79-180L-4``); the rest must be the whole of a value of this field's format,
    with a digit in it."""
    forms = sorted({unaccented(re.sub(r"\s+", "", label).lower()).rstrip(".")
                    for label in spec.labels}, key=len, reverse=True)
    forms = [form for form in forms if len(form) >= 2]

    def label_end(folded: str, start: int) -> int:
        """Where a label starting at ``start`` ends, with its separator and any labels
        chained to it by "/"."""
        while start < len(folded) and folded[start] in ".:：#-":
            start += 1
        if start < len(folded) - 1 and folded[start] == "/":
            chained = next((f for f in forms if folded.startswith(f, start + 1)), None)
            if chained is not None:
                return label_end(folded, start + 1 + len(chained))
        return start

    for line in lines:
        for word in line.words:
            text = word.text.strip()
            folded = unaccented(text.lower())  # one character for one: indexes hold
            for form in forms:
                if not folded.startswith(form):
                    continue
                start = label_end(folded, len(form))
                rest = code_case(text[start:])  # "type/typ4Hx1097-7MW87": the code alone
                # a digit in the rest: glued label words ("ELUMODEL") are not values
                if len(rest) >= 3 and any(ch.isdigit() for ch in rest) \
                        and rest not in taken and spec.value_regex().fullmatch(rest) \
                        and not is_label(rest, schema):
                    conf, box = word.evidence(start, len(text))
                    return FieldValue(value=rest, confidence=conf, box=box)
    return None
