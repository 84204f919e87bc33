"""Frame quality measured at capture: sharpness, exposure, clipping and glare."""

from __future__ import annotations

import cv2
import numpy as np

from appliance.transport import FrameQuality


def measure_quality(rgb: np.ndarray) -> FrameQuality:
    """Measure a frame on a downscaled grey copy (a few milliseconds for 1280×960)."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = 640 / max(gray.shape)
    if scale < 1:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    sharpness = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    clipped = float(np.mean((gray <= 3) | (gray >= 252)))
    glare = float(np.mean(gray >= 250))
    return FrameQuality(sharpness=round(sharpness, 2), mean_level=round(float(gray.mean()), 2),
                        clipped_fraction=round(clipped, 4), glare_fraction=round(glare, 4))
