"""Reader worker processes: one batch of frames read by several copies of the reader at once.

A reader spends most of a frame in per-frame Python and OpenCV (box finding, rectifying,
field attachment, quality). ``ReaderPool`` starts ``workers`` processes, each loading the
reader once on the same device, and hands each a share of every batch; frames travel as
their encoded bytes (the workers decode them, in parallel too). On a CPU host this reads
more frames per second (2 cores: +31 %); on one GPU it reads fewer, because processes take
turns on it (``docs/benchmarks.md``), so the appliance's default stays one reader.

Between the inference process and its workers: a JSON header then each frame's bytes
(``Connection.send_bytes``), and a JSON reply validated as ``WorkerReply``; nothing is
pickled. A worker that dies takes only its share of one batch with it: those frames come
back as readings with an error naming the worker, and the worker is started again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing as mp
import os
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from appliance.reader.base import reader_class, resolve_device
from appliance.transport.messages import FieldValue, QualityIssue

log = logging.getLogger("reader.pool")
PROTOCOL = 1
VerifyOutcome = dict[str, str]


class PoolError(RuntimeError):
    """The pool could not start its workers (the first worker's error is in the message)."""


@dataclass(frozen=True)
class PoolFrame:
    """One frame for the pool: its bytes as the camera sent them, and the unit's expected
    values when verify should score them (None: no verify)."""

    payload: bytes
    encoding: str = "jpeg"          # "raw" (then width/height/channels) or any encoded image
    width: int = 0
    height: int = 0
    channels: int = 3
    source: str = "frame"
    expected: dict[str, str] | None = None


class WorkerResult(BaseModel):
    """A worker's reading of one frame."""

    model_config = ConfigDict(extra="forbid")
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    error: str | None = None
    quality: list[QualityIssue] = Field(default_factory=list)
    verify: dict[str, str] | None = None


class WorkerReply(BaseModel):
    """A worker's answer to one job (``results`` in the job's order)."""

    model_config = ConfigDict(extra="forbid")
    version: int = PROTOCOL
    results: list[WorkerResult]
    read_s: float = Field(ge=0)


def _worker_main(conn: Connection, backend: str, schema_file: str, device: str,
                 options: dict[str, Any], threads: int, served: Any = None) -> None:
    """A worker process: load the reader, then read jobs until told to stop. ``served``:
    the endpoint of the pool's network server, in place of the reader's own networks."""
    import cv2
    import torch

    from appliance.reader import ImageError, load_reader
    from appliance.reader.base import verify_statuses
    from appliance.reader.images import decode_payload
    from appliance.schema import load_schema

    # the workers share the machine's cores: each takes its share, not all of them
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    try:
        schema = load_schema(Path(schema_file))
        if served is not None:
            options = {**options, "served": served}
        reader = load_reader(backend, schema=schema, device=device, **options)
    except Exception as exc:  # the parent names it and refuses to start
        conn.send_bytes(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        return
    conn.send_bytes(json.dumps({"ready": True, "name": reader.name,
                                "device": reader.device}).encode())
    while True:
        try:
            header = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if header.get("stop"):
            return
        frames = header["frames"]
        payloads = [conn.recv_bytes() for _ in frames]
        started = time.perf_counter()
        results: list[dict[str, Any]] = [{} for _ in frames]
        images, good = [], []
        for index, (info, payload) in enumerate(zip(frames, payloads, strict=True)):
            try:
                images.append(decode_payload(
                    payload, encoding=info["encoding"], width=info["width"],
                    height=info["height"], channels=info["channels"], source=info["source"]))
                good.append(index)
            except ImageError as exc:
                results[index] = {"error": str(exc)}
        try:
            readings = reader.read(images) if images else []
        except Exception as exc:
            log.error("reader failed on %d frames: %s", len(images), traceback.format_exc())
            for index in good:
                results[index] = {"error": f"reader error: {type(exc).__name__}"}
            good, images, readings = [], [], []
        for index, image, reading in zip(good, images, readings, strict=True):
            quality = reading.extra.get("quality")
            if not isinstance(quality, list):
                quality = []
            result: dict[str, Any] = {
                "fields": {n: f.model_dump(mode="json") for n, f in reading.fields.items()},
                "error": reading.error,
                "quality": [q.model_dump(mode="json") for q in quality
                            if isinstance(q, QualityIssue)]}
            expected = frames[index].get("expected")
            if expected and hasattr(reader, "verify"):
                try:
                    result["verify"] = verify_statuses(reader.verify(image, expected))
                except Exception:
                    log.error("verify failed: %s", traceback.format_exc())
            results[index] = result
        reply = {"version": PROTOCOL, "results": results,
                 "read_s": time.perf_counter() - started}
        conn.send_bytes(json.dumps(reply).encode())


class NetworkService(Protocol):
    """A reader's networks loaded once in the pool's process and served to its workers
    (``ppocr``: :class:`~appliance.reader.ppocr.netserver.NetworkServer`)."""

    #: counters of what was served (requests, passes, seconds busy): what benches report
    stats: dict[str, float]

    def attach(self) -> Any:
        """A new worker's endpoint, handed to the worker's reader as ``served``."""
        ...

    def close(self) -> None:
        """Stop serving."""
        ...


class _Worker:
    def __init__(self, number: int, target: tuple[str, str, str, dict[str, Any], int],
                 server: NetworkService | None = None) -> None:
        context = mp.get_context("spawn")  # CUDA cannot be used in a forked child
        self.number = number
        self.conn, child = context.Pipe()
        served = server.attach() if server is not None else None
        self.process = context.Process(target=_worker_main, args=(child, *target, served),
                                       name=f"reader-{number}", daemon=True)
        self.process.start()
        child.close()
        if served is not None:
            served.conn.close()  # the worker's end: the server sees EOF when it stops

    def ready(self, timeout_s: float) -> dict[str, Any]:
        if not self.conn.poll(timeout_s):
            raise PoolError(f"reader worker {self.number} not ready after {timeout_s:.0f} s")
        try:
            answer: dict[str, Any] = json.loads(self.conn.recv_bytes())
        except (EOFError, OSError) as exc:
            raise PoolError(f"reader worker {self.number} stopped while loading "
                            f"(exit code {self.process.exitcode})") from exc
        if "error" in answer:
            raise PoolError(f"reader worker {self.number} could not load the reader: "
                            f"{answer['error']}")
        return answer

    def send(self, frames: list[PoolFrame]) -> None:
        header = {"version": PROTOCOL, "frames": [
            {"encoding": f.encoding, "width": f.width, "height": f.height,
             "channels": f.channels, "source": f.source, "expected": f.expected}
            for f in frames]}
        self.conn.send_bytes(json.dumps(header).encode())
        for frame in frames:
            self.conn.send_bytes(frame.payload)

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # already gone
            self.conn.send_bytes(json.dumps({"stop": True}).encode())
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


class ReaderPool:
    """``workers`` processes, each with its own copy of one reader; see the module docstring.

    ``read_frames`` blocks until every frame of the batch has a result, in order."""

    def __init__(self, *, backend: str, schema_file: Path, device: str, workers: int,
                 options: dict[str, Any] | None = None, load_timeout_s: float = 600.0,
                 share_networks: bool | None = None) -> None:
        if workers < 1:
            raise ValueError(f"a reader pool needs at least one worker, not {workers}")
        device = resolve_device(device)
        try:
            serve = getattr(reader_class(backend), "serve_networks", None)
        except ValueError:  # an unknown backend: the first worker names it
            serve = None
        if share_networks is None:  # on a GPU, wherever the reader can be served
            share_networks = serve is not None and device == "cuda"
        if share_networks and serve is None:
            raise PoolError(f"reader {backend!r} cannot share its networks among workers")
        #: the networks loaded once in this process and served to the workers (or None:
        #: each worker loads its own reader whole)
        self.server: NetworkService | None = serve(device=device, **(options or {})) \
            if share_networks and serve is not None else None
        threads = max(1, (os.cpu_count() or 1) // workers)
        self._target = (backend, str(schema_file), device, dict(options or {}), threads)
        self._load_timeout_s = load_timeout_s
        self._workers = [_Worker(k, self._target, self.server) for k in range(workers)]
        try:
            answers = [w.ready(load_timeout_s) for w in self._workers]
        except PoolError:
            self.close()
            raise
        self.name = str(answers[0]["name"])
        self.device = str(answers[0]["device"])
        self.restarts = 0

    @property
    def size(self) -> int:
        """Number of worker processes."""
        return len(self._workers)

    def read_frames(self, frames: list[PoolFrame], *, chunk: int | None = None,
                    ) -> list[WorkerResult]:
        """Read every frame; shares of ``chunk`` frames (default: a batch split in two
        shares per worker) go to each idle worker in turn."""
        chunk = chunk or max(1, math.ceil(len(frames) / (2 * len(self._workers))))
        pending = [list(range(k, min(k + chunk, len(frames))))
                   for k in range(0, len(frames), chunk)]
        pending.reverse()
        results: list[WorkerResult | None] = [None] * len(frames)
        busy: dict[int, list[int]] = {}
        while pending or busy:
            for worker in self._workers:
                if pending and worker.number not in busy:
                    indices = pending.pop()
                    try:
                        worker.send([frames[i] for i in indices])
                        busy[worker.number] = indices
                    except (OSError, ValueError):
                        self._lost(worker, indices, results)
            if not busy:
                continue
            ready = wait([self._workers[n].conn for n in busy])
            for worker in [w for w in self._workers if w.number in busy and w.conn in ready]:
                indices = busy.pop(worker.number)
                try:
                    reply = WorkerReply.model_validate_json(worker.conn.recv_bytes())
                except (EOFError, OSError):
                    self._lost(worker, indices, results)
                    continue
                except ValidationError as exc:
                    reason = f"reader worker {worker.number} replied out of protocol: {exc}"
                    for i in indices:
                        results[i] = WorkerResult(error=reason[:2000])
                    continue
                for i, result in zip(indices, reply.results, strict=True):
                    results[i] = result
        return [r if r is not None else WorkerResult(error="not read") for r in results]

    def _lost(self, worker: _Worker, indices: list[int],
              results: list[WorkerResult | None]) -> None:
        worker.process.join(timeout=5)
        reason = (f"reader worker {worker.number} stopped (exit code "
                  f"{worker.process.exitcode}) while reading this frame")
        log.error("%s; starting it again", reason)
        for i in indices:
            results[i] = WorkerResult(error=reason)
        worker.stop()
        fresh = _Worker(worker.number, self._target, self.server)
        fresh.ready(self._load_timeout_s)
        self._workers[worker.number] = fresh
        self.restarts += 1

    def close(self) -> None:
        """Stop every worker (each finishes the job it holds)."""
        for worker in self._workers:
            worker.stop()
        if self.server is not None:
            self.server.close()
