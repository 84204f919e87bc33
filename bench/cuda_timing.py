"""Milliseconds of a GPU step for the bench scripts beside this one (``import cuda_timing``),
measured with the readers' own synchronised stage timer (``appliance.reader.timing``)."""

from __future__ import annotations

from collections.abc import Callable

from appliance.reader.timing import stage


def cuda_times(step: Callable[[], object], repeats: int, *, device: str = "cuda",
               ) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of ``step`` after one warm-up call, the
    device (a GPU) synchronised at both edges of each."""
    step()
    times = []
    for _ in range(repeats):
        totals: dict[str, float] = {}
        with stage(totals, "step", device):
            step()
        times.append(totals["step"])
    return times
