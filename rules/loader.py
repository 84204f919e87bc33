"""Load rules files; errors name the file, section and key."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from rules.models import RuleSet


class RulesError(Exception):
    """A rules file that cannot be used."""


def load_rules(path: Path | str, *, known_fields: dict[str, list[str]] | None = None) -> RuleSet:
    """Load and validate ``path``; ``known_fields`` (family → fields) rejects unknown fields."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(f"{path}: rules file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RulesError(f"{path}: cannot read rules: {exc}") from None
    try:
        rules = RuleSet.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"{path}: {where}: {err['msg']}")
        raise RulesError("\n".join(lines)) from None
    if known_fields is not None:
        for family, fam_rules in rules.families.items():
            if family not in known_fields:
                raise RulesError(f"{path}: families.{family}: no schema named {family!r}")
            for name in fam_rules.fields:
                if name not in known_fields[family]:
                    raise RulesError(f"{path}: families.{family}.fields.{name}: unknown field "
                                     f"(schema has {', '.join(known_fields[family])})")
    return rules


class RulesHolder:
    """Keeps the rules in force; a failed reload leaves the previous rules in place."""

    def __init__(self, path: Path, *, known_fields: dict[str, list[str]] | None = None) -> None:
        self.path = path
        self.known_fields = known_fields
        self.rules = load_rules(path, known_fields=known_fields)
        self._mtime = self._stat()
        self.last_error: str | None = None

    def _stat(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def reload_if_changed(self) -> bool:
        """Reload when the file changed; returns True when new rules took effect."""
        mtime = self._stat()
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            self.rules = load_rules(self.path, known_fields=self.known_fields)
        except RulesError as exc:
            self.last_error = str(exc)
            return False
        self.last_error = None
        return True
