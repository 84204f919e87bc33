"""Write synthetic datasets (frames + labels.jsonl, optional text-line crops), contact sheets
and the distribution statistics the dataset card reports."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from appliance.geometry import rectify_quad
from appliance.schema import PlateSchema, load_schema
from appliance.synth.engine import render_sample, sample_seed

_SCHEMA: PlateSchema | None = None


def _init(schema_file: str) -> None:
    global _SCHEMA
    _SCHEMA = load_schema(schema_file)


@contextmanager
def render_pool(workers: int, schema_file: Path | str) -> Iterator[Any]:
    """Forked render workers, one OpenCV thread each (many workers share the cores).

    The thread count is set in the parent around the fork and inherited: calling
    ``cv2.setNumThreads`` in a child forked after the parent used OpenCV's threads hangs.
    """
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        pool = mp.get_context("fork").Pool(workers, initializer=_init,
                                           initargs=(str(schema_file),))
    finally:
        cv2.setNumThreads(before)
    with pool:
        yield pool


def _render_sample(job: tuple[int, str, int]) -> tuple[np.ndarray, dict[str, Any]]:
    return _render_shot((*job, 0))  # shot 0: the seed's own frame


def _render_shot(job: tuple[int, str, int, int]) -> tuple[np.ndarray, dict[str, Any]]:
    seed, split, index, shot = job
    assert _SCHEMA is not None
    sample = render_sample(sample_seed(seed, split, index), schema=_SCHEMA, split=split,
                           shot=shot)
    return sample.image, sample.labels


def iter_shots(schema_file: Path, *, seed: int, split: str, indices: Iterable[int], shots: int,
               workers: int) -> Iterator[tuple[int, list[tuple[np.ndarray, dict[str, Any]]]]]:
    """(index, its frames 0..shots-1) of each sample: the same plate photographed again
    (``render_sample(..., shot=k)``), rendered by ``workers`` processes."""
    jobs = [(seed, split, index, k) for index in indices for k in range(shots)]
    with render_pool(workers, schema_file) as pool:
        frames: list[tuple[np.ndarray, dict[str, Any]]] = []
        for job, frame in zip(jobs, pool.imap(_render_shot, jobs, chunksize=2), strict=True):
            frames.append(frame)
            if len(frames) == shots:
                yield job[2], frames
                frames = []


def iter_samples(schema_file: Path, *, seed: int, split: str, n: int,
                 workers: int) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """(image, labels) of samples 0..n-1 of a split, rendered by ``workers`` processes."""
    jobs = [(seed, split, i) for i in range(n)]
    with render_pool(workers, schema_file) as pool:
        yield from pool.imap(_render_sample, jobs, chunksize=2)


def _render_one(job: tuple[int, int, str, str, bool]) -> dict[str, Any]:
    index, seed, split, out, crops = job
    assert _SCHEMA is not None
    sample = render_sample(sample_seed(seed, split, index), schema=_SCHEMA, split=split)
    name = f"{split}-{index:07d}.jpg"
    (Path(out) / "images" / name).write_bytes(sample.jpeg)
    record = {"image": f"images/{name}", "index": index, **sample.labels}
    if crops:
        record["crops"] = write_crops(sample.image, sample.labels, Path(out) / "crops",
                                      f"{split}-{index:07d}")
    return record


def crop_items(labels: dict[str, Any]) -> Iterable[tuple[int, dict[str, Any]]]:
    """The text items worth a crop: inside the frame and not hidden."""
    for i, item in enumerate(labels["items"]):
        if not item["cut"] and item["occluded"] < 0.05 and item["text"].strip():
            yield i, item


def write_crops(image: np.ndarray, labels: dict[str, Any], folder: Path,
                stem: str) -> list[dict[str, Any]]:
    """Rectified text-line crops of a frame, as PNG files, with their texts."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, item in crop_items(labels):
        crop = rectify_quad(image, item["quad"])
        name = f"{stem}-{i:02d}.png"
        cv2.imwrite(str(folder / name), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        out.append({"image": f"crops/{name}", "text": item["text"], "role": item["role"],
                    "field": item["field"]})
    return out


def write_dataset(out: Path, *, n: int, seed: int, schema_file: Path, split: str = "train",
                  workers: int = 1, crops: bool = False) -> dict[str, Any]:
    """Render ``n`` frames into ``out`` (images/, labels.jsonl); returns timing and stats."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    jobs = [(i, seed, split, str(out), crops) for i in range(n)]
    started = time.perf_counter()
    records: list[dict[str, Any]] = []
    if workers <= 1:
        _init(str(schema_file))
        records = [_render_one(job) for job in jobs]
    else:
        with render_pool(workers, schema_file) as pool:
            records = list(pool.imap(_render_one, jobs, chunksize=4))
    elapsed = time.perf_counter() - started
    with (out / "labels.jsonl").open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    summary = {"n": n, "seed": seed, "split": split, "workers": workers,
               "seconds": round(elapsed, 2),
               "images_per_s_per_worker": round(n / elapsed / max(1, workers), 2),
               "stats": statistics(records)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def statistics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Shares of every rendering choice and condition, as the dataset card reports them."""
    n = max(1, len(records))

    def share(values: Iterable[Any]) -> dict[str, float]:
        counts = Counter(str(v) for v in values)
        return {k: round(v / n, 4) for k, v in sorted(counts.items())}

    params = [r["params"] for r in records]
    heights = sorted(p["char_height_px"] for p in params)
    rotations = [abs(p["rotation"]) for p in params]
    shown = [f["shown"] for r in records for f in r["fields"].values()]
    return {
        "style": share(p["style"] for p in params),
        "placement": share(p["placement"] for p in params),
        "columns": share(p["columns"] for p in params),
        "material": share(p["material"] for p in params),
        "plate_cut": round(sum(r["plate"]["cut"] for r in records) / n, 4),
        "occluded": round(sum(p["occlusion"] is not None for p in params) / n, 4),
        "glare": round(sum("glare" in p for p in params) / n, 4),
        "defocus": round(sum("defocus" in p for p in params) / n, 4),
        "motion_blur": round(sum("motion_blur" in p for p in params) / n, 4),
        "low_resolution": round(sum("low_resolution" in p for p in params) / n, 4),
        "rotated_90_or_180": round(sum(r >= 89 for r in rotations) / n, 4),
        "char_height_px": {"p10": heights[int(0.1 * (n - 1))], "median": heights[(n - 1) // 2],
                           "p90": heights[int(0.9 * (n - 1))]} if heights else {},
        "field_shown": round(sum(shown) / max(1, len(shown)), 4),
        "fonts": len({i["font"] for r in records for i in r["items"]}),
    }


def contact_sheet(folder: Path, out: Path, *, count: int = 48, columns: int = 8,
                  tile: tuple[int, int] = (320, 240)) -> Path:
    """Tile the first ``count`` frames of a dataset folder into one PNG."""
    lines = (folder / "labels.jsonl").read_text(encoding="utf-8").splitlines()[:count]
    rows = math.ceil(len(lines) / columns)
    sheet = Image.new("RGB", (columns * tile[0], rows * tile[1]), (255, 255, 255))
    for i, line in enumerate(lines):
        record = json.loads(line)
        image = Image.open(folder / record["image"]).convert("RGB").resize(tile)
        sheet.paste(image, ((i % columns) * tile[0], (i // columns) * tile[1]))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
