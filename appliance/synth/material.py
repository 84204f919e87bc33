"""Plate materials (brushed aluminium, stainless, painted steel, stickers) and their wear."""

from __future__ import annotations

import random

import cv2
import numpy as np

from appliance.synth.noise import gaussian_noise

MATERIALS = ("brushed_aluminium", "stainless", "painted", "sticker_white", "sticker_silver",
             "coloured")


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: int) -> np.ndarray:
    small = rng.random((max(2, h // scale), max(2, w // scale))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def plate_base(h: int, w: int, rng: random.Random, nrng: np.random.Generator,
               ) -> tuple[np.ndarray, np.ndarray, str]:
    """Return (base RGB float 0..1, ink colour RGB, material name)."""
    material = rng.choice(MATERIALS)
    if material in ("brushed_aluminium", "stainless"):
        level = rng.uniform(0.55, 0.85)
        streaks = cv2.resize(nrng.normal(0, 1, (h, max(2, w // 40))).astype(np.float32), (w, h))
        base = level + 0.04 * streaks + 0.015 * gaussian_noise(nrng, (h, w))
        tint = np.array([1.0, 1.0, 1.03 if material == "stainless" else 1.0], np.float32)
        rgb = base[..., None] * tint
        ink = np.array([0.08, 0.08, 0.1], np.float32) * rng.uniform(0.5, 2.5)
    elif material == "painted":
        colour = np.array(rng.choice([(0.1, 0.2, 0.45), (0.1, 0.35, 0.2), (0.2, 0.2, 0.22),
                                      (0.55, 0.1, 0.1), (0.05, 0.05, 0.05)]), np.float32)
        rgb = colour + 0.02 * gaussian_noise(nrng, (h, w, 1))
        ink = np.array([0.92, 0.92, 0.9], np.float32)
    elif material == "coloured":
        colour = np.array(rng.choice([(0.95, 0.8, 0.1), (0.95, 0.55, 0.1), (0.6, 0.75, 0.9),
                                      (0.85, 0.85, 0.75)]), np.float32)
        rgb = colour + 0.015 * gaussian_noise(nrng, (h, w, 1))
        ink = np.array([0.05, 0.05, 0.05], np.float32)
    else:
        level = 0.93 if material == "sticker_white" else rng.uniform(0.68, 0.8)
        rgb = np.full((h, w, 3), level, np.float32)
        rgb += 0.01 * gaussian_noise(nrng, (h, w, 1))
        ink = np.array([0.05, 0.05, 0.07], np.float32)
    shade = 0.9 + 0.2 * _smooth_noise(nrng, h, w, 200)
    return np.clip(rgb * shade[..., None], 0, 1), ink, material


def compose(base: np.ndarray, ink_colour: np.ndarray, ink: np.ndarray, relief: np.ndarray,
            rng: random.Random) -> np.ndarray:
    """Put ink and relief on the plate: ink by coverage, relief as light and shadow edges."""
    out = base * (1 - ink[..., None]) + ink_colour * ink[..., None]
    k = rng.uniform(0.08, 0.22)  # drawn even without relief: the random stream stays aligned
    if relief.any():
        lit = np.roll(relief, (-1, -1), axis=(0, 1))
        dark = np.roll(relief, (1, 1), axis=(0, 1))
        out = out + k * (lit - dark)[..., None]
    return np.clip(out, 0, 1)


def wear(rgb: np.ndarray, rng: random.Random, nrng: np.random.Generator) -> dict[str, object]:
    """Dirt, scratches, rivets and worn print, in place; returns what was applied."""
    h, w = rgb.shape[:2]
    applied: dict[str, object] = {}
    if rng.random() < 0.35:
        dirt = _smooth_noise(nrng, h, w, rng.choice((20, 40, 80)))
        amount = rng.uniform(0.1, 0.35)
        mask = np.clip((dirt - 0.6) * 3, 0, 1)[..., None] * amount
        rgb[:] = rgb * (1 - mask) + np.array([0.3, 0.25, 0.18], np.float32) * mask
        applied["dirt"] = round(amount, 3)
    if rng.random() < 0.4:
        n = rng.randint(3, 30)
        for _ in range(n):
            x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
            length = rng.uniform(20, w / 3)
            angle = rng.uniform(0, np.pi)
            x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
            colour = rng.uniform(0.6, 1.0)
            cv2.line(rgb, (int(x0), int(y0)), (int(x1), int(y1)), (colour,) * 3, 1, cv2.LINE_AA)
        applied["scratches"] = n
    if rng.random() < 0.5:
        r = max(4, int(min(h, w) * rng.uniform(0.015, 0.03)))
        inset = int(r * rng.uniform(1.5, 2.5))
        for cx, cy in ((inset, inset), (w - inset, inset), (inset, h - inset),
                       (w - inset, h - inset)):
            cv2.circle(rgb, (cx, cy), r, (0.45, 0.45, 0.45), -1, cv2.LINE_AA)
            cv2.circle(rgb, (cx - r // 3, cy - r // 3), max(1, r // 3), (0.9, 0.9, 0.9), -1,
                       cv2.LINE_AA)
        applied["rivets"] = True
    return applied


def worn_ink(ink: np.ndarray, rng: random.Random, nrng: np.random.Generator) -> float:
    """Wear the print away in blotches (in place); returns the share of ink removed."""
    if rng.random() >= 0.15:
        return 0.0
    h, w = ink.shape
    noise = _smooth_noise(nrng, h, w, rng.choice((6, 12)))
    keep = (noise > rng.uniform(0.05, 0.2)).astype(np.float32)
    before = float(ink.sum()) or 1.0
    ink *= keep
    return round(1 - float(ink.sum()) / before, 3)
