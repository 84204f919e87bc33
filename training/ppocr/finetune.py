"""Fine-tune the pretrained PP-OCR recogniser and detector on synthetic plates, keeping
what they knew.

``python -m training.ppocr.finetune --init models/ppocr-reader --out OUT --minutes 6``

Render workers draw train-split plates without pause; from each frame they cut every legible
text run the way the detector would (its box jittered and padded) and one detector crop
with DB's targets. The trainer samples batches from replay buffers of recent lines and
crops, one recogniser step and one detector step at a time. What keeps the pretrained
generality: small steps relative to each weight tensor, warm-up and cosine decay, an L2
pull towards the pretrained weights (L2-SP), frozen BatchNorm statistics, and CTC over the
plate alphabet only (the classes decoding uses).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import random
import time
from collections import deque
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from appliance.geometry import rectify_quad
from appliance.reader.ppocr.modeling import PPOCRModel
from appliance.reader.ppocr.recognise import (
    HEIGHT,
    MAX_WIDTH,
    STRIDE,
    Charset,
    line_pixels,
    network_input,
)
from appliance.schema import PlateSchema, load_schema
from appliance.synth.dataset import crop_items
from appliance.synth.engine import render_sample, sample_seed
from appliance.synth.legibility import characters_clear, legible
from training.ppocr.finetune_det import detector_batch, detector_loss, detector_sample

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


Lines = list[tuple[np.ndarray, str]]
DetSample = tuple[np.ndarray, np.ndarray]


#: extra cuts (each with its own detector-like jitter) of runs in the styles the pretrained
#: recogniser reads worst on station frames (dot-matrix 34 % of values missed, stamped 17 %,
#: laser 15 %, engraved 12 %, print 8 %: ``training.calibrate.collect`` reads of run 3)
HARD_STYLES = {"dotmatrix": 3, "stamped": 2, "laser": 2, "engraved": 2}
#: the fields whose values are codes (no word to guess from, look-alikes all through them):
#: what keeps most good units from passing (``review_causes``, run 18: model and serial unsure)
CODE_FIELDS = ("model", "serial")
_REPEATS: dict[str, int] = {}


def frame_lines(seed: int, split: str = "train", *, repeats: dict[str, int] | None = None,
                detector: bool = True) -> tuple[Lines, DetSample | None]:
    """Render one frame; its legible text runs as (uint8 BGR 48×W crop, text), and a
    detector crop with its target (None without ``detector``). ``repeats`` cuts runs of
    some styles several times, and code values (:data:`CODE_FIELDS`) ``repeats["codes"]``
    times as often again."""
    assert _SCHEMA is not None
    sample = render_sample(seed, schema=_SCHEMA, split=split)
    image, labels = sample.image, sample.labels
    rng = random.Random(seed ^ 0x11E5)
    # the detector crop is drawn either way, so the rng stream (and the lines) stay the same
    crop_and_target = detector_sample(image, labels, rng)
    det = crop_and_target if detector else None
    char_px = float(labels["params"]["char_height_px"])
    out = []
    for _, item in crop_items(labels):
        text = item["text"].strip()
        if not text or len(text) > MAX_TEXT or item["occluded"] > 0.05:
            continue
        if not (legible(image, item["box"], char_px, labels["params"])
                and characters_clear(item.get("visibility"))):
            continue  # a run no person could read teaches guessing, not reading
        cuts = (repeats or {}).get(item.get("style", "print"), 1)
        if item.get("role") == "value" and item.get("field") in CODE_FIELDS:
            cuts *= (repeats or {}).get("codes", 1)
        for _ in range(cuts):
            crop = rectify_quad(image, detector_like_quad(np.asarray(item["quad"]), rng),
                                height=HEIGHT, pad=0.0, max_width=MAX_WIDTH)
            if rng.random() < 0.1:
                crop = cv2.cvtColor(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            out.append((np.ascontiguousarray(crop[:, :, ::-1]), text))
    return out, det


def _render_job(job: tuple[int, int, bool]) -> tuple[Lines, DetSample | None]:
    seed, index, detector = job
    return frame_lines(sample_seed(seed, "train", index), repeats=_REPEATS, detector=detector)


class RenderFeed:
    """Training frames from a worker pool, at most ``ahead`` rendering or waiting.

    The workers render no faster than the trainer takes frames: an unbounded stream (as
    before session 13) piled up frames in the trainer's memory and spent its time
    unpickling frames it never used whenever a step took longer than eight frames took to
    render. Frames come in index order, so a run is reproducible."""

    def __init__(self, pool: Any, *, seed: int, detector: bool, ahead: int) -> None:
        self.pool, self.seed, self.detector = pool, seed, detector
        self.ahead = ahead
        self.index = 0
        self.pending: deque[Any] = deque()
        for _ in range(ahead):
            self._submit()

    def _submit(self) -> None:
        self.pending.append(self.pool.apply_async(
            _render_job, ((self.seed, self.index, self.detector),)))
        self.index += 1

    def take(self, *, wait: bool) -> tuple[Lines, DetSample | None] | None:
        """The next frame: None when it is not ready (after a minute's wait with
        ``wait``)."""
        head = self.pending[0]
        try:
            frame = head.get(timeout=60 if wait else 0.0)
        except mp.TimeoutError:
            return None
        self.pending.popleft()
        self._submit()
        return frame  # type: ignore[no-any-return]


def make_batch(lines: list[tuple[np.ndarray, list[int]]], device: str,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixels (zero-padded to the widest), concatenated targets, input and target lengths.

    The lines travel to ``device`` as one uint8 batch and are normalised there
    (:func:`network_input`, as the reader does), then laid out as the trained model's
    weights are (contiguous, not channels-last: as before session 13). Normalising each
    line on the CPU with torch's threads while every core rendered plates cost seconds a
    step on the GPU host (session 13: threads waiting on each other)."""
    pixels = [line_pixels(crop[:, :, ::-1]) for crop, _ in lines]
    widths = [p.shape[1] for p in pixels]
    width = -(-max(widths) // STRIDE) * STRIDE
    batch = np.zeros((len(pixels), HEIGHT, width, 3), np.uint8)
    for i, p in enumerate(pixels):
        batch[i, :, : p.shape[1]] = p
    steps = [math.ceil(w / STRIDE) for w in widths]
    targets = torch.tensor([k for _, ids in lines for k in ids])
    pixels_in = network_input(torch.from_numpy(batch).to(device), widths).contiguous()
    return (pixels_in, targets,
            torch.tensor(steps), torch.tensor([len(ids) for _, ids in lines]))


class WidthBatches:
    """Recogniser batches of lines of about one width: ``group`` batches' worth drawn at
    random from the buffer, sorted by width and cut into batches served in random order.
    Every line is still drawn uniformly; a batch of random widths padded to its widest line
    made a step do about twice the work its lines needed (session 14: median padded width
    624 px on the GPU host)."""

    def __init__(self, rng: random.Random, batch_size: int, group: int = 8) -> None:
        self.rng = rng
        self.batch_size = batch_size
        self.group = max(1, group)
        self._ready: list[list[tuple[np.ndarray, list[int]]]] = []

    def next(self, buffer: list[tuple[np.ndarray, list[int]]],
             ) -> list[tuple[np.ndarray, list[int]]]:
        """The next batch (at most ``batch_size`` lines) drawn from ``buffer``."""
        if not self._ready:
            size = min(self.batch_size, len(buffer))
            drawn = sorted((buffer[self.rng.randrange(len(buffer))]
                            for _ in range(size * self.group)),
                           key=lambda line: line[0].shape[1])
            self._ready = [drawn[i: i + size] for i in range(0, len(drawn), size)]
            self.rng.shuffle(self._ready)
        return self._ready.pop()


def ctc_loss(model: Any, charset: Charset, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Mean CTC loss of a batch over the plate alphabet."""
    pixels, targets, steps, lengths = batch
    log_probs = charset.log_probs(model, pixels).transpose(0, 1)  # T×B×K
    steps = torch.clamp(steps, max=log_probs.shape[0])
    return torch.nn.functional.ctc_loss(log_probs, targets, steps, lengths, blank=0,
                                        reduction="mean", zero_infinity=True)


def encode_columns(charset: Charset, text: str) -> list[int] | None:
    """``text`` as columns of the masked alphabet (what :func:`ctc_loss` scores)."""
    return charset.columns(text)


class Tuned:
    """One network being fine-tuned: its optimiser (steps relative to each weight tensor's
    RMS: BatchNorm is folded into the exported kernels, so weights are no longer
    scale-free) and its anchor for the L2-SP pull."""

    def __init__(self, folder: Path, device: str, lr: float) -> None:
        model: Any = PPOCRModel.from_pretrained(folder)
        self.model: Any = model.to(device, torch.float32)
        self.model.train()
        self.anchor = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        self.groups = [{"params": [p], "scale": max(float(p.detach().pow(2).mean().sqrt()),
                                                    1e-6)}
                       for p in self.model.parameters()]
        self.optimiser = torch.optim.AdamW(self.groups, lr=lr, weight_decay=0.0)
        self.lr = lr
        self.smooth: float | None = None

    def step(self, loss: torch.Tensor, scale: float, l2sp: float) -> float:
        """One optimiser step on ``loss`` plus the pull; returns the pull's value."""
        for group in self.optimiser.param_groups:
            group["lr"] = self.lr * scale * group["scale"]
        pull = sum((((p - self.anchor[n]) / g["scale"]) ** 2).mean()
                   for (n, p), g in zip(self.model.named_parameters(), self.groups,
                                        strict=True))
        total = loss + l2sp * pull
        self.optimiser.zero_grad(set_to_none=True)
        total.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.optimiser.step()
        value = float(loss.detach())
        self.smooth = value if self.smooth is None else 0.95 * self.smooth + 0.05 * value
        return float(pull.detach())  # type: ignore[union-attr]


def finetune(init: Path, out: Path, *, schema_file: Path, minutes: float, device: str,
             workers: int, batch_size: int = 192, lr: float = 1e-3, l2sp: float = 1e-3,
             seed: int = 7, buffer_size: int = 150_000, max_steps: int | None = None,
             parts: tuple[str, ...] = ("recognizer", "detector"), det_batch: int = 8,
             det_buffer: int = 2000, hard_styles: bool = False, code_repeats: int = 1,
             width_group: int = 8) -> dict[str, Any]:
    """Train the recogniser and/or detector of ``init``; save them under ``out``.
    ``hard_styles`` cuts runs of :data:`HARD_STYLES` more often, ``code_repeats`` the values
    of :data:`CODE_FIELDS` that many times as often (both inherited by the workers);
    ``width_group`` batches are drawn at once and sorted by width (:class:`WidthBatches`;
    1: batches of random widths, as before session 14)."""
    _REPEATS.clear()
    _REPEATS.update(HARD_STYLES if hard_styles else {})
    _REPEATS["codes"] = code_repeats
    torch.manual_seed(seed)
    if device != "cpu":  # the networks run on the device; every core is the renderers'
        torch.set_num_threads(1)
    rng = random.Random(seed)
    batches = WidthBatches(rng, batch_size, width_group)
    rec = Tuned(init / "recognizer", device, lr) if "recognizer" in parts else None
    det = Tuned(init / "detector", device, lr) if "detector" in parts else None
    charset = Charset(list(PPOCRModel.config_class.from_pretrained(
        init / "recognizer").charset))
    det_samples: list[DetSample] = []
    budget = minutes * 60
    warmup = 0.1 * budget
    buffer: list[tuple[np.ndarray, list[int]]] = []
    log: list[dict[str, float]] = []
    started = time.perf_counter()
    ctx = mp.get_context("fork")
    cv2.setNumThreads(1)
    with ctx.Pool(workers, initializer=_worker_init, initargs=(str(schema_file),)) as pool:
        feed = RenderFeed(pool, seed=seed, detector=det is not None, ahead=2 * workers)
        step = frames = 0
        while True:
            elapsed = time.perf_counter() - started
            if elapsed > budget or (max_steps is not None and step >= max_steps):
                break
            # take every frame the workers have ready (waiting only while the buffer is short)
            for _ in range(feed.ahead):
                frame = feed.take(wait=len(buffer) < batch_size)
                if frame is None:
                    break
                lines, det_sample = frame
                frames += 1
                if det_sample is not None:
                    det_samples.append(det_sample)
                    if len(det_samples) > det_buffer:
                        del det_samples[: len(det_samples) - det_buffer]
                for crop, text in lines:
                    ids = encode_columns(charset, text)
                    if ids:
                        buffer.append((crop, ids))
                if len(buffer) > buffer_size:
                    del buffer[: len(buffer) - buffer_size]
            if len(buffer) < 8:
                continue
            scale = min(1.0, elapsed / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0,
                                                                           elapsed / budget)))
            entry: dict[str, Any] = {"step": step + 1, "seconds": round(elapsed, 1),
                                     "lr": lr * scale, "frames": frames,
                                     "buffer": len(buffer)}
            if rec is not None:
                loss = ctc_loss(rec.model, charset, make_batch(batches.next(buffer), device))
                entry["rec_l2sp"] = round(rec.step(loss, scale, l2sp), 4)
                entry["rec_loss"] = round(rec.smooth or 0.0, 4)
            if det is not None and det_samples:
                picked_det = [det_samples[rng.randrange(len(det_samples))]
                              for _ in range(det_batch)]
                loss = detector_loss(det.model, *detector_batch(picked_det, device))
                entry["det_l2sp"] = round(det.step(loss, scale, l2sp), 4)
                entry["det_loss"] = round(det.smooth or 0.0, 4)
            step += 1
            if step % 50 == 0 or step == 1:
                log.append(entry)
                print(json.dumps(entry), flush=True)
        pool.terminate()
    for name, tuned in (("recognizer", rec), ("detector", det)):
        if tuned is not None:
            tuned.model.eval()
            (out / name).mkdir(parents=True, exist_ok=True)
            tuned.model.save_pretrained(out / name)
    summary = {"steps": step, "frames": frames, "minutes": round(
        (time.perf_counter() - started) / 60, 2), "lr": lr, "l2sp": l2sp, "parts": parts,
        "batch_size": batch_size, "width_group": width_group, "det_batch": det_batch,
        "hard_styles": hard_styles,
        "code_repeats": code_repeats,
        "workers": workers, "log": log}
    (out / "finetune.json").write_text(json.dumps(summary, indent=1))
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
    parser.add_argument("--parts", default="recognizer,detector")
    parser.add_argument("--lr", type=float, default=1e-3,
                        help="step size relative to each weight tensor's RMS")
    parser.add_argument("--l2sp", type=float, default=1e-3)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--hard-styles", action="store_true",
                        help="cut dot-matrix, stamped, laser and engraved runs more often")
    parser.add_argument("--code-repeats", type=int, default=1,
                        help="cut model and serial values this many times as often")
    parser.add_argument("--width-group", type=int, default=8,
                        help="recogniser batches drawn at once and sorted by width (1: none)")
    args = parser.parse_args()
    finetune(args.init, args.out, schema_file=args.schema, minutes=args.minutes,
             device=args.device, workers=args.workers, batch_size=args.batch_size,
             lr=args.lr, l2sp=args.l2sp, max_steps=args.max_steps,
             parts=tuple(args.parts.split(",")), hard_styles=args.hard_styles,
             code_repeats=args.code_repeats, width_group=args.width_group)


if __name__ == "__main__":
    main()
