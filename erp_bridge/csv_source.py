"""ERP records from a CSV export: one row per unit, a column per plate field."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

REQUIRED_COLUMNS = ("unit_id",)


class ErpFileError(Exception):
    """An ERP file that cannot be used; the message names the file, line and column."""


@dataclass(frozen=True)
class ExpectedRecord:
    """What the ERP says one unit's plate must carry."""

    unit_id: str
    order_id: str | None
    fields: dict[str, str]


def read_erp_text(path: Path) -> str:
    """An ERP file's text (UTF-8, with or without a BOM); :class:`ErpFileError` says why not."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ErpFileError(f"{path}: ERP file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ErpFileError(f"{path}: cannot read ERP file: {exc}") from None


def load_erp_csv(path: Path | str, *, field_names: list[str]) -> list[ExpectedRecord]:
    """Read every record of ``path``; raise :class:`ErpFileError` on the first bad line.

    Columns other than ``unit_id``/``order_id`` must be schema fields; blank cells mean the ERP
    does not specify that field.
    """
    path = Path(path)
    text = read_erp_text(path)
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    if not columns:
        raise ErpFileError(f"{path}: empty ERP file (no header line)")
    for col in REQUIRED_COLUMNS:
        if col not in columns:
            raise ErpFileError(f"{path}: line 1: missing column {col!r}")
    unknown = [c for c in columns if c not in (*REQUIRED_COLUMNS, "order_id", *field_names)]
    if unknown:
        raise ErpFileError(f"{path}: line 1: unknown column(s) {', '.join(unknown)} "
                           f"(fields: {', '.join(field_names)})")
    records: list[ExpectedRecord] = []
    seen: set[str] = set()
    for number, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise ErpFileError(f"{path}: line {number}: expected {len(columns)} columns")
        unit = (row.get("unit_id") or "").strip()
        if not unit:
            raise ErpFileError(f"{path}: line {number}: column 'unit_id' is empty")
        if unit in seen:
            raise ErpFileError(f"{path}: line {number}: duplicate unit_id {unit!r}")
        seen.add(unit)
        fields = {k: v.strip() for k, v in row.items() if k in field_names and v and v.strip()}
        records.append(ExpectedRecord(unit, (row.get("order_id") or "").strip() or None, fields))
    return records
