"""The detector's post-processing: probability map → text-run quads, in reading order."""

from __future__ import annotations

import math

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.reader.ppocr.detect import DetectorSettings, detect_quads, ordered_quads

rects = st.tuples(st.tuples(st.floats(50, 500), st.floats(50, 500)),
                  st.tuples(st.floats(4, 300), st.floats(4, 300)), st.floats(-89, 89))


@settings(max_examples=200, deadline=None)
@given(st.lists(rects, min_size=1, max_size=6), st.floats(-0.6, 0.6))
def test_quads_run_top_left_clockwise_along_the_reading_direction(
        boxes: list[tuple[tuple[float, float], tuple[float, float], float]],
        direction: float) -> None:
    quads = ordered_quads(boxes, direction)
    u = np.array([math.cos(direction), math.sin(direction)])
    v = np.array([-u[1], u[0]])
    for rect, quad in zip(boxes, quads, strict=True):
        corners = cv2.boxPoints(rect)
        assert sorted(map(tuple, quad.tolist())) == sorted(map(tuple, corners.tolist()))
        offsets = quad - quad.mean(0)
        along, down = offsets @ u, offsets @ v
        tl, tr, br, bl = range(4)
        assert max(down[tl], down[tr]) <= min(down[bl], down[br]) + 1e-3
        assert along[tl] <= along[tr] + 1e-3 and along[bl] <= along[br] + 1e-3


def test_runs_on_a_map_come_top_to_bottom_in_frame_pixels() -> None:
    prob = np.zeros((96, 128), np.float32)
    prob[60:70, 10:60] = 0.9    # the lower run
    prob[20:30, 40:110] = 0.9   # the upper run
    quads = detect_quads(prob, 2.0, 2.0, DetectorSettings())
    assert len(quads) == 2
    assert quads[0][:, 1].mean() < quads[1][:, 1].mean()
    top = quads[0]
    assert top[0, 0] < top[1, 0] and top[0, 1] < top[3, 1]       # TL left of TR, above BL
    assert 60 < top[:, 0].min() < 90 and 200 < top[:, 0].max() < 240  # scaled by 2
    assert ordered_quads([], 0.0).shape == (0, 4, 2)
