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
from camera.quality import measure_quality
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
        self.sent = 0
        self.source_error: str | None = None

    def _ensure_source(self) -> FrameSource | None:
        if self.source is None:
            try:
                self.source = open_source(self.settings, self.station)
                self.source_error = None
            except SourceError as exc:
                if str(exc) != self.source_error:
                    log.error("station %s: %s", self.station.id, exc)
                self.source_error = str(exc)
        return self.source

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
            self.sent += 1
        else:
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
            capture = source.capture(unit_id)
        except SourceError as exc:
            log.error("station %s: %s", self.station.id, exc)
            self.source_error = str(exc)
            source.close()
            self.source = None
            return False
        if capture is None:
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
        self._ensure_source()
        report_ready(run_dir, name, log, station=self.station.id, source=self.station.source)
        period = 1.0 / self.station.rate_hz
        next_shot = time.monotonic()
        last_status = 0.0
        while not stop.is_set():
            self._handle_control()
            now = time.monotonic()
            if self.station.trigger == "free" and now >= next_shot:
                self.shoot(triggered=True)
                next_shot = now + period
            if now - last_status > 1.0:
                last_status = now
                write_status(run_dir, name, {
                    "state": "connected" if self.source else "disconnected",
                    "error": self.source_error, "sent": self.sent,
                    "dropped": self.frames.stats.dropped,
                    "rejected_commands": self.control.stats.rejected})
                sd_notify("WATCHDOG=1")
            stop.wait(0.02)
        if self.source:
            self.source.close()
        self.frames.close()
        self.control.close()


def run_camera(settings: Settings, station_id: str, stop: StopFlag) -> None:
    """Entry point of ``nameplate camera --station ID``."""
    CameraDaemon(settings, settings.station(station_id)).run(stop)
