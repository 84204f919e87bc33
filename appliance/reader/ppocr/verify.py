"""Verify mode: is the expected value what the plate says?

The expected value is put in place of the closest part of the text run that holds it, and
scored under the recogniser's CTC distribution against every single-character change of
it (substitutions, deletions, insertions of characters the run makes plausible) and against
what was read. It is ``verified`` only when it beats all of them by a clear margin, so a
record that differs from the plate by one character is not verified. The field ``differs``
only where something else was read with confidence *and* the expected value is clearly the
less likely reading (DIFFERS_MARGIN); in between it is ``unreadable``: unsure, a reshoot.

A value the detector cut into runs side by side is scored part by part; a rival the field's
format rules out (one character in place of another: ``5O Hz`` for ``50 Hz``) is no rival;
and a value not verified at first gets a second look on its runs read stretched
(:func:`second_look`, the reader's ``verify_reading``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from appliance.geometry import quad_box
from appliance.reader.labels import label_regex, starts_a_label
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
#: a second look at a value not verified at first: its runs read again stretched this much
#: wider (more CTC steps a character). Verified where the mean of both looks' margins
#: clears MARGIN, a bound below the two looks' joint margin. Measured on 100 station frames
#: (``training.calibrate.collect``): 7 more of 867 true values verified; the real
#: one-character changes' best mean margin was -4.8, none near MARGIN
STRETCH = 1.3
#: the margin reported where no rival is left (every one ruled out by the field's format)
NO_RIVAL = 100.0
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


def _label_starts_at(text: str, position: int, schema: PlateSchema | None) -> bool:
    """Whether another field's label of three characters or more starts at ``position``,
    glued to what stands before it (``4MN3832-3BX83-6YW4Intensidad 34.0 A``: the detector
    joined a model to the current's label)."""
    # cut at ``position``: a label's pattern wants no letter before it
    return schema is not None and position > 0 \
        and starts_a_label(text[position:], 0, 3, schema)


def _whole_token(text: str, start: int, end: int,
                 schema: PlateSchema | None = None) -> tuple[int, int]:
    """Grow ``text[start:end]`` over the letters and digits it is glued to: "30V" found
    inside "230V" stands for all of "230V", "VX132M-4" inside "VX132M-4X" for all of it, so
    an ERP value that is a part of what the plate says is scored against the whole. A label
    glued before or after the value (``S/N2015-794241``, ``Un110V``, ``6YW4Intensidad``) is
    not grown over; without a schema, only over neighbours of the same kind (digit next to
    digit)."""
    glued = _same_kind if schema is None else (lambda a, b: a.isalnum() and b.isalnum())
    if start < end and not _label_ends_at(text, start, schema):
        while start > 0 and glued(text[start - 1], text[start]):
            start -= 1
            if _label_ends_at(text, start, schema):
                break
    while end < len(text) and end > start and glued(text[end], text[end - 1]) \
            and not _label_starts_at(text, end, schema):
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


def _side_by_side(left: tuple[int, int, int, int], right: tuple[int, int, int, int]) -> bool:
    """Whether box ``right`` continues box ``left`` on its row: they share half the smaller
    height, and ``right`` starts after ``left`` begins, within three heights of its end."""
    height = min(left[3] - left[1], right[3] - right[1])
    shared = min(left[3], right[3]) - max(left[1], right[1])
    return height > 0 and shared >= height / 2 and left[0] < right[0] <= left[2] + 3 * height


def _places(lines: Sequence[LineReading], quads: Sequence[np.ndarray], want: str,
            schema: PlateSchema | None) -> list[tuple[int, int, int, str]] | None:
    """Where the expected value stands, as (line, start, end, part): one run holding it
    whole, else each of its space-separated parts in runs side by side on one row (the
    detector cut ``Velocidade: 1735`` from ``r/min``); None if neither is found."""
    whole = _best_line(lines, want, schema)
    if whole is not None:
        return [(*whole, want)]
    parts = want.split()
    if len(parts) < 2:
        return None
    places = []
    for part in parts:
        place = _best_line(lines, part, schema)
        if place is None:
            return None
        index, start, end = place
        text = lines[index].text
        # a part is a whole word of its run: "/min" found in "r/min" stands for all of it
        while start > 0 and not text[start - 1].isspace() \
                and not _label_ends_at(text, start, schema):
            start -= 1
        while end < len(text) and not text[end].isspace() \
                and not _label_starts_at(text, end, schema):
            end += 1
        places.append((index, start, end, part))
    boxes = [quad_box(quads[index]) for index, _, _, _ in places]
    if not all(_side_by_side(a, b) for a, b in itertools.pairwise(boxes)):
        return None
    return places


def _ruled_out(rival: str, want: str, fits: Callable[[str], object]) -> bool:
    """Whether the field's format rules ``rival`` out as a reading of ``want``: one character
    put in place of another where the format allows none (``5O Hz`` for ``50 Hz``). A
    character missing or added is never ruled out: a plate showing ``IP 5`` must not
    verify ``IP 55``."""
    return len(rival) == len(want) and sum(a != b for a, b in zip(rival, want, strict=True)) == 1 \
        and not fits(rival)


def _margin(line: LineReading, log_probs: torch.Tensor, start: int, end: int, want: str,
            charset: Charset, fits: Callable[[str], object] | None = None) -> float:
    """Log odds of the run with ``want`` in place of ``text[start:end]`` over its best rival
    (every single-character change of ``want``, and what was read; with ``fits``, not
    those the field's format rules out); -inf if ``want`` cannot be spelt there
    but a rival can, NaN if neither can."""
    text = line.text
    prefix, suffix = text[:start], text[end:]
    candidate = prefix + want + suffix
    rivals = {prefix + v + suffix
              for v in single_changes(want, _plausible_chars(log_probs, charset))}
    if fold(text) != fold(candidate):
        rivals.add(text)
    rivals = {r for r in rivals if fold(r) != fold(candidate)
              and not (fits is not None and _ruled_out(r[len(prefix): len(r) - len(suffix)],
                                                       want, fits))}
    ordered = [candidate, *sorted(rivals)]
    scores = ctc_scores(log_probs.unsqueeze(0), [log_probs.shape[0]],
                        [(0, t) for t in ordered], charset)
    best_rival = max(scores[1:], default=-math.inf)
    if scores[0] == -math.inf:  # cannot be spelt there: unknown beside unspellable rivals
        return -math.inf if best_rival > -math.inf else math.nan
    return scores[0] - best_rival


def verify_field(lines: Sequence[LineReading], log_probs: Sequence[torch.Tensor],
                 quads: Sequence[np.ndarray], got: FieldValue | None, want: str,
                 charset: Charset, schema: PlateSchema | None = None, *,
                 field: str | None = None) -> dict[str, object]:
    """Verdict on one expected value: status, what was read, confidence and box. With the
    plate's ``schema`` the value is scored as the whole alphanumeric token it sits in, its
    label excepted. A value the detector cut into runs is verified part by part: every part
    must be clearly the likeliest reading of its own run. With the schema's ``field`` and a
    value its format allows, look-alikes are settled by the format: a rival the format
    rules out (``5O Hz`` beside ``50 Hz``) is no rival."""
    read = got.value if got is not None else None
    places = _places(lines, quads, want, schema)
    if places is None or charset.encode(want) is None:
        status = "differs" if read is not None and got is not None and got.confidence >= 0.5 \
            and fold(read) != fold(want) else "unreadable"
        return {"status": status, "read": read, "confidence": 0.0 if got is None else
                got.confidence, "box": None if got is None else got.box}
    spec = schema.fields.get(field) if schema is not None and field is not None else None
    # the format judges whole values only: not the parts of a value cut into runs
    fits = spec.value_regex().fullmatch if spec is not None and len(places) == 1 \
        and spec.value_regex().fullmatch(want) else None
    margins = [_margin(lines[index], log_probs[index], start, end, part, charset, fits)
               for index, start, end, part in places]
    margin = math.nan if any(math.isnan(m) for m in margins) else min(margins)
    box = quad_box(np.concatenate([quads[index] for index, _, _, _ in places]))
    # the margin (log odds over the best rival) goes out too: thresholds are measured on it;
    # no rival at all (the format allows none) goes out as NO_RIVAL: JSON has no infinity
    kept = NO_RIVAL if margin == math.inf else round(margin, 3) if math.isfinite(margin) \
        else None
    if margin >= MARGIN:
        return {"status": "verified", "read": want, "confidence": _confidence(margin),
                "box": box, "margin": kept}
    if read is not None and got is not None and fold(read) != fold(want) \
            and got.confidence >= 0.5 and margin <= -DIFFERS_MARGIN:
        return {"status": "differs", "read": read, "confidence": got.confidence,
                "box": got.box, "margin": kept}
    return {"status": "unreadable", "read": read, "confidence": 0.0, "box": box,
            "margin": kept}


def _confidence(margin: float) -> float:
    """A verified value's confidence: how far its margin clears MARGIN, as a probability."""
    return round(1.0 / (1.0 + math.exp(-(margin - MARGIN))), 4) if margin < 60 else 1.0


def value_runs(lines: Sequence[LineReading], quads: Sequence[np.ndarray], want: str,
               schema: PlateSchema | None = None) -> list[int]:
    """Indices of the runs verify scores ``want`` on (empty: it is nowhere close)."""
    return sorted({index for index, _, _, _ in _places(lines, quads, want, schema) or []})


def second_look(first: dict[str, object], again: dict[str, object],
                want: str) -> dict[str, object]:
    """The verdict after a second look at ``want`` (``again``: verify on its runs read
    stretched): verified where the mean of both margins clears MARGIN, else ``first``."""
    margins = [m for m in (first.get("margin"), again.get("margin")) if isinstance(m, float)]
    if first["status"] == "verified" or len(margins) < 2:
        return first
    mean = sum(margins) / 2
    if mean < MARGIN:
        return first
    return {"status": "verified", "read": want, "confidence": _confidence(mean),
            "box": again.get("box") or first.get("box"), "margin": round(mean, 3)}
