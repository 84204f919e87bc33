"""How long a reader takes for one 1280×960 frame (batch 1), on clean demo plates."""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from appliance.reader import load_reader
from appliance.schema import load_schema
from appliance.synth import render_demo_plate
from erp_bridge import load_erp_csv


def bench_read(*, backend: str, device: str, schema_file: Path, erp_file: Path, n: int = 12,
               warmup: int = 2) -> dict[str, Any]:
    """Median and p90 milliseconds per frame over ``n`` demo plates (after ``warmup``)."""
    schema = load_schema(schema_file)
    reader = load_reader(backend, schema=schema, device=device)
    records = load_erp_csv(erp_file, field_names=schema.field_names())
    images = [render_demo_plate(records[i % len(records)].fields, seed=i).image
              for i in range(n + warmup)]
    times = []
    for i, image in enumerate(images):
        started = time.perf_counter()
        reader.read([image])
        if reader.device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"backend": backend, "device": reader.device, "frames": n,
            "threads": torch.get_num_threads(),
            "machine": f"{platform.node()} {platform.processor()} {platform.python_version()}",
            "median_ms": round(statistics.median(times), 1),
            "p90_ms": round(times[int(0.9 * (len(times) - 1))], 1)}
