"""Which way a plate sets its labels: under their values (captions) or over them (stacked).

A label word alone on its line may have a run of its field's format both just above and just
below it (``YWC97-158`` / ``Typ`` / ``2018-749942``); its own neighbours cannot tell which is
its value. The plate's other labels can: a plate is set one way throughout.
"""

from __future__ import annotations

from appliance.reader.labels import nearest_field
from appliance.reader.lines import Line, Word
from appliance.schema import PlateSchema

#: labels that must point the same way before a plate counts as captioned
MIN_VOTES = 2


def _neighbour(line: Line, label: Word) -> Word | None:
    """The run of ``line`` that overlaps ``label`` across the most width, if any."""
    x0, _, x1, _ = label.box
    overlaps = [(min(x1, w.box[2]) - max(x0, w.box[0]), w) for w in line.words]
    overlaps = [(width, w) for width, w in overlaps if width > 0]
    return max(overlaps, key=lambda item: item[0])[1] if overlaps else None


def captioned(lines: list[Line], schema: PlateSchema) -> bool:
    """True when the plate's labels stand under their values: more than twice as many
    labels (and at least ``MIN_VOTES``) have a run of their field's format just above and
    none just below as have one just below and none above, or one beside them."""
    under = other_ways = 0
    for index, line in enumerate(lines):
        for position, word in enumerate(line.words):
            name = nearest_field(word.text.strip(), schema.label_table)
            if name is None:
                continue
            value_re = schema.fields[name].value_regex()
            after = line.words[position + 1] if position + 1 < len(line.words) else None
            if after is not None and value_re.fullmatch(after.text.strip()):
                other_ways += 1  # its value beside it
                continue
            fits = []
            for other in (lines[index - 1] if index else None,
                          lines[index + 1] if index + 1 < len(lines) else None):
                run = _neighbour(other, word) if other is not None else None
                fits.append(run is not None and bool(value_re.fullmatch(run.text.strip())))
            under += int(fits[0] and not fits[1])
            other_ways += int(fits[1] and not fits[0])
    return under >= MIN_VOTES and under > 2 * other_ways
