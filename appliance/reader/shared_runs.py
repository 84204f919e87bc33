"""One text run is one field's value: settling runs that several fields took.

Each field finds its value from its own labels (``fields.assign_fields``), so two labels
can reach the same run: a model label reaching down to the serial beside its own label.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from appliance.reader.labels import label_regex
from appliance.schema import FieldSpec, PlateSchema
from appliance.transport.messages import FieldValue

if TYPE_CHECKING:
    from appliance.reader.lines import Line, Word


def settle_shared_runs(result: dict[str, FieldValue], lines: list[Line],
                       schema: PlateSchema) -> None:
    """Where several fields took the same run, the field whose label stands clearly nearest
    to it keeps it; if none does, none keeps it (not read is a reshoot, a value given to the
    wrong field a false MISMATCH). Changes ``result`` in place."""
    claims: dict[tuple[str, tuple[int, ...]], list[str]] = {}
    for name, found in result.items():
        if found.value and found.box is not None:
            claims.setdefault((found.value, tuple(found.box)), []).append(name)
    words = [w for line in lines for w in line.words]
    for (value, _), names in claims.items():
        if len(names) < 2:
            continue
        home = next((w for w in words if value in w.text), None)
        distance = {name: _label_distance(schema.fields[name], home, words)
                    for name in names} if home is not None else {}
        ranked = sorted(names, key=lambda n: distance.get(n, math.inf))
        nearest, runner_up = (distance.get(n, math.inf) for n in ranked[:2])
        keeper = ranked[0] if nearest < math.inf and nearest < 0.7 * runner_up else None
        for name in names:
            if name != keeper:
                result[name] = FieldValue(value=None, confidence=0.0)


def _label_distance(spec: FieldSpec, value: Word, words: list[Word]) -> float:
    """How far the nearest of the field's labels stands from the value's run, in line
    heights, counting only labels on the run's row or in its column (inf when none)."""
    pattern = label_regex(spec)
    if pattern is None:
        return math.inf
    v = value.box
    height = max(1, v[3] - v[1])
    best = math.inf
    for word in words:
        if not pattern.search(word.text):
            continue
        b = word.box
        rows = min(v[3], b[3]) - max(v[1], b[1])
        columns = min(v[2], b[2]) - max(v[0], b[0])
        if rows >= 0.5 * min(height, b[3] - b[1]):      # beside: the gap along the row
            gap = max(0, b[0] - v[2], v[0] - b[2])
        elif columns >= 0.3 * min(v[2] - v[0], b[2] - b[0]):  # above or below it
            gap = max(0, b[1] - v[3], v[1] - b[3])
        else:
            continue
        best = min(best, gap / height)
    return best
