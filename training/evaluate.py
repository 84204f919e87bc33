"""Measure a reader on rendered plates: whole-field exact match, plates with model and
serial both exact, wrong-versus-not-read, and time per frame."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from appliance.reader.base import PlateReading, Reader
from appliance.reader.calibration import ece, reliability
from appliance.reader.textmatch import fold
from appliance.schema import PlateSchema, load_schema
from appliance.synth.dataset import iter_samples
from appliance.synth.engine import render_sample
from rules import RuleSet
from training.verdict_rates import Shot, VerdictRates, one_character_changed


def scoreable(field: dict[str, Any]) -> bool:
    """A field a reader can be held to: drawn, inside the frame, not covered, and legible
    (see ``synth.engine._legible``: big, sharp and contrasted enough for a person)."""
    return bool(field["shown"] and not field["cut"] and not field["occluded"]
                and field.get("legible", True))


def shown_values(fields: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The true record of a rendered plate: every field drawn on it with a value (what the
    ERP would expect), legible or not."""
    return {name: str(t["value"]) for name, t in fields.items()
            if t.get("shown") and t.get("value")}


def beyond_limits(field: dict[str, Any]) -> bool:
    """Drawn and inside the frame but not legible: the reader must not give a wrong value."""
    return bool(field["shown"] and not field["cut"] and not field["occluded"]
                and not field.get("legible", True))


def _verify_both(reader: Reader, image: np.ndarray, truth: dict[str, str]) -> dict[str, Any]:
    """Verify outcomes on the true record and on it with the serial changed (for
    :meth:`VerdictRates.add`); nothing for a reader without a verify mode."""
    check = getattr(reader, "verify", None)
    if check is None or not truth:
        return {}
    true = {name: str(v.get("status")) for name, v in check(image, truth).items()}
    if not truth.get("serial"):
        return {"verify": true}
    changed = one_character_changed(truth["serial"])
    seen = check(image, {"serial": changed})["serial"]
    return {"verify": true, "changed_serial": changed,
            "verify_changed": {**true, "serial": str(seen.get("status"))}}


def shot_of(reader: Reader, image: np.ndarray, reading: PlateReading, truth: dict[str, str], *,
          verify: bool) -> Shot:
    """One frame as the rules see it (``reading`` is the reader's reading of ``image``)."""
    issues: Any = reading.extra.get("quality")
    checks = _verify_both(reader, image, truth) if verify else {}
    return Shot({n: f.model_dump() for n, f in reading.fields.items()},
                issues if isinstance(issues, list) else [], checks.get("verify"),
                checks.get("verify_changed"))


def _frames(first: Shot, later: Callable[[int], Shot]) -> Callable[[int], Shot]:
    return lambda k: first if k == 0 else later(k)


def _reshot(reader: Reader, schema: PlateSchema, labels: dict[str, Any], truth: dict[str, str],
            *, verify: bool) -> Callable[[int], Shot]:
    """The frames of a unit's reshoots: shot k > 0 renders the same plate again
    (``render_sample(..., shot=k)``) and reads it."""
    def shot(k: int) -> Shot:
        image = render_sample(labels["seed"], schema=schema, split=labels["split"],
                              size=(labels["width"], labels["height"]), shot=k).image
        return shot_of(reader, image, reader.read([image])[0], truth, verify=verify)
    return shot


