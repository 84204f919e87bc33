"""The resident inference process: load the reader once, read frames in batches, send results.

Its heartbeat runs in a thread and says whether a batch is being read and for how long, so
health can tell a busy process (fine) from a hung one (a batch far over its time) and from a
frozen or dead one (no heartbeat at all).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

import numpy as np

from appliance.metrics import ServiceMetrics
from appliance.reader import ImageError, PlateReading, Reader, load_reader
from appliance.reader.base import compile_gains, verify_statuses
from appliance.reader.images import decode_payload
from appliance.reader.pool import PoolFrame, ReaderPool
from appliance.runtime import (
    StopFlag,
    loading_heartbeat,
    report_ready,
    sd_notify,
    write_status,
)
from appliance.schema import PlateSchema, load_schema
from appliance.settings import Settings
from appliance.store import Store
from appliance.transport import FrameMessage, FrameReceiver, ResultMessage, Sender, utc_now
from appliance.transport.messages import FieldValue, QualityIssue

log = logging.getLogger("infer")
SEND_TIMEOUT_MS = 2000


def reader_options(settings: Settings) -> dict[str, object]:
    """The reader section as keyword options (every backend ignores what it does not use)."""
    reader = settings.reader
    options: dict[str, object] = {
        "max_new_tokens": reader.max_new_tokens, "timeout_s": reader.timeout_s,
        "cache_size": reader.cache_size, "trust_remote_code": reader.trust_remote_code,
        "static_cache": reader.static_cache,
        "compile_networks": reader.compile_networks and compile_gains(
            reader.device, workers=reader.workers),
        "primary": reader.cascade_primary, "min_confidence": reader.cascade_min_confidence}
    if reader.model_dir:
        options["model_dir"] = reader.model_dir
    return options


def frame_image(frame: FrameMessage, payload: bytes) -> np.ndarray:
    """Decode a frame's image payload according to its header (pixel budget checked)."""
    info = frame.image
    return decode_payload(payload, encoding=info.encoding, width=info.width,
                          height=info.height, channels=info.channels,
                          source=f"frame {frame.frame_id}")


class _Outcome:
    """What became of one frame of a batch: fields (every one not read where None)."""

    def __init__(self, schema: PlateSchema, *, fields: dict[str, FieldValue] | None = None,
                 error: str | None = None, quality: list[QualityIssue] | None = None,
                 verify: dict[str, Any] | None = None, decoded: bool = False) -> None:
        self.fields = fields if fields is not None else PlateReading.empty(schema).fields
        self.error = error
        self.quality = quality or []
        self.verify = verify
        self.decoded = decoded


