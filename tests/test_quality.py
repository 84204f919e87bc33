"""The quality gate's plate-cut rule on its own: text must reach the frame edge too."""

from __future__ import annotations

import numpy as np

from appliance.reader.quality import assess
from appliance.transport import ReshootReason


def test_plate_cut_needs_text_at_the_edge() -> None:
    image = np.full((960, 1280, 3), 90, np.uint8)
    image[100:700, 0:900] = 200  # a plate running off the left edge
    image[200:230, 300:600:4] = 20  # some dark strokes: sharp enough
    plate = np.array([[0, 100], [900, 100], [900, 700], [0, 700]], np.float32)
    inside = [np.array([[300, 200], [600, 200], [600, 230], [300, 230]], np.float32)]
    at_edge = [*inside, np.array([[1, 300], [200, 300], [200, 330], [1, 330]], np.float32)]

    def reasons(quads: list[np.ndarray]) -> list[ReshootReason]:
        return [i.reason for i in assess(image, plate=plate, text_heights=[30.0] * len(quads),
                                         field_boxes={}, text_quads=quads)]

    assert ReshootReason.CUT_OFF not in reasons(inside)
    assert ReshootReason.CUT_OFF in reasons(at_edge)


def test_dark_plate_is_a_typed_reason() -> None:
    image = np.full((960, 1280, 3), 12, np.uint8)
    image[200:230, 300:600:4] = 60  # faint strokes on a dark plate
    plate = np.array([[100, 100], [1100, 100], [1100, 800], [100, 800]], np.float32)
    issues = assess(image, plate=plate, text_heights=[30.0], field_boxes={})
    assert ReshootReason.DARK in [i.reason for i in issues]
    assert any("too dark" in str(i) for i in issues)
