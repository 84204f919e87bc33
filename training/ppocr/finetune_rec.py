"""Fine-tune the pretrained PP-OCR recogniser on synthetic plate lines, keeping what it knew.

``python -m training.ppocr.finetune_rec --init models/ppocr-reader --out OUT --minutes 6``

Render workers draw train-split plates without pause and cut every legible text run the
way the detector would (its box jittered and padded); the trainer samples batches from a
replay buffer of recent lines. What keeps the pretrained generality: a low learning rate
with warm-up and cosine decay, an L2 pull towards the pretrained weights (L2-SP), frozen
BatchNorm statistics, and CTC over the plate alphabet only (the classes decoding uses).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import random
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from appliance.geometry import rectify_quad
from appliance.reader.ppocr.modeling import PPOCRModel
from appliance.reader.ppocr.recognise import HEIGHT, MAX_WIDTH, STRIDE, Charset, line_input
from appliance.schema import PlateSchema, load_schema
from appliance.synth.dataset import crop_items
from appliance.synth.engine import legible, render_sample, sample_seed

_SCHEMA: PlateSchema | None = None
MAX_TEXT = 60


def _worker_init(schema_file: str) -> None:
    global _SCHEMA
    _SCHEMA = load_schema(schema_file)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def detector_like_quad(quad: np.ndarray, rng: random.Random) -> np.ndarray:
    """A label quad grown and shifted the way DB's unclipped boxes sit around text."""
    q = np.asarray(quad, np.float32)
    along = q[1] - q[0]
    down = q[3] - q[0]
    height = float(np.linalg.norm(down))
    u = along / max(1e-6, float(np.linalg.norm(along)))
    v = down / max(1e-6, height)
    grow_x = rng.uniform(0.05, 0.5) * height
    grow_top, grow_bottom = (rng.uniform(0.0, 0.35) * height for _ in range(2))
    shift = rng.uniform(-0.06, 0.06) * height
    tilt = rng.uniform(-0.04, 0.04) * height
    return np.array([q[0] - grow_x * u - (grow_top - tilt) * v + shift * v,
                     q[1] + grow_x * u - (grow_top + tilt) * v + shift * v,
                     q[2] + grow_x * u + (grow_bottom - tilt) * v + shift * v,
                     q[3] - grow_x * u + (grow_bottom + tilt) * v + shift * v], np.float32)


