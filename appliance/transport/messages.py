"""Typed, versioned messages carried on the appliance's ZeroMQ sockets.

Every message is a multipart ZeroMQ message: frame 0 is a UTF-8 JSON header (one of the
models below, tagged by ``kind`` and ``version``); an optional frame 1 carries raw image bytes.
Every field is bounded (ids by pattern, texts by length, images by pixel count), so a hostile
header is a validation error, never a path outside the data folder or a gigabyte allocation.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from appliance.transport.limits import (
    ID_PATTERN,
    MAX_FIELDS,
    MAX_IMAGE_SIDE,
    MAX_PIXELS,
    MAX_TEXT,
    STATION_PATTERN,
    UNIT_PATTERN,
)

#: 2: typed reshoot reasons and quality issues, acknowledgements, delivery counts
PROTOCOL_VERSION = 2

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
StationId = Annotated[str, StringConstraints(pattern=STATION_PATTERN)]
UnitId = Annotated[str, StringConstraints(pattern=UNIT_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
ShortText = Annotated[str, StringConstraints(max_length=200)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]


def new_id(prefix: str) -> str:
    """Return an id that is unique across processes and restarts (time-ordered uuid7-like)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:8]}"


def utc_now() -> datetime:
    """Wall-clock time in UTC, timezone-aware."""
    return datetime.now(UTC)


class ReshootReason(StrEnum):
    """Why a frame is a poor basis for a verdict: what the camera should do better.

    The reader's quality gate, the rules and the camera all speak this enum; the camera picks
    its response (exposure, gain, which frame of a burst) from it, never from a sentence.
    """

    NO_PLATE = "no_plate"
    CUT_OFF = "cut_off"
    GLARE = "glare"
    BLUR = "blur"
    DARK = "dark"
    SMALL_TEXT = "small_text"
    NO_TEXT = "no_text"
    UNSURE = "unsure"            # the frame looks fine but some required field is not sure
    CONFIRM = "confirm"          # a field differs from the record: a second frame must agree
    READ_ERROR = "read_error"    # the frame could not be read at all (decode or reader error)
    OPERATOR = "operator"        # a person asked for it


class QualityIssue(BaseModel):
    """One thing the reader found wrong with a frame: a typed reason and a detail for people."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    reason: ReshootReason
    detail: ShortText = ""
    field: ShortText | None = None

    def __str__(self) -> str:
        return self.detail or self.reason.value


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    version: Literal[2] = 2


class FrameQuality(BaseModel):
    """Frame quality measured at capture (filled by the camera daemon)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    sharpness: float | None = None
    mean_level: float | None = None
    clipped_fraction: float | None = None
    glare_fraction: float | None = None


class ImageInfo(BaseModel):
    """How the image frame that follows the header is encoded."""

    model_config = ConfigDict(extra="forbid")
    encoding: Literal["jpeg", "png", "raw"]
    width: int = Field(gt=0, le=MAX_IMAGE_SIDE)
    height: int = Field(gt=0, le=MAX_IMAGE_SIDE)
    channels: int = Field(default=3, ge=1, le=4)
    dtype: Literal["uint8"] = "uint8"

    @model_validator(mode="after")
    def _pixel_budget(self) -> ImageInfo:
        if self.width * self.height > MAX_PIXELS:
            raise ValueError(f"{self.width}×{self.height} pixels is over the limit of "
                             f"{MAX_PIXELS / 1e6:.0f} megapixels")
        return self


class FrameMessage(_Message):
    """A captured frame on its way from a camera daemon to the inference process.

    ``delivery`` counts how often the camera sent this frame (1 = first time): a frame whose
    result was not acknowledged in time is sent again, and the recorder keeps only one.
    """

    kind: Literal["frame"] = "frame"
    frame_id: Id
    inspection_id: Id
    station: StationId
    unit_id: UnitId | None = None
    attempt: int = Field(default=0, ge=0, le=100)
    reshoot_reason: ReshootReason | None = None
    triggered: bool = True
    delivery: int = Field(default=1, ge=1, le=1_000_000)
    captured_at: datetime
    monotonic_ns: int = Field(ge=0, le=2**63 - 1)
    image: ImageInfo
    quality: FrameQuality = FrameQuality()


class FieldValue(BaseModel):
    """One field as read from the plate."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    value: ShortText | None
    confidence: float = Field(ge=0.0, le=1.0)
    box: tuple[int, int, int, int] | None = None
    #: which reader gave this value (the OCR reader or the VLM of a cascade); None: the one
    source: ShortText | None = None


class ResultMessage(_Message):
    """The reading of one frame, on its way from the inference process to the recorder.

    The frame's image bytes travel with it so that the recorder can keep the evidence.
    """

    kind: Literal["result"] = "result"
    frame: FrameMessage
    fields: dict[ShortText, FieldValue] = Field(max_length=MAX_FIELDS)
    backend: ShortText
    device: ShortText
    latency_ms: float = Field(ge=0.0, le=1e9)
    read_at: datetime
    error: Text | None = None
    #: what the reader found wrong with the frame (glare over a field, blur, characters too
    #: small, plate cut off), each with its typed reason
    quality: list[QualityIssue] = Field(default_factory=list, max_length=32)
    #: with ``reader.verify_known``: each expected field of the unit's ERP record scored by
    #: the reader's verify mode (None: not verified)
    verify: dict[ShortText, Literal["verified", "differs", "unreadable"]] | None = Field(
        default=None, max_length=MAX_FIELDS)


class ReshootCommand(_Message):
    """Ask a camera daemon to capture again for an inspection."""

    kind: Literal["reshoot"] = "reshoot"
    station: StationId
    inspection_id: Id
    unit_id: UnitId | None = None
    attempt: int = Field(ge=1, le=100)
    reason: ReshootReason
    detail: ShortText = ""


class TriggerCommand(_Message):
    """Ask a camera daemon to capture one inspection frame now (PLC bridge or panel)."""

    kind: Literal["trigger"] = "trigger"
    station: StationId
    unit_id: UnitId | None = None


class AckCommand(_Message):
    """The recorder's receipt: this frame's result is stored, the camera may forget the frame."""

    kind: Literal["ack"] = "ack"
    station: StationId
    inspection_id: Id
    attempt: int = Field(ge=0, le=100)


ControlMessage = Annotated[ReshootCommand | TriggerCommand | AckCommand,
                           Field(discriminator="kind")]
