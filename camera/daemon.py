"""The camera daemon of one station: capture, journal, send; obey trigger, reshoot and ack.

Every frame that becomes an inspection is first written to the station's journal
(:mod:`camera.journal`) and stays there until the recorder acknowledges its stored result;
unacknowledged frames are sent again. When inference falls behind, free-running capture
pauses (counted drops, never failed inspections); a full disk stops capture with a clear state.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from appliance.reader.images import encode_jpeg
from appliance.runtime import Heartbeat, StopFlag, report_ready, sd_notify
from appliance.schema import load_schema
from appliance.settings import Settings, StationSettings
from appliance.transport import (
    AckCommand,
    ControlReceiver,
    FrameMessage,
    ImageInfo,
    ReshootCommand,
    ReshootReason,
    Sender,
    TriggerCommand,
    new_id,
    utc_now,
)
from camera.health import DropReason, StationHealth
from camera.journal import FrameJournal, JournalError
from camera.mqtt_trigger import MqttTriggers
from camera.quality import measure_quality
from camera.responses import response_for
from camera.selection import part_present, select_frame
from camera.sources import (
    Capture,
    FolderSource,
    FrameSource,
    OpenCVSource,
    SourceError,
    SyntheticSource,
)

log = logging.getLogger("camera")
#: how often an idle loop asks the journal for frames to (re-)send; re-delivery waits
#: seconds anyway, and an acknowledgement or a new capture sends at once
PUMP_S = 0.2


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


def journal_path(settings: Settings, station_id: str) -> Path:
    """Where a station's frame journal lives (beside the database, on the same disk)."""
    return settings.data_dir / "journal" / f"{station_id}.db"


