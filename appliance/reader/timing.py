"""Per-stage timing for the readers' profile bench (off unless asked for)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def stage(totals: dict[str, float] | None, name: str, device: str) -> Iterator[None]:
    """Add the milliseconds spent in the block to ``totals[name]``; a GPU is synchronised at
    both edges so the time is the stage's own. ``totals`` None times nothing."""
    if totals is None:
        yield
        return
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    started = time.perf_counter()
    yield
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    totals[name] = totals.get(name, 0.0) + (time.perf_counter() - started) * 1e3
