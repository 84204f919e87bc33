"""Fields whose label was not read, found among the runs no other field took.

A plate's label may be unreadable (``N°DSSRRG:``, ``SERAENO``) while its value is read well;
what is left over once every labelled value is attached can still only be one field's.
Such a guess carries a capped confidence, so a wrong one asks for a reshoot, never a
MISMATCH.
"""

from __future__ import annotations

import re

from appliance.reader.calibration import field_kind
from appliance.reader.labels import is_label
from appliance.reader.lines import Line, Word
from appliance.reader.value_ends import other_format
from appliance.schema import FieldSpec, PlateSchema
from appliance.transport.messages import FieldValue

#: the most a value found by elimination (its label unread) may claim: never a sure MISMATCH
ELIMINATION_CONFIDENCE = 0.5


def _claims(spec: FieldSpec, text: str, schema: PlateSchema) -> bool:
    """Whether a whole run could be this field's value and no distinctive other format's."""
    return bool(spec.value_regex().fullmatch(text)) and not is_label(text, schema) \
        and not other_format(spec, text, schema) \
        and not any(other.name != spec.name and field_kind(other) == "date"
                    and other.value_regex().fullmatch(text) for other in schema.fields.values())


def _free(text: str, taken: set[str]) -> bool:
    """Whether a run is left over: neither another field's value nor a word of one
    (``18.5`` of ``18.5 kW``, joined from two runs)."""
    return bool(text) and text not in taken and not any(text in value.split()
                                                         for value in taken)


#: a word of letters, then one token of six characters or more with a digit: a label
#: misread past knowing, then its value (``SERAENO 40846580``; not ``Alt. 106``)
_UNKNOWN_WORD_THEN_CODE = re.compile(r"[^\W\d_]{3,}\.?\s+(?=\S*\d)(\S{6,})")


def _leftover_values(lines: list[Line], taken: set[str], schema: PlateSchema,
                     ) -> list[tuple[Word, int, str]]:
    """Runs left for :func:`by_elimination`, as (run, start, text): a whole run, or what
    follows a colon inside it or a first word of letters alone (the label before it is then
    a word no schema knows, else the field would have been found by it:
    ``Ne: XG-40/250``, ``0STB8: 08/2020``, ``SERAENO 40846580``). Only text with a digit
    counts: a run of capitals alone is far likelier a cut-off word (``DREHZ``) than a
    code; a run that is a code of the schema's ``patterns`` (``IEC 60034-1``) is none."""
    codes = [re.compile(pattern) for pattern in schema.patterns.values()]
    out = []
    for line in lines:
        for word in line.words:
            text = word.text.strip()
            start = word.text.index(text) if text else 0
            unknown = _UNKNOWN_WORD_THEN_CODE.fullmatch(text)
            if unknown and (any(code.fullmatch(text) for code in codes)
                            or is_label(text[: unknown.start(1)].strip(), schema)):
                unknown = None  # a code, or a label read whose value was not its field's
            if ":" in text[1:-1]:
                head, _, tail = text.rpartition(":")
                start += len(head) + 1 + (len(tail) - len(tail.lstrip()))
                text = tail.strip()
            elif unknown:
                start += unknown.start(1)
                text = unknown.group(1)
            if _free(text, taken) and any(ch.isdigit() for ch in text):
                out.append((word, start, text))
    return out


def by_elimination(result: dict[str, FieldValue], lines: list[Line], schema: PlateSchema,
                   taken: set[str]) -> None:
    """Fields whose label was not read (``N°DSSRRG:``) take the one run left that only
    they can claim (:func:`_leftover_values`). Where several code fields and as many runs
    each could be any of them (a model and a serial, both labels unread), they are taken
    in the schema's order from the top of the plate (a type above its serial). Always
    with a capped confidence: a wrong guess asks for a reshoot."""
    missing = [spec for name, spec in schema.fields.items()
               if result[name].value is None and spec.unlabelled == "never"]
    left = _leftover_values(lines, taken, schema)

    def take(spec: FieldSpec, item: tuple[Word, int, str]) -> None:
        word, start, text = item
        conf, box = word.evidence(start, start + len(text))
        result[spec.name] = FieldValue(value=text, box=box,
                                       confidence=min(conf, ELIMINATION_CONFIDENCE))
        taken.add(text)

    for spec in missing:
        mine = [item for item in left if _claims(spec, item[2], schema)]
        rivals = [o for o in missing if o is not spec
                  and any(_claims(o, text, schema) for _, _, text in mine)]
        if len(mine) == 1 and not rivals:
            take(spec, mine[0])
    left = [item for item in left if item[2] not in taken]
    still = [spec for spec in missing if result[spec.name].value is None
             and field_kind(spec) == "code"
             and any(_claims(spec, text, schema) for _, _, text in left)]
    # runs any of them could be (a shorter run only a model could be, "EF85", is likelier a
    # misread label than the model)
    claimed = [item for item in left if all(_claims(spec, item[2], schema) for spec in still)]
    if len(still) >= 2 and len(claimed) == len(still):
        for spec, item in zip(still, claimed, strict=True):  # lines run top to bottom
            take(spec, item)
