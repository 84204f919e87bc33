"""Approximate text matching: edit distances for misread labels and labelled values."""

from __future__ import annotations

import re

#: lowercase letters drawn like their capitals, only smaller: readers mix the two cases
CASE_TWINS = "cosuvwxz"
_TO_CAPITALS = str.maketrans(CASE_TWINS, CASE_TWINS.upper())
_TOKEN = re.compile(r"\S+")


def code_case(text: str) -> str:
    """``text`` with every code-like token in capitals where its only lowercase letters are
    case twins: ``K1sE942P4`` → ``K1SE942P4``, ``85319580cK`` → ``85319580CK``. Code-like:
    two capitals, or a capital and four digits; ``Cos4`` (a misread ``cos φ``), ``1459r/min``,
    ``15kW``, ``Freq.50Hz`` and ``50/60Hz`` (hertz: the common unit written with a capital
    and a twin) stay as they are."""
    def capitals(match: re.Match[str]) -> str:
        token = match.group(0)
        lower = [c for c in token if c.islower()]
        upper = sum(c.isupper() for c in token)
        digits = sum(c.isdigit() for c in token)
        if lower and all(c in CASE_TWINS for c in lower) and not token.endswith("Hz") \
                and digits and (upper >= 2 or (upper and digits >= 4)):
            return token.translate(_TO_CAPITALS)
        return token
    return _TOKEN.sub(capitals, text)


def fold(text: str | None) -> str | None:
    """``text`` with white space removed and case folded (how values are compared)."""
    return None if text is None else re.sub(r"\s+", "", text).casefold()


def edit_distance(a: str, b: str, *, limit: int | None = None) -> int:
    """Characters inserted, dropped or changed to turn ``a`` into ``b`` (Levenshtein).

    With ``limit``, any distance above it is reported as ``limit + 1`` (and found sooner).
    """
    if limit is not None and abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(previous[j - 1] + (ca != cb), previous[j] + 1, current[j - 1] + 1)
        if limit is not None and min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1] if limit is None else min(previous[-1], limit + 1)


def best_substring(text: str, value: str) -> tuple[int, int, int]:
    """(start, end, edits): the part of ``text`` closest to ``value`` by edit distance."""
    m, n = len(value), len(text)
    # dist[j]: fewest edits turning value[:i] into some text[s:j]; start[j] remembers s
    dist, start = [0] * (n + 1), list(range(n + 1))
    for i in range(1, m + 1):
        new_dist, new_start = [i] + [0] * n, [0] * (n + 1)
        for j in range(1, n + 1):
            options = ((dist[j - 1] + (value[i - 1] != text[j - 1]), start[j - 1]),
                       (dist[j] + 1, start[j]),                  # value char missing
                       (new_dist[j - 1] + 1, new_start[j - 1]))  # extra text char
            new_dist[j], new_start[j] = min(options)
        dist, start = new_dist, new_start
    end = min(range(n + 1), key=lambda j: (dist[j], -j))
    return start[end], end, dist[end]
