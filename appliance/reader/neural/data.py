"""Training batches rendered on the fly by the synthetic engine (one frame → detector
targets + rectified crops of every text run)."""

from __future__ import annotations

import random
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from appliance.geometry import rectify_quad
from appliance.reader.neural.detector import letterbox, target_maps
from appliance.reader.neural.recognizer import LINE_HEIGHT, MAX_WIDTH, prepare_lines
from appliance.reader.neural.vocab import EOS_ID, CharVocab
from appliance.schema import PlateSchema
from appliance.synth.dataset import crop_items
from appliance.synth.engine import legible, render_sample, sample_seed

MAX_TEXT = 60


def jitter_quad(quad: np.ndarray, rng: random.Random) -> np.ndarray:
    """Move a text quad the way an imperfect detector would (±8 % height, ±0.4 h at ends)."""
    q = np.asarray(quad, np.float32).copy()
    h = max(1.0, float(np.linalg.norm(q[3] - q[0])))
    along = (q[1] - q[0]) / max(1e-6, float(np.linalg.norm(q[1] - q[0])))
    across = (q[3] - q[0]) / h
    grow = rng.uniform(-0.08, 0.25) * h
    q[0] += -grow * across - rng.uniform(-0.1, 0.4) * h * along
    q[1] += -grow * across + rng.uniform(-0.1, 0.4) * h * along
    q[2] += grow * across + rng.uniform(-0.1, 0.4) * h * along
    q[3] += grow * across - rng.uniform(-0.1, 0.4) * h * along
    q += np.float32(rng.uniform(-0.06, 0.06) * h) * across
    return q


def frame_example(seed: int, schema: PlateSchema, *, split: str, input_w: int, input_h: int,
                  max_crops: int = 24) -> dict[str, Any]:
    """Render one frame; return its detector input/targets and its text crops."""
    sample = render_sample(seed, schema=schema, split=split)
    image, labels = sample.image, sample.labels
    rng = random.Random(seed ^ 0x5EED)
    pixels, scale = letterbox(image, input_w, input_h)
    quads = [np.asarray(item["quad"], np.float32) for item in labels["items"]
             if item["text"].strip() and item["occluded"] < 0.5]
    targets = target_maps(quads, np.asarray(labels["plate"]["corners"]), input_w, input_h, scale)
    crops, texts = [], []
    items = list(crop_items(labels))
    rng.shuffle(items)
    char_px = float(labels["params"]["char_height_px"])
    for _, item in items[:max_crops]:
        text = item["text"]
        if len(text) > MAX_TEXT:
            continue
        if not legible(image, item["box"], char_px, labels["params"]):
            continue  # a label no person could check teaches guessing, not reading
        crop = rectify_quad(image, jitter_quad(np.asarray(item["quad"]), rng),
                            pad=rng.uniform(0.06, 0.2))
        if crop.shape[1] > MAX_WIDTH * 1.5:
            continue
        crops.append(line_image(crop))
        texts.append(text)
    # uint8 halves what crosses the worker pipe; the trainer scales back to 0..1
    return {"pixels": (pixels * 255).round().astype(np.uint8),
            "targets": targets.astype(np.uint8), "crops": crops, "texts": texts}


def line_image(crop: np.ndarray) -> np.ndarray:
    """A rectified RGB crop as the recognizer sees it: grey, 32 px high, at most 640 wide."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    width = min(MAX_WIDTH, max(8, round(grey.shape[1] * LINE_HEIGHT / max(1, grey.shape[0]))))
    return cv2.resize(grey, (width, LINE_HEIGHT), interpolation=cv2.INTER_AREA)


def single_thread_worker(_: int = 0) -> None:
    """Many render workers share the cores: one thread each for torch and OpenCV."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


class SyntheticFrames(IterableDataset):  # type: ignore[type-arg]
    """An endless stream of rendered frames; every worker renders its own seeds."""

    def __init__(self, schema: PlateSchema, *, seed: int, split: str = "train",
                 input_w: int = 640, input_h: int = 480) -> None:
        self.schema = schema
        self.seed = seed
        self.split = split
        self.input_w = input_w
        self.input_h = input_h

    def __iter__(self):  # type: ignore[no-untyped-def]
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        index = worker
        while True:
            yield frame_example(sample_seed(self.seed, self.split, index), self.schema,
                                split=self.split, input_w=self.input_w, input_h=self.input_h)
            index += workers


