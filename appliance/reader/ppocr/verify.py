"""Verify mode: is the expected value what the plate says?

The expected value is put in place of the closest part of the text run that holds it, and
scored under the recogniser's CTC distribution against every single-character change of
it (substitutions, deletions, insertions of characters the run makes plausible) and against
what was read. It is ``verified`` only when it beats all of them by a clear margin, so a
record that differs from the plate by one character is not verified. The field ``differs``
only where something else was read with confidence *and* the expected value is clearly the
less likely reading (DIFFERS_MARGIN); in between it is ``unreadable``: unsure, a reshoot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from appliance.geometry import quad_box
from appliance.reader.labels import label_regex
from appliance.reader.ppocr.recognise import Charset, LineReading, ctc_scores
from appliance.reader.textmatch import best_substring, fold
from appliance.schema import PlateSchema
from appliance.transport.messages import FieldValue

#: the expected text must be 4× likelier than any one-character change. Measured on 5,600
#: station values (``training.calibrate.verify_margin``): 20× verified 75 % of true values,
#: 4× 83 %, and real one-character changes verified stayed at 1 in 5,628
MARGIN = math.log(4.0)
#: "differs" needs the expected text 100× less likely than the best rival. Measured
#: (``training.calibrate.verify_margin``, seed 2026 station frames): no real one-character
#: change scored above log 1/150, while good units read confidently wrong scored up to +0.01
#: (a misread, not a wrong plate); those become reshoots instead of false MISMATCHes
DIFFERS_MARGIN = math.log(100.0)
PLAUSIBLE = 1e-3          # a character is a plausible alternative where it reaches this probability


def _plausible_chars(log_probs: torch.Tensor, charset: Charset) -> list[str]:
    peak = log_probs.exp().max(0).values[1:]  # per class, over the run; skip the blank
    allowed = charset.allowed.tolist()[1:]
    return [charset.classes[allowed[k]] for k in torch.nonzero(peak >= PLAUSIBLE).flatten()]


def single_changes(value: str, alphabet: Sequence[str]) -> set[str]:
    """Every string one substitution, deletion or insertion (from ``alphabet``) away."""
    out: set[str] = set()
    for i in range(len(value) + 1):
        if i < len(value):
            out.add(value[:i] + value[i + 1:])
            out.update(value[:i] + c + value[i + 1:] for c in alphabet if c != value[i])
        out.update(value[:i] + c + value[i:] for c in alphabet)
    out.discard(value)
    out.discard("")
    return out


def _same_kind(a: str, b: str) -> bool:
    return (a.isdigit() and b.isdigit()) or (a.isalpha() and b.isalpha())


def _label_ends_at(text: str, position: int, schema: PlateSchema | None) -> bool:
    """Whether a label of three characters or more ends at ``position`` (``S/N`` of
    ``S/N2015-794241``). Shorter ones (``U``, ``SN``) do not count: a record that lacks a
    value's first character must not pass for a label glued to the rest."""
    if schema is None:
        return False
    for spec in schema.fields.values():
        label = label_regex(spec)
        if label is not None and any(
                found.end() >= position > found.start() and len(found.group(0).strip()) >= 3
                for found in label.finditer(text[:position] + " ")):
            return True
    return False


def _whole_token(text: str, start: int, end: int,
                 schema: PlateSchema | None = None) -> tuple[int, int]:
    """Grow ``text[start:end]`` over the letters and digits it is glued to: "30V" found
    inside "230V" stands for all of "230V", "VX132M-4" inside "VX132M-4X" for all of it, so
    an ERP value that is a part of what the plate says is scored against the whole. A label
    glued before the value (``S/N2015-794241``, ``Un110V``) is not grown over; without a
    schema, only over neighbours of the same kind (digit next to digit)."""
    glued = _same_kind if schema is None else (lambda a, b: a.isalnum() and b.isalnum())
    if start < end and not _label_ends_at(text, start, schema):
        while start > 0 and glued(text[start - 1], text[start]):
            start -= 1
            if _label_ends_at(text, start, schema):
                break
    while end < len(text) and end > start and glued(text[end], text[end - 1]):
        end += 1
    return start, end


def _best_line(lines: Sequence[LineReading], want: str,
               schema: PlateSchema | None = None) -> tuple[int, int, int] | None:
    """(line, start, end) of the run part closest to ``want``, grown to whole tokens; None
    if nothing is close."""
    best: tuple[int, int, int, int] | None = None
    for i, line in enumerate(lines):
        if not line.text:
            continue
        start, end, edits = best_substring(line.text, want)
        if best is None or edits < best[3]:
            best = (i, start, end, edits)
    if best is None or best[3] > max(2, len(want) // 3):
        return None
    start, end = _whole_token(lines[best[0]].text, best[1], best[2], schema)
    return best[0], start, end


def verify_field(lines: Sequence[LineReading], log_probs: Sequence[torch.Tensor],
                 quads: Sequence[np.ndarray], got: FieldValue | None, want: str,
                 charset: Charset, schema: PlateSchema | None = None) -> dict[str, object]:
    """Verdict on one expected value: status, what was read, confidence and box. With the
    plate's ``schema`` the value is scored as the whole alphanumeric token it sits in, its
    label excepted."""
    read = got.value if got is not None else None
    place = _best_line(lines, want, schema)
    if place is None or charset.encode(want) is None:
        status = "differs" if read is not None and got is not None and got.confidence >= 0.5 \
            else "unreadable"
        return {"status": status, "read": read, "confidence": 0.0 if got is None else
                got.confidence, "box": None if got is None else got.box}
    index, start, end = place
    text = lines[index].text
    prefix, suffix = text[:start], text[end:]
    candidate = prefix + want + suffix
    rivals = {prefix + v + suffix
              for v in single_changes(want, _plausible_chars(log_probs[index], charset))}
    if fold(text) != fold(candidate):
        rivals.add(text)
    rivals = {r for r in rivals if fold(r) != fold(candidate)}
    width = log_probs[index].shape[0]
    table = log_probs[index].unsqueeze(0)
    ordered = [candidate, *sorted(rivals)]
    scores = ctc_scores(table, [width], [(0, t) for t in ordered], charset)
    margin = scores[0] - max(scores[1:], default=-math.inf)
    box = quad_box(quads[index])
    # the margin (log odds over the best rival) goes out too: thresholds are measured on it
    kept = round(margin, 3) if math.isfinite(margin) else None
    if scores[0] > -math.inf and margin >= MARGIN:
        confidence = 1.0 / (1.0 + math.exp(-(margin - MARGIN))) if margin < 60 else 1.0
        return {"status": "verified", "read": want, "confidence": round(confidence, 4),
                "box": box, "margin": kept}
    if read is not None and got is not None and fold(read) != fold(want) \
            and got.confidence >= 0.5 and margin <= -DIFFERS_MARGIN:
        return {"status": "differs", "read": read, "confidence": got.confidence,
                "box": got.box, "margin": kept}
    return {"status": "unreadable", "read": read, "confidence": 0.0, "box": box,
            "margin": kept}
