"""The camera daemon of one station: capture, measure, send; obey trigger and reshoot orders."""

from __future__ import annotations

import logging
import time
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
    Sender,
    TriggerCommand,
    new_id,
    utc_now,
)
from camera.health import StationHealth
from camera.quality import measure_quality
from camera.selection import part_present, select_sharpest
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

    @property
    def sent(self) -> int:
        """Frames sent so far."""
        return self.health.sent

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
        # A free-running frame may be dropped when inference is behind; an ordered one waits.
        ok = self.frames.send(frame, encode_jpeg(image), timeout_ms=5000 if triggered else 0)
        if ok:
            self.health.frame_sent()
        else:
            self.health.dropped += 1
            log.warning("station %s: frame %s not sent (inference busy)", self.station.id,
                        frame.frame_id)
        return ok

    def shoot(self, *, unit_id: str | None = None, inspection_id: str | None = None,
              attempt: int = 0, reason: str | None = None, triggered: bool = True) -> bool:
        """Capture one frame and send it; False when the source gave nothing."""
        source = self._ensure_source()
        if source is None:
            return False
        try:
            burst = [source.capture(unit_id) for _ in range(self.station.burst)]
        except SourceError as exc:
            self._lose_source(str(exc))
            return False
        captures = [c for c in burst if c is not None]
        if not captures:
            return False
        best, _ = select_sharpest([c.image for c in captures])
        capture = captures[best]
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


def run_camera(settings: Settings, station_id: str, stop: StopFlag) -> None:
    """Entry point of ``nameplate camera --station ID``."""
    CameraDaemon(settings, settings.station(station_id)).run(stop)