class InferenceService:
    """Receives frames, reads them with one resident reader, sends one result per frame."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.schema = load_schema(settings.schema_file)
        started = time.perf_counter()
        self.reader: Reader | None = None
        self.pool: ReaderPool | None = None
        if settings.reader.workers > 1:
            self.pool = ReaderPool(backend=settings.reader.backend,
                                   schema_file=settings.schema_file,
                                   device=settings.reader.device,
                                   workers=settings.reader.workers,
                                   options=reader_options(settings))
            self.backend, self.device = self.pool.name, self.pool.device
            can_verify = True  # a worker verifies where its reader can
        else:
            self.reader = load_reader(settings.reader.backend, schema=self.schema,
                                      device=settings.reader.device,
                                      **reader_options(settings))
            self.backend, self.device = self.reader.name, self.reader.device
            can_verify = hasattr(self.reader, "verify")
        self.load_s = time.perf_counter() - started
        self.frames = FrameReceiver(settings.endpoint("frames"), bind=True,
                                    hwm=4 * settings.reader.max_batch)
        self.results = Sender(settings.endpoint("results"), bind=False, hwm=1000)
        self.processed = 0
        self.unsent = 0
        self.verified = 0
        self.verify_known = settings.reader.verify_known and can_verify
        self._records: Store | None = None
        self.busy_since: float | None = None
        self.metrics = ServiceMetrics("infer")
        self._read_seconds = self.metrics.histogram(
            "nameplate_read_seconds", "Reader time per frame (batch time / batch size)")
        self._batch_size = self.metrics.histogram(
            "nameplate_batch_frames", "Frames per batch read")

    def status(self, state: str = "ready") -> dict[str, object]:
        """What the heartbeat publishes."""
        busy = self.busy_since
        return {"state": state, "backend": self.backend, "device": self.device,
                "workers": self.pool.size if self.pool else 1,
                "networks": "in process" if self.pool is None else
                "served to the workers" if self.pool.server is not None else "per worker",
                "processed": self.processed, "unsent": self.unsent, "verified": self.verified,
                "busy_for_s": round(time.monotonic() - busy, 2) if busy is not None else 0.0,
                "received": self.frames.stats.received,
                "rejected": self.frames.stats.rejected,
                "rejections": self.frames.stats.rejections_by_reason,
                "last_rejection": self.frames.stats.last_rejection}

    def _heartbeat(self, stop: threading.Event) -> None:
        run_dir = self.settings.run_dir
        assert run_dir is not None
        while not stop.wait(1.0):
            write_status(run_dir, "infer", self.status())
            self.metrics.write(run_dir)
            sd_notify("WATCHDOG=1")

    def run(self, stop: StopFlag) -> None:
        """Serve until ``stop`` is set (the batch being read is finished and sent first)."""
        run_dir = self.settings.run_dir
        assert run_dir is not None
        report_ready(run_dir, "infer", log, backend=self.backend, device=self.device,
                     workers=self.pool.size if self.pool else 1, load_s=round(self.load_s, 3))
        beating = threading.Event()
        thread = threading.Thread(target=self._heartbeat, args=(beating,), daemon=True)
        thread.start()
        try:
            while not stop.is_set():
                batch = self._collect_batch()
                if batch:
                    self._process(batch)
        finally:
            beating.set()
            thread.join(timeout=2)
            write_status(run_dir, "infer", self.status("stopped"))
            if self.pool is not None:
                self.pool.close()
            self.frames.close()
            self.results.close()

    def _collect_batch(self) -> list[tuple[FrameMessage, bytes]]:
        first = self.frames.receive(timeout_ms=200)
        if first is None:
            return []
        batch = [first]
        while len(batch) < self.settings.reader.max_batch:
            more = self.frames.receive(timeout_ms=0)
            if more is None:
                break
            batch.append(more)
        return [(f, p) for f, p in batch if p is not None]

    def _process(self, batch: list[tuple[FrameMessage, bytes]]) -> None:
        self.busy_since = time.monotonic()
        started = time.perf_counter()
        outcomes = self._read_pooled(batch) if self.pool is not None else self._read_here(batch)
        decoded = sum(o.decoded for o in outcomes)
        per_image_s = (time.perf_counter() - started) / max(1, decoded)
        self.busy_since = None
        if decoded:
            self._batch_size.observe(decoded)
            for _ in range(decoded):
                self._read_seconds.observe(per_image_s)
        for (frame, payload), outcome in zip(batch, outcomes, strict=True):
            message = ResultMessage(
                frame=frame, fields=outcome.fields, backend=self.backend, device=self.device,
                latency_ms=per_image_s * 1000 if outcome.decoded else 0.0,
                read_at=utc_now(), error=outcome.error[:2000] if outcome.error else None,
                quality=outcome.quality, verify=outcome.verify)
            # no recorder: the result is dropped here and the camera, which got no
            # acknowledgement, sends the frame again
            if not self.results.send(message, payload, timeout_ms=SEND_TIMEOUT_MS):
                self.unsent += 1
            self.processed += 1

    def _read_here(self, batch: list[tuple[FrameMessage, bytes]]) -> list[_Outcome]:
        """Decode, read and verify the batch with this process's reader."""
        assert self.reader is not None
        images, good = [], []
        outcomes = [_Outcome(self.schema) for _ in batch]
        for index, (frame, payload) in enumerate(batch):
            try:
                images.append(frame_image(frame, payload))
                good.append(index)
            except ImageError as exc:
                log.warning("frame %s from %s: %s", frame.frame_id, frame.station, exc)
                outcomes[index].error = str(exc)
        try:
            readings = self.reader.read(images) if images else []
        except Exception as exc:
            log.exception("reader failed on a batch of %d", len(images))
            readings = [PlateReading.empty(self.schema, f"reader error: {type(exc).__name__}")
                        for _ in images]
        for index, image, reading in zip(good, images, readings, strict=True):
            issues = reading.extra.get("quality")
            outcomes[index] = _Outcome(self.schema, fields=reading.fields, error=reading.error,
                                       quality=issues if isinstance(issues, list) else [],
                                       verify=self._verify(batch[index][0], image),
                                       decoded=True)
        return outcomes

    def _read_pooled(self, batch: list[tuple[FrameMessage, bytes]]) -> list[_Outcome]:
        """The batch shared among the reader workers (they decode, read and verify)."""
        assert self.pool is not None
        frames = [PoolFrame(payload=payload, encoding=frame.image.encoding,
                            width=frame.image.width, height=frame.image.height,
                            channels=frame.image.channels, source=f"frame {frame.frame_id}",
                            expected=self._expected(frame.unit_id) if self.verify_known
                            else None)
                  for frame, payload in batch]
        outcomes = []
        for (frame, _), result in zip(batch, self.pool.read_frames(frames), strict=True):
            if result.error and not result.fields:
                log.warning("frame %s from %s: %s", frame.frame_id, frame.station,
                            result.error)
            if result.verify is not None:
                self.verified += 1
            outcomes.append(_Outcome(self.schema, fields=result.fields or None,
                                     error=result.error, quality=list(result.quality),
                                     verify=result.verify, decoded=bool(result.fields)))
        return outcomes

    def _expected(self, unit_id: str | None) -> dict[str, str] | None:
        """The unit's expected fields from the recorder's database (read-only), if known."""
        path = self.settings.data_dir / "appliance.db"
        if not unit_id or not path.exists():
            return None
        if self._records is None:
            self._records = Store(path, readonly=True)
        try:
            record = self._records.expected(unit_id)
        except sqlite3.Error as exc:
            log.warning("expected record of %s not read: %s", unit_id, exc)
            return None
        return dict(record["fields"]) if record else None

    def _verify(self, frame: FrameMessage, image: np.ndarray) -> dict[str, Any] | None:
        """Verify outcome per expected field, with ``reader.verify_known`` (else None)."""
        if not self.verify_known:
            return None
        expected = self._expected(frame.unit_id)
        if not expected:
            return None
        try:
            scores = self.reader.verify(image, expected)  # type: ignore[union-attr]
        except Exception:
            log.exception("verify failed for %s", frame.frame_id)
            return None
        self.verified += 1
        return verify_statuses(scores)


def run_inference(settings: Settings, stop: StopFlag) -> None:
    """Entry point of ``nameplate infer``; while the reader loads (minutes where its
    networks compile on a first start) the service says it is loading."""
    with loading_heartbeat(settings.run_dir, "infer"):
        service = InferenceService(settings)
    service.run(stop)
