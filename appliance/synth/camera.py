"""Photograph a rendered plate: placement, perspective, light, glare, blur, noise, JPEG."""

from __future__ import annotations

import math
import random

import cv2
import numpy as np

from appliance.synth.noise import gaussian_noise


def background(h: int, w: int, rng: random.Random, nrng: np.random.Generator) -> np.ndarray:
    """A machine-surface-like background: painted metal, gradients, parts, noise."""
    colour = np.array([rng.uniform(0.1, 0.8) for _ in range(3)], np.float32)
    if rng.random() < 0.5:
        colour[:] = colour.mean()
    yy, xx = np.ogrid[0:h, 0:w]
    angle = rng.uniform(0, 2 * math.pi)
    grad = ((np.cos(angle) / w) * xx.astype(np.float32)
            + (np.sin(angle) / h) * yy.astype(np.float32)) * rng.uniform(-0.3, 0.3)
    img = colour + grad[..., None] + 0.03 * gaussian_noise(nrng, (h, w, 1))
    for _ in range(rng.randint(0, 6)):  # parts, edges, cables
        c = tuple(rng.uniform(0.05, 0.9) for _ in range(3))
        x0, y0 = rng.randint(0, w), rng.randint(0, h)
        if rng.random() < 0.5:
            corner = (x0 + rng.randint(20, w // 2), y0 + rng.randint(20, h // 2))
            cv2.rectangle(img, (x0, y0), corner, c, -1)
        else:
            cv2.line(img, (x0, y0), (rng.randint(0, w), rng.randint(0, h)), c,
                     rng.randint(3, 25), cv2.LINE_AA)
    return np.clip(img, 0, 1)


def placement(plate_w: int, plate_h: int, frame_w: int, frame_h: int, scale: float,
              rng: random.Random, *, station: bool = False,
              ) -> tuple[np.ndarray, dict[str, object]]:
    """The homography plate → frame: scale, rotation, perspective, position (maybe cut).
    A ``station`` keeps the plate whole, upright within ±6° and nearly square-on."""
    roll = rng.random()
    if station:
        rotation = max(-6.0, min(6.0, rng.gauss(0, 2.5)))
    elif roll < 0.03:
        rotation = 180.0
    elif roll < 0.05:
        rotation = rng.choice((90.0, -90.0))
    else:
        rotation = rng.gauss(0, 5) if rng.random() < 0.8 else rng.uniform(-15, 15)
        rotation = max(-15.0, min(15.0, rotation))
    w, h = float(plate_w), float(plate_h)
    src = np.array([[0, 0], [plate_w, 0], [plate_w, plate_h], [0, plate_h]], np.float32)
    jitter = rng.uniform(0.0, 0.04 if station else 0.08)
    pts = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]],
                   np.float32)
    pts += np.array([[rng.uniform(-jitter, jitter) * w, rng.uniform(-jitter, jitter) * h]
                     for _ in range(4)], np.float32)
    theta = math.radians(rotation)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]],
                   np.float32)
    pts = pts @ rot.T
    cut = rng.random() < 0.06 and not station
    # The camera is set up to see the whole plate: shrink it to fit unless it is to be cut.
    fit = 0.95 * min(frame_w / float(np.ptp(pts[:, 0])), frame_h / float(np.ptp(pts[:, 1])))
    if not cut:
        scale = min(scale, fit)
    pts *= scale
    pts -= (pts.min(0) + pts.max(0)) / 2  # centre the box so placing it keeps it in frame
    span_x = pts[:, 0].max() - pts[:, 0].min()
    span_y = pts[:, 1].max() - pts[:, 1].min()
    if cut:  # let a part of the plate fall outside the frame
        cx = rng.uniform(0, frame_w)
        cy = rng.uniform(0, frame_h)
    else:
        cx = rng.uniform(min(span_x / 2, frame_w / 2), max(frame_w - span_x / 2, frame_w / 2))
        cy = rng.uniform(min(span_y / 2, frame_h / 2), max(frame_h - span_y / 2, frame_h / 2))
    dst = pts + np.array([cx, cy], np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    return matrix, {"rotation": round(rotation, 2), "perspective": round(jitter, 3),
                    "scale": round(scale, 4), "edge_cut_requested": cut}


def photograph(frame: np.ndarray, rng: random.Random, nrng: np.random.Generator,
               plate_quad: np.ndarray, *, station: bool = False,
               ) -> tuple[np.ndarray, dict[str, object]]:
    """Light, glare, shadow, blur, noise, resolution and colour of a real camera (in place).
    A ``station`` camera has mild glare, little blur and noise, and full resolution."""
    h, w = frame.shape[:2]
    mild = 0.5 if station else 1.0
    params: dict[str, object] = {}
    gain = 0.55 + 0.9 * cv2.resize(nrng.random((3, 4)).astype(np.float32), (w, h),
                                   interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.6:
        frame *= np.clip(gain, 0.45, 1.5)[..., None]
        params["uneven_light"] = True
    if rng.random() < 0.2:  # a hard shadow across part of the plate
        pts = plate_quad + nrng.normal(0, 80, plate_quad.shape)
        mask = np.zeros((h, w), np.float32)
        cv2.fillConvexPoly(mask, pts[[0, 1, 2]].astype(np.int32), 1.0)
        mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(3, 20))  # type: ignore[assignment]
        frame *= (1 - rng.uniform(0.3, 0.6) * mask)[..., None]
        params["shadow"] = True
    if rng.random() < 0.3:  # specular glare: a bright, saturating blob
        cx, cy = plate_quad.mean(0) + nrng.normal(0, 120, 2)
        sx, sy = rng.uniform(20, 200), rng.uniform(10, 120)
        # the blob is < 1e-4 beyond 3 sigma: compute it only inside that window
        x0, x1 = int(max(0, cx - 3 * sx)), int(min(w, cx + 3 * sx + 1))
        y0, y1 = int(max(0, cy - 3 * sy)), int(min(h, cy + 3 * sy + 1))
        if x1 > x0 and y1 > y0:
            yy, xx = np.ogrid[y0:y1, x0:x1]
            blob = np.exp(-(((xx.astype(np.float32) - cx) / sx) ** 2
                            + ((yy.astype(np.float32) - cy) / sy) ** 2)).astype(np.float32)
            frame[y0:y1, x0:x1] += (mild * rng.uniform(0.5, 1.6) * blob)[..., None]
        else:
            rng.uniform(0.5, 1.6)
        params["glare"] = {"x": round(float(cx)), "y": round(float(cy))}
    np.clip(frame, 0, 1, out=frame)
    if rng.random() < 0.4:
        sigma = rng.uniform(0.4, 1.0 if station else 2.2)
        frame[:] = cv2.GaussianBlur(frame, (0, 0), sigma)
        params["defocus"] = round(sigma, 2)
    if rng.random() < 0.15:
        length = rng.randint(3, 5 if station else 11)
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        angle = rng.uniform(0, 180)
        rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
        kernel = cv2.warpAffine(kernel, rot, (length, length))  # type: ignore[assignment]
        kernel /= max(kernel.sum(), 1e-6)
        frame[:] = cv2.filter2D(frame, -1, kernel)
        params["motion_blur"] = length
    if rng.random() < 0.2 and not station:
        factor = rng.uniform(0.35, 0.8)
        small = cv2.resize(frame, (int(w * factor), int(h * factor)), interpolation=cv2.INTER_AREA)
        frame[:] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        params["low_resolution"] = round(factor, 2)
    if rng.random() < 0.15:
        frame[:] = frame.mean(axis=2, keepdims=True)
        params["monochrome"] = True
    else:
        frame *= np.array([rng.uniform(0.85, 1.15) for _ in range(3)], np.float32)
    noise = rng.uniform(0, 0.05 * mild)
    frame += noise * gaussian_noise(nrng, frame.shape)
    params["noise"] = round(noise, 3)
    np.clip(frame, 0, 1, out=frame)
    return frame, params


def occlude(frame: np.ndarray, rng: random.Random, plate_quad: np.ndarray,
            ) -> tuple[float, float, float, float] | None:
    """Sometimes cover part of the plate (a finger, a cable, a tool): returns the box covered."""
    if rng.random() >= 0.05:
        return None
    x0, y0 = plate_quad.min(0)
    x1, y1 = plate_quad.max(0)
    bw, bh = (x1 - x0) * rng.uniform(0.1, 0.35), (y1 - y0) * rng.uniform(0.15, 0.5)
    ox, oy = rng.uniform(x0, max(x0 + 1, x1 - bw)), rng.uniform(y0, max(y0 + 1, y1 - bh))
    colour = tuple(rng.uniform(0.1, 0.7) for _ in range(3))
    cv2.rectangle(frame, (int(ox), int(oy)), (int(ox + bw), int(oy + bh)), colour, -1)
    return (float(ox), float(oy), float(ox + bw), float(oy + bh))
