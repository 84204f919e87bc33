"""Typed, versioned messages carried on the appliance's ZeroMQ sockets.

Every message is a multipart ZeroMQ message: frame 0 is a UTF-8 JSON header (one of the
models below, tagged by ``kind`` and ``version``); an optional frame 1 carries raw image bytes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

PROTOCOL_VERSION = 1


def new_id(prefix: str) -> str:
    """Return an id that is unique across processes and restarts (time-ordered uuid7-like)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:8]}"


def utc_now() -> datetime:
    """Wall-clock time in UTC, timezone-aware."""
    return datetime.now(UTC)


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1] = 1


class FrameQuality(BaseModel):
    """Frame quality measured at capture (filled by the camera daemon)."""

    model_config = ConfigDict(extra="forbid")
    sharpness: float | None = None
    mean_level: float | None = None
    clipped_fraction: float | None = None
    glare_fraction: float | None = None


class ImageInfo(BaseModel):
    """How the image frame that follows the header is encoded."""

    model_config = ConfigDict(extra="forbid")
    encoding: Literal["jpeg", "png", "raw"]
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    channels: int = Field(default=3, ge=1, le=4)
    dtype: Literal["uint8"] = "uint8"


class FrameMessage(_Message):
    """A captured frame on its way from a camera daemon to the inference process."""

    kind: Literal["frame"] = "frame"
    frame_id: str
    inspection_id: str
    station: str
    unit_id: str | None = None
    attempt: int = Field(default=0, ge=0)
    reshoot_reason: str | None = None
    triggered: bool = True
    captured_at: datetime
    monotonic_ns: int
    image: ImageInfo
    quality: FrameQuality = FrameQuality()


class FieldValue(BaseModel):
    """One field as read from the plate."""

    model_config = ConfigDict(extra="forbid")
    value: str | None
    confidence: float = Field(ge=0.0, le=1.0)
    box: tuple[int, int, int, int] | None = None


class ResultMessage(_Message):
    """The reading of one frame, on its way from the inference process to the recorder.

    The frame's image bytes travel with it so that the recorder can keep the evidence.
    """

    kind: Literal["result"] = "result"
    frame: FrameMessage
    fields: dict[str, FieldValue]
    backend: str
    device: str
    latency_ms: float
    read_at: datetime
    error: str | None = None
    #: what the reader found wrong with the frame (glare over a field, blur, characters too
    #: small, plate cut off); optional, so results without it still parse
    quality: list[str] = Field(default_factory=list)


class ReshootCommand(_Message):
    """Ask a camera daemon to capture again for an inspection."""

    kind: Literal["reshoot"] = "reshoot"
    station: str
    inspection_id: str
    unit_id: str | None = None
    attempt: int = Field(ge=1)
    reason: str


class TriggerCommand(_Message):
    """Ask a camera daemon to capture one inspection frame now (PLC bridge or panel)."""

    kind: Literal["trigger"] = "trigger"
    station: str
    unit_id: str | None = None


ControlMessage = Annotated[ReshootCommand | TriggerCommand, Field(discriminator="kind")]
