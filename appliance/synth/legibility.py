"""Whether a person could read a rendered value: the frame-wide limits and each character.

``legible`` holds a value to what a station's camera must give (capital height, blur, the
box's contrast). ``character_visibility`` looks at each character of an inked value
(printed, laser-marked, dot matrix): its glyphs are drawn again into a mask in the frame (the
renderer knows where every stroke is), and in windows about one character wide the strokes'
grey levels are compared with the plate around them. A character that glare whites out, or
that worn ink or a faint laser mark leaves as good as blank, makes the value unreadable: the
weakest character decides, as it does for a person. The limits are set low on purpose, so
few values a person can read are taken out of what a reader is held to (session 17: on 750
station, dev and held-out frames they took out 33 values, of which the shipped reader had
read 5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

MIN_CHAR_PX = 9.0      # effective capital height a station's camera must give (Cognex: 8)
MIN_CONTRAST = 30.0    # grey levels between ink and plate (5th to 95th percentile in the box)
MAX_BLUR = 0.15        # blur sigma per pixel of capital height
#: a window this many strip heights wide holds about one character
WINDOW_PER_HEIGHT = 0.7
#: the least share of a window's pixels that must be stroke for it to count as a character
MIN_STROKE_SHARE = 0.04
#: the weakest character's strokes must stand this many grey levels further off the plate's
#: level than the plate's own pixels do ...
MIN_CHARACTER_CONTRAST = 4.0
#: ... and that excess must be this share of the plate's own spread there
MIN_CHARACTER_SNR = 0.5
#: styles whose strokes are ink (their fill is what a person sees); relief (engraved,
#: stamped) shows as light and dark edges that a stroke mask does not measure
INK_STYLES = ("print", "laser", "dotmatrix")


@dataclass(frozen=True)
class Visibility:
    """A value's weakest character windows: how many grey levels further its strokes stand
    off the plate's level than the plate's own pixels do (``contrast``, the lowest of its
    windows), and the lowest ratio of that excess to the plate's own spread (``snr``:
    texture, scratches, noise)."""

    contrast: float
    snr: float


def legible(image: np.ndarray, box: list[int], char_px: float,
            camera: dict[str, object]) -> bool:
    """Whether a value is big, sharp and contrasted enough for a person to read.

    Frames past these limits are still rendered (they train the reader and the quality gate)
    but a reader is held to "not read", never to a value, there: the station must reshoot.
    """
    effective = char_px * float(camera.get("low_resolution", 1.0))  # type: ignore[arg-type]
    blur = math.hypot(float(camera.get("defocus", 0.0)),  # type: ignore[arg-type]
                      float(camera.get("motion_blur", 0.0)) / 3.5)  # type: ignore[arg-type]
    if effective < MIN_CHAR_PX or blur > MAX_BLUR * effective:
        return False
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
    if x1 <= x0 or y1 <= y0:
        return False
    grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    low, high = np.percentile(grey, (5, 95))
    return bool(high - low >= MIN_CONTRAST)


def characters_clear(visibility: Sequence[float] | None) -> bool:
    """Whether every character of a value stands clear of its plate (``visibility`` as
    recorded in the labels: weakest contrast, weakest ratio to the plate's spread).
    Unknown (no stroke to measure) is clear: the frame-wide limits decide then."""
    if visibility is None:
        return True
    contrast, snr = visibility
    return contrast >= MIN_CHARACTER_CONTRAST and snr >= MIN_CHARACTER_SNR


def warp_mask(mask: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A plate-space mask (0..1) as the camera frame sees it (``size``: width, height)."""
    return cv2.warpPerspective(mask.astype(np.float32), matrix, size, flags=cv2.INTER_LINEAR)


def character_visibility(grey: np.ndarray, strokes: np.ndarray, anything: np.ndarray,
                         quad: np.ndarray) -> Visibility | None:
    """The weakest character window of the value inside ``quad`` (frame corners, clockwise from
    top left). ``grey`` is the frame, ``strokes`` the plate's text glyphs and ``anything`` every
    mark on the plate, lines and emblems too (both frame masks, 0..1). None when the value
    shows no stroke to measure."""
    top = float(np.linalg.norm(quad[1] - quad[0]))
    side = float(np.linalg.norm(quad[3] - quad[0]))
    height = max(6, round(side))
    width = max(height, round(top))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    rectify = cv2.getPerspectiveTransform(quad.astype(np.float32), target)

    def strip(image: np.ndarray) -> np.ndarray:
        return cv2.warpPerspective(image, rectify, (width, height), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)

    pixels = strip(grey.astype(np.float32))
    stroke_strip = strip(strokes)
    if stroke_strip.max() <= 0.05:
        return None
    # strokes thinner than a pixel never cover one whole: their best-covered pixels stand in
    core = stroke_strip >= 0.5 * min(1.0, float(stroke_strip.max()))
    # the plate proper: clear of every mark by a pixel, so a stroke's blurred edge is not it
    plate = cv2.erode((strip(anything) < 0.05).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    window = max(3, round(WINDOW_PER_HEIGHT * height))
    contrasts: list[float] = []
    snrs: list[float] = []
    for x0 in range(0, max(1, width - window + 1), max(1, window // 2)):
        ink = pixels[:, x0:x0 + window][core[:, x0:x0 + window]]
        around = pixels[:, x0:x0 + window][plate[:, x0:x0 + window]]
        if ink.size < MIN_STROKE_SHARE * window * height or around.size < 8:
            continue
        level = float(np.median(around))
        # how far the strokes stand off the plate beyond the plate's own spread (absolute:
        # light ink on a dark plate counts as dark ink on a light one)
        spread = float(np.mean(np.abs(around - level)))
        contrast = max(0.0, float(np.mean(np.abs(ink - level))) - spread)
        contrasts.append(contrast)
        snrs.append(contrast / max(spread, 1.0))
    if not contrasts:
        return None
    return Visibility(round(min(contrasts), 1), round(min(snrs), 2))
