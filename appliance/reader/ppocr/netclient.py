"""The worker's side of the served networks (:mod:`appliance.reader.ppocr.netserver`):
:class:`RemoteNetworks` stands in for the reader's own networks, and what both sides share
(the endpoint, the shared region, the protocol's version and error).

Between a worker and the server: a JSON header over a pipe, the pixels and the results in a
file-backed memory map shared by the two (one per worker; in ``/dev/shm`` where it has room,
the file unlinked once both have mapped it). Nothing is pickled.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import tempfile
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import torch

PROTOCOL = 1
REPLY_TIMEOUT_S = 120.0     # a first pass of a new shape captures a CUDA graph: seconds
#: the types a result travels in, by the name its answer gives
REPLY_TYPES = {"float32": np.float32, "float16": np.float16}


class NetworkError(RuntimeError):
    """A served network call failed; the message says why (the server's own error, a
    stopped server, an input too large for the shared region)."""


@dataclass(frozen=True)
class Endpoint:
    """What a worker needs to reach the server; handed to the worker process at its start."""

    conn: Connection
    path: str                # the shared memory file (unlinked once both sides mapped it)
    request_bytes: int       # the region's first part: the worker's pixels
    reply_bytes: int         # the second part: the server's results
    device: str              # where the networks run


def region_file(size: int) -> str:
    """A new file of ``size`` bytes, in /dev/shm when it has room (memory), else the
    temporary directory; space is reserved now so a full /dev/shm fails here, cleanly."""
    for folder in ("/dev/shm", tempfile.gettempdir()):
        if not os.path.isdir(folder):
            continue
        handle, path = tempfile.mkstemp(prefix="nameplate-net-", dir=folder)
        try:
            os.posix_fallocate(handle, 0, size)
            return path
        except OSError:
            os.unlink(path)
        finally:
            os.close(handle)
    raise NetworkError(f"no room for a {size >> 20} MB shared region in /dev/shm or "
                       f"{tempfile.gettempdir()}")


def map_region(path: str, size: int) -> mmap.mmap:
    """The file at ``path`` mapped, shared, read and write (``size`` bytes)."""
    with open(path, "r+b") as handle:
        return mmap.mmap(handle.fileno(), size)


class RemoteNetworks:
    """The reader's :class:`~appliance.reader.ppocr.networks.Networks`, served by a
    :class:`~appliance.reader.ppocr.netserver.NetworkServer` in another process."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.device = endpoint.device
        self._conn = endpoint.conn
        self._memory = map_region(endpoint.path, endpoint.request_bytes + endpoint.reply_bytes)
        self._request_bytes = endpoint.request_bytes
        self._reply_bytes = endpoint.reply_bytes
        self._conn.send_bytes(json.dumps({"v": PROTOCOL, "op": "mapped"}).encode())

    def _request(self, header: dict[str, Any], data: np.ndarray) -> np.ndarray:
        if data.nbytes > self._request_bytes:
            raise NetworkError(f"{header['op']} input of {data.nbytes} bytes exceeds the "
                               f"shared region ({self._request_bytes})")
        np.frombuffer(self._memory, np.uint8, data.nbytes)[:] = data.reshape(-1).view(np.uint8)
        try:
            self._conn.send_bytes(json.dumps({"v": PROTOCOL, **header,
                                              "shape": list(data.shape)}).encode())
            if not self._conn.poll(REPLY_TIMEOUT_S):
                raise NetworkError(f"network server did not answer within {REPLY_TIMEOUT_S:.0f} s")
            reply = json.loads(self._conn.recv_bytes())
        except (EOFError, OSError) as exc:
            raise NetworkError(f"network server gone: {exc}") from exc
        if "error" in reply:
            raise NetworkError(f"network server: {reply['error']}")
        shape = tuple(int(d) for d in reply["shape"])
        dtype = np.dtype(REPLY_TYPES[reply.get("dtype", "float32")])
        out = np.frombuffer(self._memory, dtype, math.prod(shape), offset=self._request_bytes)
        return out.reshape(shape).astype(np.float32)  # a copy: the region is reused

    def detect(self, pixels: torch.Tensor) -> np.ndarray:
        """See :class:`~appliance.reader.ppocr.networks.Networks` (frames that do not fit
        the shared region together go in parts)."""
        frame_in = math.prod(pixels.shape[1:])
        per_part = min(self._request_bytes // frame_in, self._reply_bytes // (4 * frame_in // 3))
        if per_part < 1:
            raise NetworkError(f"a {pixels.shape[2]}×{pixels.shape[3]} frame exceeds the "
                               "shared region")
        frames = np.ascontiguousarray(pixels.permute(0, 2, 3, 1).numpy())  # B×H×W×3
        parts = [self._request({"op": "detect"}, frames[k: k + per_part])
                 for k in range(0, len(frames), per_part)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def recognise(self, pixels: torch.Tensor, widths: list[int]) -> torch.Tensor:
        """See :class:`~appliance.reader.ppocr.networks.Networks`; padding rows (width 0)
        are not sent and come back as nothing (the reader drops them)."""
        rows = sum(1 for w in widths if w > 0)
        row_in = math.prod(pixels.shape[1:])
        steps = -(-pixels.shape[2] // 8)
        per_part = max(1, min(self._request_bytes // row_in,
                              self._reply_bytes // (4 * steps * 256)))
        parts = [self._request({"op": "recognise", "widths": widths[k: k + per_part]},
                               pixels[k: min(rows, k + per_part)].numpy())
                 for k in range(0, rows, per_part)]
        return torch.from_numpy(parts[0] if len(parts) == 1 else np.concatenate(parts))
