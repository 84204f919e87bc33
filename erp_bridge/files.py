"""ERP records from a drop file: the CSV export, or JSON lines (one object per unit)."""

from __future__ import annotations

import json
from pathlib import Path

from erp_bridge.csv_source import ErpFileError, ExpectedRecord, load_erp_csv, read_erp_text


def load_erp_jsonl(path: Path | str, *, field_names: list[str]) -> list[ExpectedRecord]:
    """Read ``{"unit_id": ..., "order_id": ..., "<field>": ...}`` lines; the first bad line
    raises :class:`ErpFileError` naming the line and key."""
    path = Path(path)
    text = read_erp_text(path)
    records: list[ExpectedRecord] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ErpFileError(f"{path}: line {number}: not JSON: {exc}") from None
        if not isinstance(row, dict):
            raise ErpFileError(f"{path}: line {number}: expected a JSON object")
        records.append(record_from_row(row, where=f"{path}: line {number}",
                                       field_names=field_names, seen=seen))
    return records


def record_from_row(row: dict[str, object], *, where: str, field_names: list[str],
                    seen: set[str]) -> ExpectedRecord:
    """One validated record from a mapping (JSON line, SQL row, pushed body)."""
    unit = row.get("unit_id")
    if not isinstance(unit, str) or not unit.strip():
        raise ErpFileError(f"{where}: column 'unit_id' is empty or not text")
    unit = unit.strip()
    if unit in seen:
        raise ErpFileError(f"{where}: duplicate unit_id {unit!r}")
    seen.add(unit)
    unknown = [k for k in row if k not in ("unit_id", "order_id", *field_names)]
    if unknown:
        raise ErpFileError(f"{where}: unknown column(s) {', '.join(map(str, unknown))} "
                           f"(fields: {', '.join(field_names)})")
    fields: dict[str, str] = {}
    for name in field_names:
        value = row.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ErpFileError(f"{where}: column {name!r}: expected text, got "
                               f"{type(value).__name__}")
        text = str(value).strip()
        if len(text) > 200:
            raise ErpFileError(f"{where}: column {name!r}: longer than 200 characters")
        if text:
            fields[name] = text
    order = row.get("order_id")
    return ExpectedRecord(unit, str(order).strip() if order not in (None, "") else None, fields)


def load_erp_file(path: Path | str, *, field_names: list[str]) -> list[ExpectedRecord]:
    """A drop file by its suffix: ``.jsonl``/``.ndjson`` as JSON lines, else CSV."""
    if Path(path).suffix.lower() in (".jsonl", ".ndjson"):
        return load_erp_jsonl(path, field_names=field_names)
    return load_erp_csv(path, field_names=field_names)
