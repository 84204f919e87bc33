"""Quality gate: reasons a frame cannot be read well, so the camera can be asked to reshoot."""

from __future__ import annotations

import cv2
import numpy as np

from appliance.transport.messages import QualityIssue, ReshootReason

MIN_CHAR_PX = 12          # vendors ask for ≥ 20 px caps; below 12 px with most fields unread
LEGIBLE_CHAR_PX = 9       # below this no one reads it (the renderer's legibility limit too)
MAX_GLARE = 0.08          # ID-scanning SDKs reject frames with more than ~8 % glare
MIN_SHARPNESS = 12.0      # variance of the Laplacian on the plate, grey levels²
MIN_LEVEL = 40.0          # mean grey level of the plate below which we ask for more light


def _touches_edge(quad: np.ndarray, w: int, h: int, margin: float) -> bool:
    return bool(quad[:, 0].min() < margin or quad[:, 1].min() < margin
                or quad[:, 0].max() > w - margin or quad[:, 1].max() > h - margin)


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 and image.size \
        else image


def assess(image: np.ndarray, *, plate: np.ndarray | None, text_heights: list[float],
           field_boxes: dict[str, tuple[int, int, int, int] | None],
           text_quads: list[np.ndarray] | None = None,
           box_per_capital: float = 1.0) -> list[QualityIssue]:
    """Why this frame is a poor basis for a verdict, each a thing the camera can do better
    (no plate, plate cut off, glare, blur, too dark, characters too small); [] if none.

    ``text_heights`` are the heights of the text boxes found (for the cut-off margin); a
    box is ``box_per_capital`` times the capital height it stands for. Characters are
    too small when the median capital is under ``LEGIBLE_CHAR_PX``, or under ``MIN_CHAR_PX``
    with fewer than half of ``field_boxes`` read: a detector misses text smaller than what it
    found, so the lines it did find overstate the plate's characters. Which fields were not
    read is otherwise the rule engine's business, not listed here.

    The same as :func:`plate_issues` then :func:`field_issues`: a reader may measure the
    plate while its recogniser runs, before any field is known."""
    return plate_issues(image, plate=plate, text_heights=text_heights,
                        text_quads=text_quads) + field_issues(
        image, plate=plate, text_heights=text_heights, field_boxes=field_boxes,
        box_per_capital=box_per_capital)


def _issue(reason: ReshootReason, detail: str, field: str | None = None) -> QualityIssue:
    return QualityIssue(reason=reason, detail=detail, field=field)


def plate_issues(image: np.ndarray, *, plate: np.ndarray | None, text_heights: list[float],
                 text_quads: list[np.ndarray] | None = None) -> list[QualityIssue]:
    """What is wrong with the plate as a whole (see :func:`assess`): no plate, cut off at the
    frame's edge, glare, too dark, blurred."""
    reasons: list[QualityIssue] = []
    h, w = image.shape[:2]
    window, mask = image, None  # the measures below look at the plate's bounding rectangle
    if plate is None:
        reasons.append(_issue(ReshootReason.NO_PLATE, "no plate found in the frame"))
    else:
        text_margin = 0.5 * float(np.median(text_heights or [8]))
        if _touches_edge(plate, w, h, 2) and (text_quads is None or any(
                _touches_edge(q, w, h, text_margin) for q in text_quads)):
            # a plate outline at the edge alone is not enough (the outline found can run
            # into the background): text must reach the edge too
            reasons.append(_issue(ReshootReason.CUT_OFF, "plate cut off at the frame edge"))
        corners = np.round(plate).astype(np.int32)
        # one pixel more on each side: the Laplacian of an edge pixel sees its neighbours
        x0, y0 = max(0, int(corners[:, 0].min()) - 1), max(0, int(corners[:, 1].min()) - 1)
        x1, y1 = min(w, int(corners[:, 0].max()) + 2), min(h, int(corners[:, 1].max()) + 2)
        window = image[y0:y1, x0:x1]
        mask = np.zeros(window.shape[:2], np.uint8)
        cv2.fillConvexPoly(mask, corners - np.array([x0, y0], np.int32), 1)
    window = _grey(window)
    if window.size and (mask is None or cv2.countNonZero(mask)):
        # masked means in OpenCV: no copies of the plate's pixels (a GPU host's frame
        # budget is a few milliseconds)
        glare = cv2.mean((window >= 250).view(np.uint8), mask)[0]
        if glare > MAX_GLARE:
            reasons.append(_issue(ReshootReason.GLARE, f"glare on {glare:.0%} of the plate"))
        level = cv2.mean(window, mask)[0]
        if level < MIN_LEVEL:
            reasons.append(_issue(ReshootReason.DARK,
                                  f"too dark (mean level {level:.0f} < {MIN_LEVEL:.0f})"))
        # 16-bit integers hold a 3×3 Laplacian of 8-bit grey exactly, at half the bytes
        _, spread = cv2.meanStdDev(cv2.Laplacian(window, cv2.CV_16S), mask=mask)
        sharpness = float(spread[0, 0]) ** 2
        if sharpness < MIN_SHARPNESS:
            reasons.append(_issue(ReshootReason.BLUR, f"blurred (sharpness {sharpness:.0f} "
                                  f"< {MIN_SHARPNESS:.0f})"))
    return reasons


def field_issues(image: np.ndarray, *, plate: np.ndarray | None, text_heights: list[float],
                 field_boxes: dict[str, tuple[int, int, int, int] | None],
                 box_per_capital: float = 1.0) -> list[QualityIssue]:
    """What is wrong once the fields are known (see :func:`assess`): glare over a field's
    value, characters too small, no text on a plate."""
    reasons: list[QualityIssue] = []
    for name, box in field_boxes.items():
        if box is None:
            continue
        x0, y0, x1, y1 = (max(0, v) for v in box)
        patch = _grey(image[y0:y1, x0:x1])
        if patch.size and float((patch >= 250).mean()) > 0.2:
            reasons.append(_issue(ReshootReason.GLARE, f"glare over the {name}", name))
    if text_heights:
        height = float(np.median(text_heights)) / box_per_capital
        read = sum(box is not None for box in field_boxes.values())
        if height < LEGIBLE_CHAR_PX or (height < MIN_CHAR_PX and 2 * read < len(field_boxes)):
            reasons.append(_issue(ReshootReason.SMALL_TEXT,
                                  f"characters too small (capitals about {height:.1f} px, "
                                  f"need ≥ {MIN_CHAR_PX} px)"))
    elif plate is not None:
        reasons.append(_issue(ReshootReason.NO_TEXT, "no text found on the plate"))
    return reasons
