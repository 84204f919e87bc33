"""What the camera does about each reshoot reason: the response table, as data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from appliance.transport import ReshootReason


@dataclass(frozen=True)
class CameraResponse:
    """How to take the next frame: exposure and gain changes, burst size, which frame to keep."""

    exposure_factor: float = 1.0     # multiply the exposure (where the device allows)
    gain_step: float = 0.0           # add to the gain (where the device allows)
    burst: int = 3                   # frames to take; one is kept
    keep: Literal["sharpest", "least_glare"] = "sharpest"


RESPONSES: dict[ReshootReason, CameraResponse] = {
    ReshootReason.GLARE: CameraResponse(exposure_factor=0.5, keep="least_glare"),
    ReshootReason.DARK: CameraResponse(exposure_factor=2.0, gain_step=4.0),
    # shorter exposure against motion blur, more gain to keep the level, more frames to pick from
    ReshootReason.BLUR: CameraResponse(exposure_factor=0.7, gain_step=4.0, burst=5),
    ReshootReason.SMALL_TEXT: CameraResponse(burst=5),
    ReshootReason.NO_PLATE: CameraResponse(),
    ReshootReason.CUT_OFF: CameraResponse(),
    ReshootReason.NO_TEXT: CameraResponse(),
    ReshootReason.UNSURE: CameraResponse(),
    ReshootReason.CONFIRM: CameraResponse(),
    ReshootReason.READ_ERROR: CameraResponse(),
    ReshootReason.OPERATOR: CameraResponse(),
}


def response_for(reason: ReshootReason | None, *, burst: int = 1) -> CameraResponse:
    """The response to ``reason``; a first shot (no reason) keeps the sharpest of ``burst``."""
    if reason is None:
        return CameraResponse(burst=burst)
    base = RESPONSES[reason]
    return CameraResponse(exposure_factor=base.exposure_factor, gain_step=base.gain_step,
                          burst=max(base.burst, burst), keep=base.keep)
