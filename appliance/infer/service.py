"""The resident inference process: load the reader once, read frames in batches, send results."""

from __future__ import annotations

import logging
import time

import numpy as np

from appliance.reader import ImageError, PlateReading, decode_image, load_reader
from appliance.reader.images import raw_to_array
from appliance.runtime import StopFlag, report_ready, sd_notify, write_status
from appliance.schema import load_schema
from appliance.settings import Settings
from appliance.transport import FrameMessage, FrameReceiver, ResultMessage, Sender, utc_now

log = logging.getLogger("infer")


def frame_image(frame: FrameMessage, payload: bytes) -> np.ndarray:
    """Decode a frame's image payload according to its header."""
    info = frame.image
    if info.encoding == "raw":
        return raw_to_array(payload, info.width, info.height, info.channels)
    return decode_image(payload, source=f"frame {frame.frame_id}")


class InferenceService:
    """Receives frames, reads them with one resident reader, sends one result per frame."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.schema = load_schema(settings.schema_file)
        started = time.perf_counter()
        opts = {"max_new_tokens": settings.reader.max_new_tokens}
        if settings.reader.model_dir:
            opts["model_dir"] = settings.reader.model_dir  # type: ignore[assignment]
        self.reader = load_reader(settings.reader.backend, schema=self.schema,
                                  device=settings.reader.device, **opts)
        self.load_s = time.perf_counter() - started
        self.frames = FrameReceiver(settings.endpoint("frames"), bind=True)
        self.results = Sender(settings.endpoint("results"), bind=False, hwm=1000)
        self.processed = 0

    def _status(self, state: str) -> dict[str, object]:
        return {"state": state, "backend": self.reader.name, "device": self.reader.device,
                "processed": self.processed, "received": self.frames.stats.received,
                "rejected": self.frames.stats.rejected,
                "last_rejection": self.frames.stats.last_rejection}

    def run(self, stop: StopFlag) -> None:
        """Serve until ``stop`` is set."""
        run_dir = self.settings.run_dir
        assert run_dir is not None
        report_ready(run_dir, "infer", log, backend=self.reader.name, device=self.reader.device,
                     load_s=round(self.load_s, 3))
        last_status = 0.0
        while not stop.is_set():
            batch = self._collect_batch()
            if batch:
                self._process(batch)
            now = time.monotonic()
            if now - last_status > 1.0:
                write_status(run_dir, "infer", self._status("ready"))
                sd_notify("WATCHDOG=1")
                last_status = now
        write_status(run_dir, "infer", self._status("stopped"))
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
        images, good, results = [], [], {}
        for index, (frame, payload) in enumerate(batch):
            try:
                images.append(frame_image(frame, payload))
                good.append(index)
            except ImageError as exc:
                log.warning("frame %s from %s: %s", frame.frame_id, frame.station, exc)
                results[index] = PlateReading.empty(self.schema, str(exc))
        started = time.perf_counter()
        readings = self.reader.read(images) if images else []
        per_image_ms = (time.perf_counter() - started) * 1000 / max(1, len(images))
        for index, reading in zip(good, readings, strict=True):
            results[index] = reading
        for index, (frame, payload) in enumerate(batch):
            reading = results[index]
            issues = reading.extra.get("quality")
            message = ResultMessage(
                frame=frame, fields=reading.fields, backend=self.reader.name,
                device=self.reader.device, latency_ms=0.0 if index not in good else per_image_ms,
                read_at=utc_now(), error=reading.error,
                quality=[str(r) for r in issues] if isinstance(issues, list) else [])
            self.results.send(message, payload)
            self.processed += 1


def run_inference(settings: Settings, stop: StopFlag) -> None:
    """Entry point of ``nameplate infer``."""
    InferenceService(settings).run(stop)
