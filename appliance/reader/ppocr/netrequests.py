"""The network server's side of its workers: each worker's shared region (pinned for the
GPU's copy engines where it can be), a request received from it, and one loop of passes
queued on the device with the answers it owes (:mod:`appliance.reader.ppocr.netserver`)."""

from __future__ import annotations

import json
import math
import mmap
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import numpy as np
import torch

from appliance.reader.ppocr.netclient import PROTOCOL, REPLY_TYPES, NetworkError


@dataclass
class Client:
    """A worker as the server sees it: its pipe and its shared region (requests at the
    start, replies after ``request_bytes``)."""

    conn: Connection
    path: str | None
    memory: mmap.mmap
    request_bytes: int
    pinned: bool = False     # the region is registered with CUDA: copies are DMA, async

    def pixels(self, shape: list[int]) -> torch.Tensor:
        """The request's uint8 pixels of ``shape``, viewed in the region (not copied)."""
        count = math.prod(shape)
        if count > self.request_bytes:
            raise NetworkError(f"request shape {shape} exceeds the shared region")
        return torch.from_numpy(np.frombuffer(self.memory, np.uint8, count).reshape(shape))

    def reply(self, result: torch.Tensor, *, non_blocking: bool) -> tuple[list[int], str]:
        """Queue the copy of ``result`` into the region; the answer's shape and type."""
        if result.nbytes > len(self.memory) - self.request_bytes:
            raise NetworkError(f"result of shape {list(result.shape)} exceeds the shared "
                               "region")
        name = str(result.dtype).removeprefix("torch.")
        area = np.frombuffer(self.memory, REPLY_TYPES[name], result.numel(),
                             offset=self.request_bytes)
        torch.from_numpy(area).view(result.shape).copy_(result, non_blocking=non_blocking)
        return list(result.shape), name

    def answer(self, shape: list[int], dtype: str) -> None:
        """Tell the worker its result is in the region, of ``shape`` and ``dtype``."""
        self.conn.send_bytes(json.dumps({"v": PROTOCOL, "shape": shape,
                                         "dtype": dtype}).encode())


class Loop:
    """One loop's requests with their answers, and whether the device has done them."""

    def __init__(self, device: str) -> None:
        self.answers: list[tuple[Request, tuple[list[int], str]]] = []
        self.error: str | None = None
        self.device_s = 0.0      # the device's time on this loop's passes
        self._events = None
        if device == "cuda":
            self._events = (torch.cuda.Event(enable_timing=True),
                            torch.cuda.Event(enable_timing=True))
            self._events[0].record()

    def queued(self) -> None:
        """Every pass of the loop is queued: mark its end on the device."""
        if self._events is not None:
            self._events[1].record()

    def done(self, *, wait: bool = False) -> bool:
        """Whether the device has done the loop (``wait``: until it has)."""
        if self._events is None:
            return True
        try:
            if wait:
                self._events[1].synchronize()
            elif not self._events[1].query():
                return False
            self.device_s = self._events[0].elapsed_time(self._events[1]) / 1000
        except RuntimeError as exc:  # a device error: this loop's reads fail
            self.error = f"device error: {exc}"
        return True


@dataclass
class Request:
    """One request received: a detector pass or recogniser lines (row widths) of ``shape``."""

    client: Client
    op: str
    shape: list[int]
    widths: list[int] = field(default_factory=list)


def region_address(memory: mmap.mmap) -> int:
    """Where the region starts in this process's memory."""
    return int(np.frombuffer(memory, np.uint8).ctypes.data)


def pin_region(memory: mmap.mmap) -> bool:
    """Pin a shared region for the GPU's copy engines (False where that is not possible)."""
    if not torch.cuda.is_available():
        return False
    return int(torch.cuda.cudart().cudaHostRegister(region_address(memory), len(memory), 0)) == 0


def unpin_region(memory: mmap.mmap) -> None:
    """Undo :func:`pin_region` (before the region is closed)."""
    torch.cuda.cudart().cudaHostUnregister(region_address(memory))
