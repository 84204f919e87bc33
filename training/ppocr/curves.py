"""Fine-tuning curves: recogniser loss and distance from the pretrained weights (L2-SP)
against minutes, one line per run, drawn from the runs' ``finetune.json`` logs.

``python -m training.ppocr.curves docs/training/ppocr-run{18,19,20}-finetune.json --out
docs/training/finetune-curves.png``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

from training.calibrate.plot import tradeoff_image

#: what each panel shows: the log key and its title (training batches' loss, not a held-out
#: measure: it rises as the replay buffer fills with lines the run has not seen yet)
PANELS = (("rec_loss", "recogniser CTC loss"), ("rec_l2sp", "L2-SP distance"))


def run_curves(logs: dict[str, list[dict[str, float]]], key: str,
               ) -> dict[str, list[tuple[float, float, str]]]:
    """Per run, (minutes, value of ``key``) at each logged step that has it; the last point
    labelled with its value."""
    curves = {}
    for name, log in logs.items():
        points = [(row["seconds"] / 60, float(row[key]), "") for row in log if key in row]
        if points:
            minutes, value, _ = points[-1]
            points[-1] = (minutes, value, f"{value:.3g}")
            curves[name] = points
    return curves


def draw_curves(files: list[Path], out: Path) -> Path:
    """Draw :data:`PANELS` side by side for the runs logged in ``files`` into ``out``."""
    logs = {f.name.removesuffix("-finetune.json"): json.loads(f.read_text())["log"]
            for f in files}
    panels = []
    for key, title in PANELS:
        curves = run_curves(logs, key)
        values = [y for points in curves.values() for _, y, _ in points] or [1.0]
        minutes = [x for points in curves.values() for x, _, _ in points] or [1.0]
        panels.append(tradeoff_image(curves, x_label="minutes", y_label=title,
                                     x_max=max(minutes), y_range=(0.0, 1.1 * max(values))))
    sheet = Image.new("RGB", (sum(p.width for p in panels), max(p.height for p in panels)),
                      "white")
    x = 0
    for panel in panels:
        sheet.paste(panel, (x, 0))
        x += panel.width
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("logs", type=Path, nargs="+", help="finetune.json files")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(draw_curves(args.logs, args.out))


if __name__ == "__main__":
    main()
