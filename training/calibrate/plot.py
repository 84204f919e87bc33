"""Reliability diagrams: the share of values read right against the confidence given."""

from __future__ import annotations

from collections.abc import Sequence
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
