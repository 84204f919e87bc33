"""Reliability diagrams: the share of values read right against the confidence given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw

Bins = Sequence[Sequence[float]]  # per bin: mean confidence, share right, count


def plot_bins(curves: dict[str, Bins], out: Path) -> Path:
    """Draw one line per curve (bins as :func:`appliance.reader.calibration.reliability`
    gives them) over the diagonal of perfect calibration; the legend gives each ECE."""
    size, pad = 420, 50
    image = Image.new("RGB", (size + 2 * pad, size + 2 * pad + 20 * len(curves)), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((pad, pad, pad + size, pad + size), outline="black")
    draw.line((pad, pad + size, pad + size, pad), fill=(170, 170, 170))
    for tick in range(0, 11, 2):
        t = tick / 10
        draw.text((pad + t * size - 8, pad + size + 6), f"{t:.1f}", fill="black")
        draw.text((8, pad + size - t * size - 6), f"{t:.1f}", fill="black")
    draw.text((pad, 12), "share of values read right (y) against confidence (x)", fill="black")
    colours = [(200, 60, 40), (30, 110, 200), (40, 150, 60), (150, 80, 170)]
    for i, (name, bins) in enumerate(curves.items()):
        colour = colours[i % len(colours)]
        xy = [(pad + conf * size, pad + size - acc * size) for conf, acc, _ in bins]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=3)
        for x, y in xy:
            draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=colour)
        total = sum(n for _, _, n in bins)
        gap = sum(n * abs(c - a) for c, a, n in bins) / max(1, total)
        draw.text((pad, pad + size + 26 + 20 * i), f"{name}: ECE {gap:.3f}, {int(total)} values",
                  fill=colour)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out


def plot_tradeoff(curves: Mapping[str, Sequence[tuple[float, float, str]]], out: Path, *,
                  x_label: str, y_label: str, x_max: float, y_range: tuple[float, float],
                  x_target: float | None = None) -> Path:
    """Save :func:`tradeoff_image` of ``curves`` as ``out``."""
    image = tradeoff_image(curves, x_label=x_label, y_label=y_label, x_max=x_max,
                           y_range=y_range, x_target=x_target)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out


def tradeoff_image(curves: Mapping[str, Sequence[tuple[float, float, str]]], *,
                   x_label: str, y_label: str, x_max: float, y_range: tuple[float, float],
                   x_target: float | None = None) -> Image.Image:
    """One line per curve of (x, y, point label) points, e.g. a threshold sweep: what is
    let through (x) against what is kept (y); ``x_target`` draws a dotted limit."""
    size, pad = 420, 60
    image = Image.new("RGB", (size + 2 * pad, size + 2 * pad + 20 * len(curves)), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((pad, pad, pad + size, pad + size), outline="black")
    low, high = y_range

    def at(x: float, y: float) -> tuple[float, float]:
        return (pad + min(x, x_max) / x_max * size,
                pad + size - (min(max(y, low), high) - low) / (high - low) * size)

    for tick in range(0, 6):
        x, y = x_max * tick / 5, low + (high - low) * tick / 5
        draw.text((at(x, low)[0] - 10, pad + size + 6), f"{x:.3g}", fill="black")
        draw.text((6, at(0, y)[1] - 6), f"{y:.3g}", fill="black")
    if x_target is not None:
        tx = at(x_target, low)[0]
        for y0 in range(pad, pad + size, 8):
            draw.line((tx, y0, tx, y0 + 3), fill=(120, 120, 120))
    draw.text((pad, 12), f"{y_label} (y) against {x_label} (x)", fill="black")
    colours = [(200, 60, 40), (30, 110, 200), (40, 150, 60), (150, 80, 170)]
    for i, (name, points) in enumerate(curves.items()):
        colour = colours[i % len(colours)]
        xy = [at(x, y) for x, y, _ in points]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        for (x, y), (_, _, label) in zip(xy, points, strict=True):
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
            draw.text((x + 4, y - 12), label, fill=colour)
        draw.text((pad, pad + size + 26 + 20 * i), name, fill=colour)
    return image