class CameraDaemon:
    """One station's capture loop."""

    def __init__(self, settings: Settings, station: StationSettings) -> None:
        self.settings = settings
        self.station = station
        self.frames = Sender(settings.endpoint("frames"), hwm=max(4, station.window))
        self.control = ControlReceiver(settings.endpoint("control", station.id), bind=True)
        self.source: FrameSource | None = None
        self.health = StationHealth(station=station.id, reconnect_max_s=station.reconnect_max_s)
        self.journal = FrameJournal(journal_path(settings, station.id),
                                    max_frames=station.journal_max)
        self._next_pump = 0.0  # the journal is asked for due frames at most every PUMP_S
        line = settings.line
        self.mqtt: MqttTriggers | None = None
        if line.trigger_mqtt_host:
            self.mqtt = MqttTriggers(host=line.trigger_mqtt_host, port=line.trigger_mqtt_port,
                                     topic=line.trigger_mqtt_topic, station=station.id)

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

    def disk_free_mb(self) -> float:
        """Free space where the journal lives, in MB."""
        return shutil.disk_usage(self.journal.path.parent).free / 1e6

    def _keep(self, capture: Capture, *, inspection_id: str, attempt: int,
              reason: ReshootReason | None, triggered: bool) -> bool:
        """Journal a captured frame (it is an inspection from now on) and send what is due."""
        image = capture.image
        frame = FrameMessage(
            frame_id=new_id("F"), inspection_id=inspection_id, station=self.station.id,
            unit_id=capture.unit_id, attempt=attempt, reshoot_reason=reason,
            triggered=triggered, captured_at=utc_now(), monotonic_ns=time.monotonic_ns(),
            image=ImageInfo(encoding="jpeg", width=image.shape[1], height=image.shape[0]),
            quality=measure_quality(image))
        try:
            added = self.journal.add(inspection_id, attempt, frame.model_dump_json(),
                                     encode_jpeg(image))
        except JournalError as exc:
            self.health.drop(DropReason.JOURNAL, str(exc))
            log.error("station %s: frame not captured: %s", self.station.id, exc)
            return False
        if added:
            self.health.captured += 1
        self._pump()
        return added

    def _pump(self) -> None:
        """Send the journal's due frames (first deliveries and overdue ones), window-bounded."""
        for entry in self.journal.due(window=self.station.window):
            frame = FrameMessage.model_validate_json(entry.header)
            if entry.deliveries:
                frame = frame.model_copy(update={"delivery": entry.deliveries + 1})
            if not self.frames.send(frame, entry.payload, timeout_ms=0):
                break  # inference not there or full: the frame waits in the journal
            if entry.deliveries:
                self.health.redelivered += 1
            self.journal.sent(entry, redeliver_after_s=self.station.redeliver_s)
            self.health.frame_sent()

    def shoot(self, *, unit_id: str | None = None, inspection_id: str | None = None,
              attempt: int = 0, reason: ReshootReason | None = None,
              triggered: bool = True) -> bool:
        """Capture one frame and journal it; False when nothing became an inspection."""
        if self.disk_free_mb() < self.settings.storage.min_free_mb:
            self.health.drop(DropReason.DISK_FULL, f"less than {self.settings.storage.min_free_mb}"
                             f" MB free on {self.journal.path.parent}")
            return False
        source = self._ensure_source()
        if source is None:
            self.health.drop(DropReason.NO_SOURCE, self.health.error or "source not open")
            return False
        response = response_for(reason, burst=self.station.burst)
        if reason is not None:
            adjust = getattr(source, "adjust_for", None)
            if adjust is not None and adjust(response):
                log.info("station %s: camera settings adjusted for %s", self.station.id,
                         reason.value)
        try:
            burst = [source.capture(unit_id) for _ in range(response.burst)]
        except SourceError as exc:
            self._lose_source(str(exc))
            self.health.drop(DropReason.NO_SOURCE, str(exc))
            return False
        captures = [c for c in burst if c is not None]
        if not captures:
            return False
        capture = captures[select_frame([c.image for c in captures], response.keep)]
        if self.station.part_present and reason is None and not part_present(capture.image):
            self.health.empty += 1  # nothing in view: no inspection
            return False
        return self._keep(capture, inspection_id=inspection_id or new_id(f"I-{self.station.id}"),
                          attempt=attempt, reason=reason, triggered=triggered)

    def _handle_control(self) -> None:
        for _ in range(100):  # acknowledgements come in bursts; serve them together
            received = self.control.receive(timeout_ms=0)
            if received is None:
                return
            command = received[0]
            station = getattr(command, "station", None)
            if station != self.station.id:
                self.health.drop(DropReason.WRONG_STATION, f"command for {station}")
            elif isinstance(command, AckCommand):
                if self.journal.ack(command.inspection_id, command.attempt):
                    self.health.acknowledged += 1
                    self._next_pump = 0.0  # the window has room again
            elif isinstance(command, ReshootCommand):
                log.info("reshoot %s (attempt %d): %s", command.inspection_id, command.attempt,
                         command.reason.value)
                self.shoot(unit_id=command.unit_id, inspection_id=command.inspection_id,
                           attempt=command.attempt, reason=command.reason)
            elif isinstance(command, TriggerCommand):
                self.shoot(unit_id=command.unit_id)

    def _free_running_shot(self) -> None:
        """One free-running frame; when inference is behind it is grabbed (a stream stays
        fresh, a dead source is noticed) and dropped, counted, never an inspection."""
        if self.journal.pending() < self.station.window:
            self.shoot(triggered=False)
            return
        source = self._ensure_source()
        if source is None:
            return
        try:
            source.capture(None)
        except SourceError as exc:
            self._lose_source(str(exc))
            return
        self.health.drop(DropReason.BUSY, "inference is behind: frame skipped")

    def status(self) -> dict[str, object]:
        """The station's health, journal and counters, as published every second."""
        counts = self.journal.counters()
        return dict(self.health.as_dict(), pending=self.journal.pending(),
                    oldest_pending_s=round(self.journal.oldest_age_s(), 1),
                    captured_total=counts["captured"], acknowledged_total=counts["acknowledged"],
                    disk_free_mb=round(self.disk_free_mb(), 1),
                    rejected_commands=self.control.stats.rejected,
                    rejections=self.control.stats.rejections_by_reason)

    def run(self, stop: StopFlag) -> None:
        """Capture until ``stop`` is set; frames still unacknowledged stay in the journal."""
        run_dir = self.settings.run_dir
        assert run_dir is not None
        name = f"camera-{self.station.id}"
        self._ensure_source()  # a source that fails now is retried with back-off
        heartbeat = Heartbeat(run_dir, name, self.status)
        report_ready(run_dir, name, log, station=self.station.id, source=self.station.source,
                     pending=self.journal.pending())
        period = 1.0 / self.station.rate_hz
        next_shot = time.monotonic()
        while not stop.is_set():
            self._handle_control()
            for unit in self.mqtt.take() if self.mqtt else []:
                self.shoot(unit_id=unit)
            if time.monotonic() >= self._next_pump:  # a capture pumps at once by itself
                self._pump()
                self._next_pump = time.monotonic() + PUMP_S
            now = time.monotonic()
            if self.station.trigger == "free" and now >= next_shot:
                if self._ensure_source() is not None:
                    self._free_running_shot()
                next_shot = now + period
            if heartbeat.due():
                heartbeat.beat()
                sd_notify("WATCHDOG=1")
            stop.wait(0.02)
        heartbeat.beat(state="stopped")
        if self.source:
            self.source.close()
        self.frames.close()
        self.control.close()
        self.journal.close()
        if self.mqtt is not None:
            self.mqtt.close()


def run_camera(settings: Settings, station_id: str, stop: StopFlag) -> None:
    """Entry point of ``nameplate camera --station ID``."""
    CameraDaemon(settings, settings.station(station_id)).run(stop)