def frame_lines(seed: int, split: str = "train") -> list[tuple[np.ndarray, str]]:
    """Render one frame; its legible text runs as (uint8 BGR 48×W crop, text)."""
    assert _SCHEMA is not None
    sample = render_sample(seed, schema=_SCHEMA, split=split)
    image, labels = sample.image, sample.labels
    rng = random.Random(seed ^ 0x11E5)
    char_px = float(labels["params"]["char_height_px"])
    out = []
    for _, item in crop_items(labels):
        text = item["text"].strip()
        if not text or len(text) > MAX_TEXT or item["occluded"] > 0.05:
            continue
        if not legible(image, item["box"], char_px, labels["params"]):
            continue  # a run no person could read teaches guessing, not reading
        crop = rectify_quad(image, detector_like_quad(np.asarray(item["quad"]), rng),
                            height=HEIGHT, pad=0.0, max_width=MAX_WIDTH)
        if rng.random() < 0.1:
            crop = cv2.cvtColor(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        out.append((np.ascontiguousarray(crop[:, :, ::-1]), text))
    return out


def _render_job(job: tuple[int, int]) -> list[tuple[np.ndarray, str]]:
    seed, index = job
    return frame_lines(sample_seed(seed, "train", index))


def make_batch(lines: list[tuple[np.ndarray, list[int]]], device: str,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixels (zero-padded to the widest), concatenated targets, input and target lengths."""
    inputs = [line_input(crop[:, :, ::-1]) for crop, _ in lines]
    width = max(a.shape[2] for a in inputs)
    width = -(-width // STRIDE) * STRIDE
    pixels = np.zeros((len(inputs), 3, HEIGHT, width), np.float32)
    for i, a in enumerate(inputs):
        pixels[i, :, :, : a.shape[2]] = a
    steps = [math.ceil(a.shape[2] / STRIDE) for a in inputs]
    targets = torch.tensor([k for _, ids in lines for k in ids])
    return (torch.from_numpy(pixels).to(device), targets,
            torch.tensor(steps), torch.tensor([len(ids) for _, ids in lines]))


def ctc_loss(model: Any, charset: Charset, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Mean CTC loss of a batch over the plate alphabet."""
    pixels, targets, steps, lengths = batch
    logits = model(pixels, logits=True)["logits"]
    log_probs = charset.masked_log_probs(logits).transpose(0, 1)  # T×B×K
    steps = torch.clamp(steps, max=log_probs.shape[0])
    return torch.nn.functional.ctc_loss(log_probs, targets, steps, lengths, blank=0,
                                        reduction="mean", zero_infinity=True)


def encode_columns(charset: Charset, text: str) -> list[int] | None:
    """``text`` as columns of the masked alphabet (what :func:`ctc_loss` scores)."""
    ids = charset.encode(text)
    if ids is None:
        return None
    column = {int(c): k for k, c in enumerate(charset.allowed.tolist())}
    out = [column.get(i) for i in ids]
    return None if any(k is None for k in out) else out  # type: ignore[return-value]


def finetune(init: Path, out: Path, *, schema_file: Path, minutes: float, device: str,
             workers: int, batch_size: int = 192, lr: float = 2e-3, l2sp: float = 1e-3,
             seed: int = 7, buffer_size: int = 150_000, max_steps: int | None = None,
             ) -> dict[str, Any]:
    """Train the recogniser of ``init`` and save it to ``out/recognizer``; a summary."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model: Any = PPOCRModel.from_pretrained(init / "recognizer").to(device, torch.float32)
    model.train()
    charset = Charset(list(model.config.charset))
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    # BatchNorm is folded into the exported kernels, so weights are no longer scale-free:
    # each tensor's step is relative to its own size (lr × its RMS), as LARS/LAMB do
    groups = [{"params": [p], "scale": max(float(p.detach().pow(2).mean().sqrt()), 1e-6)}
              for p in model.parameters()]
    optimiser = torch.optim.AdamW(groups, lr=lr, weight_decay=0.0)
    budget = minutes * 60
    warmup = 0.05 * budget
    buffer: list[tuple[np.ndarray, list[int]]] = []
    log: list[dict[str, float]] = []
    started = time.perf_counter()
    ctx = mp.get_context("fork")
    cv2.setNumThreads(1)
    with ctx.Pool(workers, initializer=_worker_init, initargs=(str(schema_file),)) as pool:
        stream = pool.imap_unordered(_render_job, ((seed, i) for i in range(10**9)),
                                     chunksize=1)  # >1 gives a plain generator
        step = frames = 0
        smooth = None
        while True:
            elapsed = time.perf_counter() - started
            if elapsed > budget or (max_steps is not None and step >= max_steps):
                break
            # take what the workers have ready (at least one frame at the start)
            while True:
                try:
                    lines = stream.next(timeout=0.0 if len(buffer) >= batch_size else 60)
                except mp.TimeoutError:
                    break
                frames += 1
                for crop, text in lines:
                    ids = encode_columns(charset, text)
                    if ids:
                        buffer.append((crop, ids))
                if len(buffer) > buffer_size:
                    del buffer[: len(buffer) - buffer_size]
                if len(buffer) >= batch_size and frames % 8 == 0:
                    break
            if len(buffer) < 8:
                continue
            scale = min(1.0, elapsed / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0,
                                                                           elapsed / budget)))
            for group in optimiser.param_groups:
                group["lr"] = lr * scale * group["scale"]
            picked = [buffer[rng.randrange(len(buffer))] for _ in range(min(batch_size,
                                                                             len(buffer)))]
            loss = ctc_loss(model, charset, make_batch(picked, device))
            pull = sum((((p - anchor[n]) / g["scale"]) ** 2).mean()
                       for (n, p), g in zip(model.named_parameters(), groups, strict=True))
            total = loss + l2sp * pull
            optimiser.zero_grad(set_to_none=True)
            total.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            step += 1
            value = float(loss.detach())
            smooth = value if smooth is None else 0.95 * smooth + 0.05 * value
            if step % 50 == 0 or step == 1:
                entry = {"step": step, "seconds": round(elapsed, 1), "loss": round(smooth, 4),
                         "l2sp": round(float(pull), 4), "lr": lr * scale, "frames": frames,
                         "buffer": len(buffer)}
                log.append(entry)
                print(json.dumps(entry), flush=True)
        pool.terminate()
    model.eval()
    (out / "recognizer").mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out / "recognizer")
    summary = {"steps": step, "frames": frames, "minutes": round(
        (time.perf_counter() - started) / 60, 2), "lr": lr, "l2sp": l2sp,
        "batch_size": batch_size, "final_loss": smooth, "log": log}
    (out / "finetune_rec.json").write_text(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--init", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--schema", type=Path, default=Path("config/schemas/motor.toml"))
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=max(1, (mp.cpu_count() or 2) - 1))
    parser.add_argument("--batch-size", type=int, default=192)
    parser.add_argument("--lr", type=float, default=2e-3,
                        help="step size relative to each weight tensor's RMS")
    parser.add_argument("--l2sp", type=float, default=1e-3)
    parser.add_argument("--max-steps", type=int, default=None)
    args = parser.parse_args()
    finetune(args.init, args.out, schema_file=args.schema, minutes=args.minutes,
             device=args.device, workers=args.workers, batch_size=args.batch_size,
             lr=args.lr, l2sp=args.l2sp, max_steps=args.max_steps)


if __name__ == "__main__":
    main()
