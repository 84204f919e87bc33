"""CUDA graphs for the reader's networks: each input shape is captured once and replayed,
so a forward pass costs one launch instead of hundreds of Python-dispatched kernels.

The reader keeps its shapes few on a GPU (frames of one size; line batches of fixed widths
and power-of-two rows), which is what makes capturing them worth it. Anywhere else (a CPU,
a shape beyond the cache) the module simply runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Forward = Callable[[torch.Tensor], torch.Tensor]


class GraphedForward:
    """``forward(x)`` through captured CUDA graphs, one per (shape, dtype), up to
    ``max_graphs``; results are copies, safe to keep across calls."""

    def __init__(self, forward: Forward, *, enabled: bool, max_graphs: int = 64) -> None:
        self.forward = forward
        self.enabled = enabled and torch.cuda.is_available()
        self.max_graphs = max_graphs
        self.graphs: dict[tuple[Any, ...], tuple[Any, torch.Tensor, torch.Tensor]] = {}
        self.pool = torch.cuda.graph_pool_handle() if self.enabled else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Run ``forward`` on ``x`` (replaying its graph when there is one)."""
        if not self.enabled or not x.is_cuda:
            return self.forward(x)
        key = (tuple(x.shape), x.dtype, x.stride())
        entry = self.graphs.get(key)
        if entry is None:
            if len(self.graphs) >= self.max_graphs:
                return self.forward(x)
            entry = self._capture(x)
            self.graphs[key] = entry
        graph, static_in, static_out = entry
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()

    def _capture(self, x: torch.Tensor) -> tuple[Any, torch.Tensor, torch.Tensor]:
        static_in = x.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up: kernels chosen, workspaces allocated
            for _ in range(2):
                self.forward(static_in)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            static_out = self.forward(static_in)
        return graph, static_in, static_out
