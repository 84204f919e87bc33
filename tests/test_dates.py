"""Dates by meaning: the plate's way of writing a date and the ERP's need not match as text."""

from __future__ import annotations

import pytest

from rules import FieldStatus, check_field, load_rules
from rules.dates import PlateDate, parse_date
from tests.plates import REPO

RULES = load_rules(REPO / "config" / "rules.toml")
RULE = RULES.families["motor"].fields["manufactured"]


@pytest.mark.parametrize(("text", "date"), [
    ("05/2024", PlateDate(2024, 5)), ("05.2024", PlateDate(2024, 5)),
    ("2024-05", PlateDate(2024, 5)), ("MAY 2024", PlateDate(2024, 5)),
    ("Mai 2024", PlateDate(2024, 5)), ("Okt. 2023", PlateDate(2023, 10)),
    ("14.05.2024", PlateDate(2024, 5, 14)), ("2024-05-14", PlateDate(2024, 5, 14)),
    ("14MAI24", PlateDate(2024, 5, 14)), ("2024", PlateDate(2024)),
    ("13/2024", None), ("FOO 2024", None), ("serial 12", None),
])
def test_parse_date(text: str, date: PlateDate | None) -> None:
    assert parse_date(text) == date


@pytest.mark.parametrize(("plate", "erp", "status"), [
    ("05/2024", "2024-05", FieldStatus.OK), ("05.2024", "2024-05", FieldStatus.OK),
    ("MAY 2024", "2024-05", FieldStatus.OK), ("2024-05", "05/2024", FieldStatus.OK),
    ("14.05.2024", "2024-05", FieldStatus.OK),     # the plate is more precise: same month
    ("2024", "2024-05", FieldStatus.OK),           # a year-only plate agrees with its year
    ("06/2024", "2024-05", FieldStatus.MISMATCH), ("05/2023", "2024-05", FieldStatus.MISMATCH),
])
def test_dates_compare_by_meaning(plate: str, erp: str, status: FieldStatus) -> None:
    check = check_field("manufactured", RULE, {"value": plate, "confidence": 0.995}, erp,
                        RULES.policy)
    assert check.status is status, check.explanation
