"""Data of the rule engine: the rules file's shape and the engine's results."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from appliance.transport.messages import ReshootReason

Normaliser = Literal["case", "space", "units", "decimal_comma", "leading_zeros"]
NORMALISERS: tuple[Normaliser, ...] = ("case", "space", "units", "decimal_comma", "leading_zeros")
DEFAULT_NORMALISE: tuple[Normaliser, ...] = ("case", "space", "units", "decimal_comma")


class FieldStatus(StrEnum):
    """Outcome for one field."""

    OK = "ok"
    MISMATCH = "mismatch"
    CONFUSED = "confused"
    NOT_READ = "not_read"
    FORMAT_ERROR = "format_error"
    NOT_EXPECTED = "not_expected"  # not read, and the unit's ERP record does not list it


class Verdict(StrEnum):
    """Outcome for one inspection."""

    PASS = "PASS"
    MISMATCH = "MISMATCH"
    RESHOOT = "RESHOOT"
    REVIEW = "REVIEW"


class FieldRule(BaseModel):
    """How one field is checked."""

    model_config = ConfigDict(extra="forbid")
    required: bool = True
    format: str | None = None
    normalise: list[Normaliser] = Field(
        default_factory=lambda: list(DEFAULT_NORMALISE)
    )
    compare: Literal["exact", "format", "numeric", "one_of", "contains", "date"] = "exact"
    tolerance: float = Field(default=0.0, ge=0.0)
    allowed: list[str] = Field(default_factory=list)
    lookalikes: list[str] = Field(default_factory=lambda: ["0O", "1Il", "8B", "5S", "2Z", "6G"])
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0)

    @field_validator("format")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regex: {exc}") from None
        return pattern

    @field_validator("lookalikes")
    @classmethod
    def _groups(cls, groups: list[str]) -> list[str]:
        for group in groups:
            if len(group) < 2:
                raise ValueError(f"look-alike group {group!r} needs at least two characters")
        return groups


class Policy(BaseModel):
    """When to ask the camera again and when to ask a person."""

    model_config = ConfigDict(extra="forbid")
    max_reshoots: int = Field(default=2, ge=0, le=10)
    min_confidence: float = Field(default=0.6, ge=0.0, le=1.0)
    review_without_record: bool = True
    #: a field the reader could not read surely counts as matching where verify finds the
    #: ERP value clearly on the plate (never one it read surely as something else)
    verified_confirms: bool = False
    #: a field an earlier frame of the same automatic reshoot run read as the expected value
    #: stays matched when a later frame cannot read it surely (rules.engine.with_earlier_frames)
    combine_reshoots: bool = True
    #: a MISMATCH needs a second frame of the plate that also reads the field surely as other
    #: than the record, or reads the same value: the first such frame asks for a reshoot
    #: (reason ``confirm``); at the final attempt an unconfirmed one goes to REVIEW (needs
    #: combine_reshoots)
    confirm_mismatch: bool = False
    #: a second frame that reads the same differing value at least this sure confirms a
    #: MISMATCH too (the frames agree); 1.0 lets only another sure difference confirm
    agree_confidence: float = Field(default=0.9, ge=0.0, le=1.0)


class FamilyRules(BaseModel):
    """The rules for one plate family (one schema)."""

    model_config = ConfigDict(extra="forbid")
    fields: dict[str, FieldRule]


class RuleSet(BaseModel):
    """A whole rules file."""

    model_config = ConfigDict(extra="forbid")
    version: int = 1
    policy: Policy = Policy()
    families: dict[str, FamilyRules]


class FieldCheck(BaseModel):
    """The engine's finding for one field."""

    field: str
    status: FieldStatus
    expected: str | None
    read: str | None
    confidence: float
    required: bool
    explanation: str


class Decision(BaseModel):
    """The engine's verdict for one inspection, with the fields that caused it."""

    verdict: Verdict
    reason: str
    causes: list[str]
    fields: dict[str, FieldCheck]
    attempt: int = 0
    #: what the camera should do better (only for RESHOOT): the first frame issue the reader
    #: found, else ``unsure`` or ``read_error``
    reshoot_reason: ReshootReason | None = None
