"""Dates as plates and ERPs write them: ``05/2024``, ``05.2024``, ``2024-05``, ``MAY 2024``,
``Mai 2024``, ``14.05.2024``, ``2024-05-14``, ``14MAI24`` or a bare year, compared by meaning."""

from __future__ import annotations

import re
from dataclasses import dataclass

MONTHS: dict[str, int] = {}
for number, names in enumerate([
        "jan january januar janvier enero ene gennaio gen", "feb february februar fevrier février "
        "febrero febbraio", "mar march märz maerz mars marzo mrz", "apr april avril abril aprile",
        "may mai mayo maggio mag", "jun june juni juin junio giugno giu",
        "jul july juli juillet julio luglio lug", "aug august août aout agosto ago",
        "sep sept september septembre septiembre settembre set", "oct october oktober okt "
        "octobre octubre ottobre ott", "nov november novembre noviembre",
        "dec december dezember dez décembre decembre diciembre dic dicembre"], start=1):
    for name in names.split():
        MONTHS[name] = number

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"), "ymd"),
    (re.compile(r"(\d{1,2})[./](\d{1,2})[./](\d{4})"), "dmy"),
    (re.compile(r"(\d{4})[-/.](\d{1,2})"), "ym"),
    (re.compile(r"(\d{1,2})[-/.](\d{4})"), "my"),
    (re.compile(r"(\d{1,2}) ?([a-zäéû]{3,9})\.? ?(\d{2}|\d{4})"), "d_mon_y"),
    (re.compile(r"([a-zäéû]{3,9})\.?[ -]?(\d{4}|\d{2})"), "mon_y"),
    (re.compile(r"((?:19|20)\d{2})"), "y"),
]


@dataclass(frozen=True)
class PlateDate:
    """A date to the precision the text gives: year, and month and day when present."""

    year: int
    month: int | None = None
    day: int | None = None

    def agrees(self, other: PlateDate) -> bool:
        """Same year, and the same month and day wherever both texts give them."""
        return (self.year == other.year
                and (self.month is None or other.month is None or self.month == other.month)
                and (self.day is None or other.day is None or self.day == other.day))


def _year(text: str) -> int:
    value = int(text)
    return value + 2000 if value < 100 else value


def parse_date(text: str) -> PlateDate | None:
    """The date ``text`` means, or None when it is not a date this knows."""
    clean = text.strip().lower()
    for pattern, kind in _PATTERNS:
        found = pattern.fullmatch(clean)
        if not found:
            continue
        groups = found.groups()
        if kind == "ymd":
            date = PlateDate(int(groups[0]), int(groups[1]), int(groups[2]))
        elif kind == "dmy":
            date = PlateDate(int(groups[2]), int(groups[1]), int(groups[0]))
        elif kind == "ym":
            date = PlateDate(int(groups[0]), int(groups[1]))
        elif kind == "my":
            date = PlateDate(int(groups[1]), int(groups[0]))
        elif kind in ("d_mon_y", "mon_y"):
            name = groups[1] if kind == "d_mon_y" else groups[0]
            if name not in MONTHS:
                continue
            day = int(groups[0]) if kind == "d_mon_y" else None
            date = PlateDate(_year(groups[-1]), MONTHS[name], day)
        else:
            date = PlateDate(int(groups[0]))
        if date.month is not None and not 1 <= date.month <= 12:
            return None
        if date.day is not None and not 1 <= date.day <= 31:
            return None
        return date
    return None
