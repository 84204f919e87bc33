"""Nameplate schemas: a plate family as a TOML file of fields, label words and value regexes."""

from __future__ import annotations

import functools
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

DEFAULT_FIELDS = (
    "manufacturer", "model", "serial", "voltage", "current",
    "power", "frequency", "speed", "manufactured", "ip_rating",
)


class SchemaError(Exception):
    """A schema file that cannot be used; the message names the file, field and key."""


#: a ``never`` pattern counts as a whole token: nothing word-like follows it
TOKEN_END = r"(?![\w/-])"


class FieldSpec(BaseModel):
    """One field of a plate family."""

    model_config = ConfigDict(extra="forbid")
    name: str = ""
    labels: list[str] = Field(default_factory=list)
    value: str
    unlabelled: Literal["never", "anywhere", "first_line"] = "never"
    #: lines a value may continue onto, left-aligned under it (a maker's full name on two)
    wraps: int = Field(default=0, ge=0, le=3)
    #: regex of the same value in a second unit that may follow it on the plate
    #: (``30,480 kg 67,200 lbs``); it is not part of the value
    also: str | None = None
    #: names of the schema's ``patterns`` this value never is, as a whole token (a bearing
    #: code is not a serial); folded into ``value`` when the schema is loaded
    never: list[str] = Field(default_factory=list)
    description: str = ""
    # How the synthetic engine makes values: {"generator": NAME} or {"examples": [...]}.
    synth: dict[str, Any] | None = None

    @field_validator("value", "also")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is None:
            return None
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"bad regex: {exc}") from None
        return pattern

    #: the ``never`` patterns as one alternation, set when the schema is loaded
    _never: str = PrivateAttr(default="")

    @property
    def never_pattern(self) -> str:
        """The patterns this value never is, as one regex alternation ("" when none)."""
        return self._never

    def never_token(self) -> re.Pattern[str] | None:
        """A whole token of a pattern this value never is, matched at a text's start (None
        when the field has no ``never``)."""
        return re.compile(rf"(?:{self._never}){TOKEN_END}") if self._never else None

    def value_regex(self) -> re.Pattern[str]:
        """The compiled value regex (case-sensitive, as the format requires)."""
        return re.compile(self.value)

    def matches(self, text: str) -> bool:
        """True when ``text`` as a whole has this field's format."""
        return self.value_regex().fullmatch(text) is not None


class PlateSchema(BaseModel):
    """A plate family: its fields in reading order."""

    model_config = ConfigDict(extra="forbid")
    name: str
    version: int = 1
    description: str = ""
    #: named regexes that fields can refer to (``never``)
    patterns: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, FieldSpec]

    def field_names(self) -> list[str]:
        """Field names in schema order."""
        return list(self.fields)

    @functools.cached_property
    def label_table(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(field, its labels) in schema order, built once: hashable, so label matching can
        cache its answers by it (a schema is not changed after loading)."""
        return tuple((name, tuple(spec.labels)) for name, spec in self.fields.items())


def load_schema(path: Path | str) -> PlateSchema:
    """Load and validate a schema file; :class:`SchemaError` names the file and key on failure."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaError(f"{path}: schema file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SchemaError(f"{path}: cannot read schema: {exc}") from None
    try:
        schema = PlateSchema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SchemaError(f"{path}: {where}: {first['msg']}") from None
    if not schema.fields:
        raise SchemaError(f"{path}: fields: a schema needs at least one field")
    for name, pattern in schema.patterns.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise SchemaError(f"{path}: patterns.{name}: bad regex: {exc}") from None
    for name, spec in schema.fields.items():
        spec.name = name
        unknown = [p for p in spec.never if p not in schema.patterns]
        if unknown:
            raise SchemaError(f"{path}: fields.{name}.never: no pattern named "
                              f"{', '.join(map(repr, unknown))} under [patterns]")
        if spec.never:  # not any of them as a whole token, then the value's own format
            spec._never = "|".join(schema.patterns[p] for p in spec.never)
            spec.value = rf"(?!(?:{spec._never}){TOKEN_END}){spec.value}"
    return schema