def collate(examples: list[dict[str, Any]], vocab: CharVocab,
            lines: list[tuple[np.ndarray, str]] | None = None) -> dict[str, torch.Tensor]:
    """Stack frames and turn their crops (or ``lines``, (image, text) pairs drawn from a
    bank) into one recognizer batch."""
    pixels = torch.from_numpy(np.stack([e["pixels"] for e in examples])).float() / 255
    targets = torch.from_numpy(np.stack([e["targets"] for e in examples])).float()
    if lines is None:
        lines = [(c, t) for e in examples for c, t in zip(e["crops"], e["texts"], strict=True)]
    return {"pixels": pixels, "targets": targets, **line_batch(lines, vocab)}


def line_batch(lines: list[tuple[np.ndarray, str]], vocab: CharVocab) -> dict[str, torch.Tensor]:
    """(line image, text) pairs as one recognizer batch: pixels, decoder labels, CTC targets."""
    crops = [c for c, _ in lines]
    texts = [t for _, t in lines]
    if not crops:
        crops, texts = [np.zeros((32, 32, 3), np.uint8)], [""]
    line_pixels = prepare_lines(crops)
    ids = [vocab.encode(t) for t in texts]
    longest = max(len(i) for i in ids) + 1
    labels = torch.full((len(ids), longest), -100, dtype=torch.long)
    for row, seq in enumerate(ids):
        labels[row, : len(seq) + 1] = torch.tensor([*seq, EOS_ID])
    ctc_targets = torch.tensor([i for seq in ids for i in seq], dtype=torch.long)
    ctc_lengths = torch.tensor([len(seq) for seq in ids], dtype=torch.long)
    widths = torch.tensor([min(c.shape[1], MAX_WIDTH) // 4 for c in crops], dtype=torch.long)
    return {"line_pixels": line_pixels, "labels": labels, "ctc_targets": ctc_targets,
            "ctc_lengths": ctc_lengths, "line_widths": widths}


class TrainingBank:
    """Rendered frames and text lines kept for reuse, filled by a thread from the renderers.

    Rendering (~40 frames/s on 16 cores) is far slower than the GPU trains; sampling each
    step from a large, constantly refreshed bank lets the GPU run at its own pace while every
    line is still seen only a few times.
    """

    def __init__(self, source: Any, *, frames: int = 3000, lines: int = 300_000) -> None:
        import collections
        import threading

        self.frames: collections.deque[dict[str, Any]] = collections.deque(maxlen=frames)
        self.lines: list[tuple[np.ndarray, str]] = []
        self.max_lines = lines
        self.rendered = 0
        self._next = 0
        self._source = source
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        for example in self._source:
            if self._stop.is_set():
                return
            with self._lock:
                self.frames.append({"pixels": example["pixels"], "targets": example["targets"]})
                for pair in zip(example["crops"], example["texts"], strict=True):
                    if len(self.lines) < self.max_lines:
                        self.lines.append(pair)
                    else:  # overwrite the oldest
                        self.lines[self._next] = pair
                        self._next = (self._next + 1) % self.max_lines
                self.rendered += 1

    def close(self) -> None:
        """Stop taking frames (the renderers stop with their loader)."""
        self._stop.set()
        self._thread.join(timeout=30)

    def wait(self, lines: int) -> None:
        """Block until the bank holds at least ``lines`` lines."""
        import time

        while len(self.lines) < lines:
            if not self._thread.is_alive():
                raise RuntimeError("the render workers stopped")
            time.sleep(0.2)

    def sample(self, rng: random.Random, frames: int, lines: int,
               ) -> tuple[list[dict[str, Any]], list[tuple[np.ndarray, str]]]:
        """Frames and lines drawn at random (with replacement)."""
        with self._lock:
            chosen = [self.frames[rng.randrange(len(self.frames))] for _ in range(frames)]
            pairs = [self.lines[rng.randrange(len(self.lines))] for _ in range(lines)]
        return chosen, pairs
