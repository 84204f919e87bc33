"""``nameplate finetune`` for the PP-OCR reader: learn a plant's labelled photos (the panel's
correction format), guarded by the synthetic dev set.

Photos are loaded and their values located by :mod:`training.photos`: each labelled value
is found among the runs the shipped detector finds and the run's crop becomes a training
line with the value written in. Synthetic lines are mixed into every step, every fifth photo
is kept out to show the gain, and a reader more than ``tolerance`` worse on the synthetic
dev set is refused with nothing written. Only the recogniser learns, with the same relative
steps and L2-SP pull as :mod:`training.ppocr.finetune`.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from appliance.reader.ppocr.pipeline import DEFAULT_MODEL, PPOCRReader
from appliance.reader.ppocr.recognise import Charset
from appliance.schema import load_schema
from appliance.synth.dataset import iter_samples
from appliance.synth.engine import sample_seed
from training.evaluate import evaluate
from training.photos import (
    FinetuneError,
    augment,
    photo_accuracy,
    photo_lines,
    prepare_photos,
    settle,
)
from training.ppocr import finetune as synthetic

Line = tuple[np.ndarray, list[int]]  # BGR crop, alphabet columns


def _synthetic_lines(schema_file: Path, frames: int, *, workers: int, seed: int,
                     charset: Charset) -> list[Line]:
    """Lines of ``frames`` rendered training plates (rendered in forked workers before any
    model runs, like the earlier reader's rehearsal)."""
    if frames <= 0:
        return []
    jobs = [sample_seed(seed, "train", i) for i in range(frames)]
    cv2.setNumThreads(1)
    with mp.get_context("fork").Pool(max(1, workers), initializer=synthetic._worker_init,
                                     initargs=(str(schema_file),)) as pool:
        rendered = pool.map(synthetic.frame_lines, jobs)
    out = []
    for lines, _ in rendered:
        for crop, text in lines:
            ids = synthetic.encode_columns(charset, text)
            if ids:
                out.append((crop, ids))
    return out


def _loss(model: Any, lines: list[Line], charset: Charset, device: str) -> float:
    with torch.no_grad():
        losses = [float(synthetic.ctc_loss(model, charset, synthetic.make_batch(
            lines[i: i + 32], device))) for i in range(0, len(lines), 32)]
    return round(float(np.mean(losses)), 4)


def finetune(folder: Path, out: Path, *, schema_file: Path, model_dir: Path | None = None,
             steps: int = 200, lr: float = 3e-4, batch: int = 32, rehearsal_frames: int = 80,
             dev_frames: int = 40, tolerance: float = 0.01, device: str = "cpu",
             workers: int = 2, seed: int = 0) -> dict[str, Any]:
    """Fine-tune the PP-OCR reader at ``model_dir`` on the labelled photos in ``folder``;
    writes ``out`` (which must not exist) only when the guard passes. Returns the report."""
    source = Path(model_dir) if model_dir else DEFAULT_MODEL
    schema = load_schema(schema_file)
    photos, problems, check = prepare_photos(folder, out, schema)
    fit = [p for p in photos if p not in check]
    charset = Charset(list(json.loads((source / "recognizer" / "config.json")
                                      .read_text())["charset"]))
    rehearsal = _synthetic_lines(schema_file, rehearsal_frames, workers=workers,
                                 seed=seed + 7, charset=charset)
    dev = list(iter_samples(schema_file, seed=2026, split="dev", n=dev_frames,
                            workers=max(1, workers)))
    reader = PPOCRReader(schema=schema, device=device, model_dir=source)
    plant: list[Line] = []
    for photo in fit:
        found = photo_lines(reader, photo)
        problems += found.problems
        for crop, text in found.lines:
            ids = synthetic.encode_columns(charset, text)
            if ids:
                plant.append((np.ascontiguousarray(crop[:, :, ::-1]), ids))
    if not plant:
        raise FinetuneError(f"{folder}: none of the labelled values was found on its photo"
                            + "".join(f"\n  {p}" for p in problems))
    report: dict[str, Any] = {
        "backend": "ppocr", "photos": len(photos), "fit_photos": len(fit),
        "check_photos": len(check), "plant_lines": len(plant),
        "synthetic_lines": len(rehearsal), "problems": problems, "steps": steps, "lr": lr,
        "tolerance": tolerance, "source": str(source),
        "before": {"dev_field_exact": evaluate(reader, schema_file, samples=dev)["field_exact"],
                   "check_photos_field_exact": photo_accuracy(reader, check)},
    }
    tuned = synthetic.Tuned(source / "recognizer", device, lr)
    report["plant_line_loss_before"] = _loss(tuned.model, plant, charset, device)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    from_photos = max(1, batch // 4) if rehearsal else batch
    for _ in range(steps):
        chosen = [(augment(c, rng), ids) for c, ids in (rng.choice(plant)
                                                        for _ in range(from_photos))]
        chosen += [rng.choice(rehearsal) for _ in range(batch - from_photos)] if rehearsal \
            else []
        loss = synthetic.ctc_loss(tuned.model, charset, synthetic.make_batch(chosen, device))
        tuned.step(loss, 1.0, 1e-3)
    tuned.model.eval()
    report["plant_line_loss_after"] = _loss(tuned.model, plant, charset, device)
    staging = out.parent / f".{out.name}.incomplete"
    shutil.rmtree(staging, ignore_errors=True)
    for part in ("detector", "orientation"):
        shutil.copytree(source / part, staging / part)
    tuned.model.save_pretrained(staging / "recognizer")
    after = PPOCRReader(schema=schema, device=device, model_dir=staging)
    report["after"] = {
        "dev_field_exact": evaluate(after, schema_file, samples=dev)["field_exact"],
        "check_photos_field_exact": photo_accuracy(after, check)}
    return settle(report, staging, out, tolerance)