def evaluate(reader: Reader, schema_file: Path, *, split: str = "dev", n: int = 200,
             seed: int = 2026, workers: int = 2,
             samples: Iterable[tuple[np.ndarray, dict[str, Any]]] | None = None,
             rules: RuleSet | None = None, family: str = "motor",
             verify: bool = False, reshoots: bool = False) -> dict[str, Any]:
    """Render ``n`` frames of ``split`` (or take ``samples``, already rendered) and read
    them one at a time. With ``rules``, also the product-level verdict rates
    (:class:`training.verdict_rates.VerdictRates`); with ``verify`` (as
    ``reader.verify_known`` does in the appliance) the reader's verify mode judges the true
    record and the changed one, and the rules use it; with ``reshoots`` a unit the rules ask
    to reshoot is photographed again (the same plate, new light and camera noise) and judged
    with its earlier frames, up to the rules' ``max_reshoots``, instead of judging its first
    frame as the final attempt.

    Fields are scored where a person could read them (``scoreable``); on fields past the
    legibility limits only a wrong value counts against the reader (not read is right).
    """
    per_field: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # exact, wrong, total
    in_text = 0  # legible values found verbatim (folded) inside one of the reader's text runs
    plates_ok = plates = gated = 0
    beyond = [0, 0]  # fields past the legibility limits: read wrongly, total
    unreadable_frames = caught = 0  # model or serial drawn but unreadable; of those, flagged
    latencies: list[float] = []
    failures: list[dict[str, Any]] = []
    if samples is None:
        samples = iter_samples(schema_file, seed=seed, split=split, n=n, workers=workers)
    rates = VerdictRates(rules, family=family) if rules is not None else None
    schema = load_schema(schema_file)
    confidences: list[tuple[float, bool]] = []  # every value given: (confidence, right)
    frames = 0
    for image, labels in samples:
        frames += 1
        started = time.perf_counter()
        reading = reader.read([image])[0]
        _sync(reader)
        latencies.append((time.perf_counter() - started) * 1000)
        flagged = bool(reading.extra.get("quality"))
        gated += int(flagged)
        if any(truth["shown"] and not scoreable(truth)
               for name, truth in labels["fields"].items() if name in ("model", "serial")):
            unreadable_frames += 1
            caught += int(flagged)
        both = True
        lines: Any = reading.extra.get("lines", [])
        runs = [fold(str(t)) or "" for t in lines]
        for name, truth in labels["fields"].items():
            got = reading.fields[name].value if name in reading.fields else None
            if got is not None:
                confidences.append((reading.fields[name].confidence, bool(truth["shown"])
                                    and fold(got) == fold(truth["value"])))
            if beyond_limits(truth):
                beyond[1] += 1
                beyond[0] += int(got is not None and fold(got) != fold(truth["value"]))
            if not scoreable(truth):
                continue
            counts = per_field[name]
            counts[2] += 1
            in_text += int(any((fold(truth["value"]) or "") in run for run in runs))
            if fold(got) == fold(truth["value"]):
                counts[0] += 1
            else:
                if got is not None:
                    counts[1] += 1
                if name in ("model", "serial"):
                    both = False
                if len(failures) < 40:
                    failures.append({"seed": labels["seed"], "field": name,
                                     "truth": truth["value"], "read": got})
        if scoreable(labels["fields"]["model"]) and scoreable(labels["fields"]["serial"]):
            plates += 1
            plates_ok += int(both)
        if rates is not None:
            truth = shown_values(labels["fields"])
            first = shot_of(reader, image, reading, truth, verify=verify)
            changed = one_character_changed(truth["serial"]) if truth.get("serial") else None
            if reshoots:
                rates.add_unit(_frames(first, _reshot(reader, schema, labels, truth,
                                                      verify=verify)),
                               truth, changed_serial=changed, unit=labels["seed"])
            else:
                rates.add(first.reading, truth, first.quality, verify=first.verify,
                          changed_serial=changed, verify_changed=first.verify_changed,
                          unit=labels["seed"])
    exact = sum(c[0] for c in per_field.values())
    total = sum(c[2] for c in per_field.values())
    wrong = sum(c[1] for c in per_field.values())
    return {
        "split": split, "frames": frames, "seed": seed,
        "values_in_text": round(in_text / max(1, total), 4),
        "field_exact": round(exact / max(1, total), 4), "fields": total,
        "field_wrong": round(wrong / max(1, total), 4),
        "field_not_read": round((total - exact - wrong) / max(1, total), 4),
        "plates_model_and_serial_exact": round(plates_ok / max(1, plates), 4),
        "plates": plates,
        "beyond_limits_fields": beyond[1],
        "beyond_limits_read_wrong": round(beyond[0] / max(1, beyond[1]), 4),
        "quality_flagged": round(gated / max(1, frames), 4),
        # the gate against the labels: frames whose model or serial is drawn but cut off,
        # covered or illegible should be flagged; others should not
        "quality_gate": {
            "frames_unreadable": unreadable_frames,
            "recall": round(caught / max(1, unreadable_frames), 4),
            "precision": round(caught / max(1, gated), 4),
        },
        "per_field": {k: round(v[0] / max(1, v[2]), 4) for k, v in sorted(per_field.items())},
        "latency_ms": {"median": round(statistics.median(latencies), 1) if latencies else None,
                       "p90": round(sorted(latencies)[int(0.9 * (len(latencies) - 1))], 1)
                       if latencies else None},
        # is a value's confidence the chance it is right? (docs/reader-ppocr.md, Verdicts)
        "calibration": {"values": len(confidences), "ece": round(ece(confidences), 4),
                        "reliability": [[round(c, 3), round(a, 3), k]
                                        for c, a, k in reliability(confidences)]},
        "backend": reader.name, "device": reader.device, "failures": failures,
        **({"verdicts": rates.summary()} if rates is not None else {}),
    }


def _sync(reader: Reader) -> None:
    if reader.device == "cuda":
        import torch

        torch.cuda.synchronize()
