"""Text normalisation and comparison helpers for plate values."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

UNIT_ALIASES = {
    "rpm": "r/min", "min-1": "r/min", "1/min": "r/min", "min⁻¹": "r/min", "u/min": "r/min",
    "tr/min": "r/min", "rev/min": "r/min",
}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def normalise(text: str, steps: Iterable[str]) -> str:
    """Apply the named normalisation steps (see ``rules.models.NORMALISERS``)."""
    steps = set(steps)
    out = text.strip()
    if "decimal_comma" in steps:
        out = re.sub(r"(?<=\d),(?=\d)", ".", out)
    if "case" in steps:
        out = out.casefold()
    if "units" in steps:
        lowered = out.casefold()
        for alias, canonical in UNIT_ALIASES.items():
            if alias in lowered:
                out = re.sub(re.escape(alias), canonical, out, flags=re.IGNORECASE)
                lowered = out.casefold()
    if "space" in steps:
        out = re.sub(r"\s+", "", out)
    if "leading_zeros" in steps:
        out = re.sub(r"(?<![\d.])0+(?=\d)", "", out)
    return out


def numbers(text: str) -> list[float]:
    """All numbers in ``text`` (after decimal-comma normalisation), in order."""
    return [float(n) for n in _NUMBER.findall(text.replace(",", "."))]


def shape(text: str) -> str:
    """``text`` with every number replaced by ``#`` (compare structure apart from values)."""
    return _NUMBER.sub("#", text)


def alternatives(text: str) -> list[str]:
    """Split a dual value on ``/`` and give each part the unit of the last one.

    ``230/400v`` → ``["230v", "400v"]``; ``15.2/8.8a`` → ``["15.2a", "8.8a"]``. A ``/`` inside a
    unit (``r/min``) is left alone.
    """
    match = re.fullmatch(r"((?:\d+(?:\.\d+)?/)+\d+(?:\.\d+)?)(\D*)", text)
    if not match:
        return [text]
    unit = match.group(2)
    return [part + unit for part in match.group(1).split("/")]


def close(a: float, b: float, tolerance: float) -> bool:
    """True when ``a`` is within a relative ``tolerance`` of ``b``."""
    return abs(a - b) <= tolerance * max(abs(b), 1e-9) + 1e-9


def lookalike_map(groups: Iterable[str]) -> dict[str, str]:
    """Map every look-alike character (either case) to its group's representative."""
    mapping: dict[str, str] = {}
    for group in groups:
        rep = group[0]
        for ch in group:
            mapping[ch] = rep
            mapping[ch.lower()] = rep
            mapping[ch.upper()] = rep
    return mapping


def fold_lookalikes(text: str, mapping: dict[str, str]) -> str:
    """Replace look-alike characters by their group's representative."""
    return "".join(mapping.get(ch, ch) for ch in text)


def lookalike_variants(text: str, groups: Iterable[str], limit: int = 6) -> list[str]:
    """Strings obtained by swapping look-alike characters (at most ``limit`` positions vary)."""
    options: list[list[str]] = []
    varying = 0
    for ch in text:
        group = next((g for g in groups if ch.upper() in g.upper()), None)
        if group and varying < limit:
            varying += 1
            alts = {ch} | {c for c in group} | {c.lower() for c in group if c.isalpha()}
            options.append(sorted(alts))
        else:
            options.append([ch])
    return ["".join(p) for p in itertools.product(*options)]
