"""The camera daemon of one station: capture, measure, send; obey trigger and reshoot orders."""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path

from appliance.reader.images import encode_jpeg
from appliance.runtime import StopFlag, report_ready, sd_notify, write_status
from appliance.schema import load_schema
from appliance.settings import Settings, StationSettings
from appliance.transport import (
    ControlReceiver,
    FrameMessage,
    ImageInfo,
    ReshootCommand,
    ResultMessage,
    Sender,
    TriggerCommand,
    new_id,
    utc_now,
)
from camera.health import StationHealth
from camera.quality import measure_quality
from camera.selection import part_present, select_for_reason
from camera.sources import (
    Capture,
    FolderSource,
    FrameSource,
    OpenCVSource,
    SourceError,
    SyntheticSource,
)

log = logging.getLogger("camera")


def open_source(settings: Settings, station: StationSettings) -> FrameSource:
    """Open the source a station is configured with; :class:`SourceError` says why not."""
    if station.source == "synthetic":
        return SyntheticSource(erp_file=settings.erp_file, schema=load_schema(settings.schema_file),
                          seed=station.seed, fault_every=station.fault_every)
    if station.source == "folder":
        folder = Path(station.uri)
        if not folder.is_absolute() and settings.config_file:
            folder = settings.config_file.parent / folder
        return FolderSource(folder, loop=station.loop)
    return OpenCVSource(station.uri)


