"""The reader's networks served from one process to many reader workers.

A frame costs an H100 about 4 ms of network time but the reader about 20 ms of CPU work
(decoding, box finding, rectifying, field attachment, quality). One process cannot feed a
GPU that way; processes that each load the networks take turns on it. So the inference
process owns the GPU and runs :class:`NetworkServer` in a thread, and each reader worker
(``appliance.reader.pool``) reads with ``RemoteNetworks`` in place of its own networks:
the CPU work runs in parallel, the networks stay loaded once (H100, 16 cores, 32 workers:
213 frames/s against 38 for one process, 230 with the networks compiled; docs/benchmarks.md).

Requests that arrive together are served together: detector inputs of one size in one
batch, recogniser lines of one padded width in one batch, so a busy GPU batches across
workers and stations by itself.

The worker's side and the protocol: :mod:`appliance.reader.ppocr.netclient`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing as mp
import os
import threading
import time
from collections import deque
from multiprocessing.connection import wait

import torch

from appliance.reader.ppocr.detect import usual_frame_input
from appliance.reader.ppocr.netclient import (
    PROTOCOL,
    Endpoint,
    map_region,
    region_file,
)
from appliance.reader.ppocr.netrequests import Client, Loop, Request, pin_region, unpin_region
from appliance.reader.ppocr.networks import LocalNetworks
from appliance.reader.ppocr.recognise import HEIGHT, MAX_WIDTH, STRIDE

log = logging.getLogger("reader.netserver")
MIN_REGION = 8 << 20        # bytes each way per worker, at least
DETECT_BATCH = 8            # frames in one detector pass at most
RECOGNISE_PIXELS = HEIGHT * 1024 * 128   # line pixels in one recogniser pass at most
#: rows of a recogniser pass are padded up to one of these (at most half again as many
#: rows): few shapes, each captured once as a CUDA graph
RECOGNISE_ROWS = (4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
#: widths lines are padded to here: coarser than a reader's own steps (FIXED_WIDTHS), since
#: a pass costs about a millisecond before its arithmetic (hundreds of small kernels)
SERVED_WIDTHS = (160, 384, 768, MAX_WIDTH)
MAX_GRAPHS = 96
POLL_S = 0.0005             # how often a server with work on the device looks at it
MAX_INFLIGHT = 2            # loops queued on the device at once


def _recognise_rows(n: int) -> int:
    """Rows a recogniser pass of ``n`` lines is run with (a detector pass is run as it is:
    its cost is in proportion to its frames, and a frame size has DETECT_BATCH shapes)."""
    return next((r for r in RECOGNISE_ROWS if r >= n), n)


class NetworkServer:
    """Serves ``networks`` to reader workers from a thread of this process; see the module
    docstring. ``attach`` makes one worker's endpoint; ``close`` stops serving."""

    def __init__(self, networks: LocalNetworks, *, max_side: int = 1280) -> None:
        self.networks = networks
        self._classes = len(networks.charset.allowed)
        for net in (networks.detect_net, networks.recognise_net):
            net.max_graphs = MAX_GRAPHS
        self.request_bytes = max(MIN_REGION, max_side * max_side * 3)
        self.reply_bytes = max(MIN_REGION, max_side * max_side * 4)
        self._clients: list[Client] = []
        self._lock = threading.Lock()
        self._wake_read, self._wake_write = mp.Pipe(duplex=False)
        self._stopping = False
        #: requests served, passes run and seconds busy (what the bench reports)
        self.stats: dict[str, float] = {"detect_requests": 0, "detect_passes": 0,
                                        "recognise_requests": 0, "recognise_passes": 0,
                                        "loops": 0, "busy_s": 0.0, "queue_s": 0.0,
                                        "device_s": 0.0, "answer_s": 0.0,
                                        "pinned_regions": 0}
        if networks.device == "cuda":
            self._capture_lines()
            self._capture_frames(max_side)
        self._thread = threading.Thread(target=self._serve, name="network-server",
                                        daemon=True)
        self._thread.start()

    @torch.inference_mode()
    def _capture_lines(self) -> None:
        """Capture every recogniser shape the server uses now, not in the middle of a busy
        line (a capture takes a fraction of a second; measured: a pool whose shapes came
        during its timed rounds read half as many frames per second)."""
        for width in SERVED_WIDTHS:
            fit = RECOGNISE_PIXELS // (HEIGHT * width)
            for rows in (r for r in RECOGNISE_ROWS if r <= max(RECOGNISE_ROWS[0], fit)):
                self.networks.recognise(torch.zeros((rows, HEIGHT, width, 3), dtype=torch.uint8,
                                                    device="cuda"), [width] * rows)
        torch.cuda.synchronize()

    @torch.inference_mode()
    def _capture_frames(self, side: int) -> None:
        """Capture (and compile) the detector now for every batch of a camera's usual 4:3
        landscape frame at the longest side ``side``; other sizes are captured when they
        first come."""
        height, width = usual_frame_input(side)
        for batch in range(1, DETECT_BATCH + 1):
            self.networks.detect_on_device(torch.zeros((batch, 3, height, width),
                                                       dtype=torch.uint8, device="cuda"))
        torch.cuda.synchronize()

    def attach(self) -> Endpoint:
        """A new worker's endpoint (its pipe's far end and its shared region)."""
        size = self.request_bytes + self.reply_bytes
        path = region_file(size)
        mine, theirs = mp.Pipe()
        memory = map_region(path, size)
        client = Client(mine, path, memory, self.request_bytes,
                         pinned=self.networks.device == "cuda" and pin_region(memory))
        self.stats["pinned_regions"] += client.pinned
        with self._lock:
            self._clients.append(client)
        self._wake_write.send_bytes(b"attached")
        return Endpoint(theirs, path, self.request_bytes, self.reply_bytes,
                        self.networks.device)

    def close(self) -> None:
        """Stop serving (a pass under way finishes) and drop every client's region."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_write.send_bytes(b"stop")
        self._thread.join(timeout=10)
        with self._lock:
            for client in self._clients:
                self._drop(client)
            self._clients.clear()

    def _drop(self, client: Client) -> None:
        client.conn.close()
        if client.pinned:
            torch.cuda.synchronize()  # no copy into its region may still be under way
            unpin_region(client.memory)
            client.pinned = False
        with contextlib.suppress(BufferError):
            client.memory.close()
        if client.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(client.path)
            client.path = None

    def _serve(self) -> None:
        """Receive what has arrived, queue its passes on the device, answer each loop's
        requests once the device has done them. Up to MAX_INFLIGHT loops are queued at once,
        so the device does not wait while the server answers and receives; what arrives
        meanwhile joins the next loop (one loop per arrival made passes too small: 1.9
        frames a detector pass against 4, 174 frames/s against 213; docs/benchmarks.md)."""
        inflight: deque[Loop] = deque()
        requests: list[Request] = []   # received, not yet queued
        with torch.inference_mode():
            while not self._stopping:
                with self._lock:
                    clients = list(self._clients)
                ready = wait([self._wake_read] + [c.conn for c in clients],
                             timeout=POLL_S if inflight else 1.0)
                started = time.perf_counter()
                for client in clients:
                    if client.conn in ready:
                        request = self._receive(client)
                        if request is not None:
                            requests.append(request)
                if self._wake_read in ready:
                    with contextlib.suppress(EOFError, OSError):
                        self._wake_read.recv_bytes()
                while inflight and inflight[0].done():
                    self._answer(inflight.popleft())
                # one loop queued behind the one running keeps the device busy; the rest
                # waits and joins the next loop, so passes stay large
                if requests and len(inflight) < MAX_INFLIGHT:
                    inflight.append(self._launch(requests))
                    requests = []
                self.stats["busy_s"] += time.perf_counter() - started
            for loop in inflight:  # stopping: the device finishes what it was given
                loop.done(wait=True)
                self._answer(loop)
            for request in requests:
                self._refuse(request.client, "network server stopping")

    def _receive(self, client: Client) -> Request | None:
        """The client's next request (None: a hello, or the client is gone and dropped)."""
        try:
            header = json.loads(client.conn.recv_bytes())
        except (EOFError, OSError):  # the worker stopped: its region goes with it
            with self._lock:
                self._clients.remove(client)
            self._drop(client)
            return None
        except ValueError as exc:
            self._refuse(client, f"malformed header: {exc}")
            return None
        op = header.get("op") if isinstance(header, dict) else None
        if op == "mapped":  # both sides hold the mapping: the file can go
            if client.path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(client.path)
                client.path = None
            return None
        try:
            if header.get("v") != PROTOCOL or op not in ("detect", "recognise"):
                raise ValueError("unknown operation or protocol version")
            return Request(client, str(op), [int(d) for d in header["shape"]],
                            [int(w) for w in header.get("widths", [])])
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            self._refuse(client, f"bad request {str(header)[:200]}: {exc}")
            return None

    def _refuse(self, client: Client, reason: str) -> None:
        log.warning("network request refused: %s", reason)
        with contextlib.suppress(OSError):
            client.conn.send_bytes(json.dumps({"v": PROTOCOL, "error": reason}).encode())

    def _launch(self, requests: list[Request]) -> Loop:
        """Queue the passes of what arrived together: detector inputs of one size in shared
        passes, every line in passes of its own width; each result copied into its region."""
        groups: dict[tuple[int, ...], list[Request]] = {}
        for request in requests:
            key = tuple(request.shape[1:]) if request.op == "detect" else ()
            groups.setdefault(key, []).append(request)
        loop = Loop(self.networks.device)
        started = time.perf_counter()
        for key, members in groups.items():
            op = members[0].op
            try:
                loop.answers += self._detect(members) if key else self._recognise(members)
            except Exception as exc:  # these workers' reads fail; the server goes on
                log.exception("network pass failed")
                for request in members:
                    self._refuse(request.client, f"{op} failed: {type(exc).__name__}: {exc}")
        loop.queued()
        self.stats["loops"] += 1
        self.stats["queue_s"] += time.perf_counter() - started
        return loop

    def _answer(self, loop: Loop) -> None:
        """Tell each request of a finished loop where its result is (or why there is none)."""
        started = time.perf_counter()
        if loop.error is not None:
            for request, _ in loop.answers:
                self._refuse(request.client, loop.error)
        else:
            for request, (shape, dtype) in loop.answers:
                with contextlib.suppress(OSError):  # a worker that stopped meanwhile
                    request.client.answer(shape, dtype)
        self.stats["device_s"] += loop.device_s
        self.stats["answer_s"] += time.perf_counter() - started

    def _inputs(self, requests: list[Request]) -> tuple[list[torch.Tensor], bool]:
        """Each request's pixels on the device (asynchronous copies from pinned regions)."""
        pinned = all(r.client.pinned for r in requests)
        return [r.client.pixels(r.shape).to(self.networks.device, non_blocking=pinned)
                for r in requests], pinned

    def _detect(self, requests: list[Request]) -> list[tuple[Request, tuple[list[int], str]]]:
        """Frames of one size in passes of up to DETECT_BATCH."""
        inputs, pinned = self._inputs(requests)
        pixels = torch.cat(inputs)
        outs = []
        for start in range(0, len(pixels), DETECT_BATCH):
            part = pixels[start: start + DETECT_BATCH]
            # the map as the network made it (float16 on a GPU): half the bytes to copy
            outs.append(self.networks.detect_on_device(part.permute(0, 3, 1, 2)))
            self.stats["detect_passes"] += 1
        self.stats["detect_requests"] += len(requests)
        result, start, answers = torch.cat(outs), 0, []
        for request in requests:
            rows = result[start: start + request.shape[0]]
            answers.append((request, request.client.reply(rows, non_blocking=pinned)))
            start += request.shape[0]
        return answers

    def _recognise(self, requests: list[Request]) -> list[tuple[Request, tuple[list[int], str]]]:
        """Every line of every request recognised at its own width's step of SERVED_WIDTHS
        (never padded to a wider neighbour's), lines of one step from all requests in
        shared passes; each request's result is T×K per line at the request's own padded
        width (zeros past the line's step: the reader reads a line up to its own width)."""
        inputs, pinned = self._inputs(requests)
        device = self.networks.device
        # runs of neighbouring rows of one padded width (a reader sends its lines sorted by
        # width, so a width is one run): sliced, never indexed (an index copied to the
        # device would wait for the passes queued before it)
        by_width: dict[int, list[tuple[int, int, int]]] = {}   # width → (request, first, end)
        for i, request in enumerate(requests):
            row_widths = request.widths[: request.shape[0]]
            first = 0
            for row in range(1, len(row_widths) + 1):
                here = self._served_width(row_widths[first], request.shape[2])
                if row == len(row_widths) or \
                        self._served_width(row_widths[row], request.shape[2]) != here:
                    by_width.setdefault(here, []).append((i, first, row))
                    first = row
        results = [torch.zeros((r.shape[0], -(-r.shape[2] // STRIDE), self._classes),
                               device=device) for r in requests]
        for width, runs in by_width.items():
            pixels = torch.cat([inputs[i][a:b, :, :width] for i, a, b in runs])
            out = self._recognise_passes(pixels, [w for i, a, b in runs
                                                  for w in requests[i].widths[a:b]])
            start = 0
            for i, a, b in runs:
                results[i][a:b, : out.shape[1]] = out[start: start + b - a]
                start += b - a
        self.stats["recognise_requests"] += len(requests)
        answers = []
        for request, result in zip(requests, results, strict=True):
            answers.append((request, request.client.reply(result, non_blocking=pinned)))
        return answers

    @staticmethod
    def _served_width(width: int, request_width: int) -> int:
        """The padded width a line is recognised at: its step of SERVED_WIDTHS (never more
        than its request's own width)."""
        step = next((w for w in SERVED_WIDTHS if w >= width), SERVED_WIDTHS[-1])
        return min(step, request_width)

    def _recognise_passes(self, pixels: torch.Tensor, widths: list[int]) -> torch.Tensor:
        """Lines of one padded width through the recogniser, rows padded to one of
        RECOGNISE_ROWS, as many passes as the pixel budget needs."""
        fit = RECOGNISE_PIXELS // (HEIGHT * pixels.shape[2])
        per_pass = max([RECOGNISE_ROWS[0], *(r for r in RECOGNISE_ROWS if r <= fit)])
        outs = []
        for start in range(0, len(pixels), per_pass):
            part = pixels[start: start + per_pass]
            padding = _recognise_rows(len(part)) - len(part)
            if padding:
                part = torch.cat([part, part.new_zeros((padding, *part.shape[1:]))])
            out = self.networks.recognise(
                part, widths[start: start + per_pass] + [0] * padding)
            outs.append(out[: len(part) - padding])
            self.stats["recognise_passes"] += 1
        return torch.cat(outs)