class CameraDaemon:
    """One station's capture loop."""

    def __init__(self, settings: Settings, station: StationSettings) -> None:
        self.settings = settings
        self.station = station
        self.frames = Sender(settings.endpoint("frames"), hwm=20)
        self.control = ControlReceiver(settings.endpoint("control", station.id), bind=True)
        self.source: FrameSource | None = None
        self.health = StationHealth(station=station.id, reconnect_max_s=station.reconnect_max_s)
        # Triggered frames are never dropped silently: they wait here (bounded) for inference,
        # and past their deadline the inspection is recorded as failed, with the reason.
        self.pending: deque[tuple[float, FrameMessage, bytes]] = deque()
        self.results = Sender(settings.endpoint("results"), hwm=100)

    def _ensure_source(self) -> FrameSource | None:
        """Open the source when it is closed and the back-off allows another try."""
        if self.source is not None or not self.health.may_retry():
            return self.source
        try:
            self.source = open_source(self.settings, self.station)
        except SourceError as exc:
            if self.health.failed(str(exc)):
                log.error("station %s: %s (retrying, back-off up to %.0f s)", self.station.id,
                          exc, self.station.reconnect_max_s)
            return None
        if self.health.connected():
            log.info("station %s: source connected again", self.station.id)
        return self.source

    def _lose_source(self, error: str) -> None:
        log.error("station %s: %s", self.station.id, error)
        if self.source is not None:
            self.source.close()
        self.source = None
        self.health.failed(error)

    def _send(self, capture: Capture, *, inspection_id: str, attempt: int,
              reason: str | None, triggered: bool) -> bool:
        image = capture.image
        frame = FrameMessage(
            frame_id=new_id("F"), inspection_id=inspection_id, station=self.station.id,
            unit_id=capture.unit_id, attempt=attempt, reshoot_reason=reason,
            triggered=triggered, captured_at=utc_now(), monotonic_ns=time.monotonic_ns(),
            image=ImageInfo(encoding="jpeg", width=image.shape[1], height=image.shape[0]),
            quality=measure_quality(image))
        payload = encode_jpeg(image)
        if not triggered:  # a free-running frame may be dropped when inference is behind
            if self.frames.send(frame, payload, timeout_ms=0):
                self.health.frame_sent()
                return True
            self.health.dropped += 1
            return False
        if len(self.pending) >= self.station.queue:
            self._fail(self.pending.popleft(), "camera queue full: inference is not keeping up")
        self.pending.append((time.monotonic() + self.station.deliver_timeout_s, frame, payload))
        self._flush()
        return True

    def _flush(self) -> None:
        """Send queued triggered frames in order; fail the ones past their deadline."""
        while self.pending:
            deadline, frame, payload = self.pending[0]
            if self.frames.send(frame, payload, timeout_ms=0):
                self.pending.popleft()
                self.health.frame_sent()
            elif time.monotonic() > deadline:
                self._fail(self.pending.popleft(), "frame not delivered to inference within "
                           f"{self.station.deliver_timeout_s:g} s (inference busy or down)")
            else:
                break

    def _fail(self, entry: tuple[float, FrameMessage, bytes], reason: str) -> None:
        _, frame, payload = entry
        self.health.dropped += 1
        log.error("station %s: inspection %s failed: %s", self.station.id,
                  frame.inspection_id, reason)
        failed = ResultMessage(frame=frame, fields={}, backend="camera", device="none",
                               latency_ms=0.0, read_at=utc_now(), error=reason)
        if not self.results.send(failed, payload, timeout_ms=2000):
            log.error("station %s: recorder unreachable; inspection %s lost: %s",
                      self.station.id, frame.inspection_id, reason)

    def shoot(self, *, unit_id: str | None = None, inspection_id: str | None = None,
              attempt: int = 0, reason: str | None = None, triggered: bool = True) -> bool:
        """Capture one frame and send it; False when the source gave nothing."""
        source = self._ensure_source()
        if source is None:
            return False
        frames = self.station.burst
        if reason:  # a reshoot: adapt the camera where it can, and take several frames
            adjust = getattr(source, "adjust_for", None)
            if adjust is not None and adjust(reason):
                log.info("station %s: camera settings adjusted for %r", self.station.id, reason)
            frames = max(frames, 3)
        try:
            burst = [source.capture(unit_id) for _ in range(frames)]
        except SourceError as exc:
            self._lose_source(str(exc))
            return False
        captures = [c for c in burst if c is not None]
        if not captures:
            return False
        capture = captures[select_for_reason([c.image for c in captures], reason)]
        if self.station.part_present and reason is None and not part_present(capture.image):
            self.health.empty += 1  # nothing in view: no inspection
            return False
        return self._send(capture, inspection_id=inspection_id or new_id(f"I-{self.station.id}"),
                          attempt=attempt, reason=reason, triggered=triggered)

    def _handle_control(self) -> None:
        received = self.control.receive(timeout_ms=0)
        if received is None:
            return
        command = received[0]
        if isinstance(command, ReshootCommand) and command.station == self.station.id:
            log.info("reshoot %s (attempt %d): %s", command.inspection_id, command.attempt,
                     command.reason)
            self.shoot(unit_id=command.unit_id, inspection_id=command.inspection_id,
                       attempt=command.attempt, reason=command.reason)
        elif isinstance(command, TriggerCommand) and command.station == self.station.id:
            self.shoot(unit_id=command.unit_id)

    def run(self, stop: StopFlag) -> None:
        """Capture until ``stop`` is set."""
        run_dir = self.settings.run_dir
        assert run_dir is not None
        name = f"camera-{self.station.id}"
        self._ensure_source()  # a source that fails now is retried with back-off
        report_ready(run_dir, name, log, station=self.station.id, source=self.station.source)
        period = 1.0 / self.station.rate_hz
        next_shot = time.monotonic()
        last_status = 0.0
        while not stop.is_set():
            self._handle_control()
            self._flush()
            now = time.monotonic()
            if self.station.trigger == "free" and now >= next_shot and self.source is not None:
                self.shoot(triggered=True)
                next_shot = now + period
            if now - last_status > 1.0:
                last_status = now
                if self.source is None:
                    self._ensure_source()
                write_status(run_dir, name, dict(self.health.as_dict(),
                                                 rejected_commands=self.control.stats.rejected))
                sd_notify("WATCHDOG=1")
            stop.wait(0.02)
        if self.source:
            self.source.close()
        self.frames.close()
        self.control.close()
        self.results.close()


def run_camera(settings: Settings, station_id: str, stop: StopFlag) -> None:
    """Entry point of ``nameplate camera --station ID``."""
    CameraDaemon(settings, settings.station(station_id)).run(stop)
