"""The recorder: check each result against the ERP record, store it, acknowledge, reshoot.

It is the database's only writer. A result's image and rows are written under one guard; if
the database or the disk cannot take them, the result goes to the spool (replayed as soon as
possible). Only a result kept on disk is acknowledged to its camera, which forgets the frame
then; an unacknowledged frame is sent again and stored once (attempts are de-duplicated).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from appliance.metrics import ServiceMetrics
from appliance.outbox import OutboxWorker, build_sinks, result_event
from appliance.reader.images import ImageError, encode_jpeg, raw_to_array
from appliance.record.erp import ErpSync
from appliance.record.spool import Spool
from appliance.runtime import Heartbeat, StopFlag, report_ready, sd_notify, write_atomic
from appliance.schema import load_schema
from appliance.settings import Settings
from appliance.signals import build_signals
from appliance.store import Store
from appliance.transport import AckCommand, ReshootCommand, ResultMessage, ResultReceiver, Sender
from rules import Decision, FieldCheck, FieldStatus, RulesHolder, Verdict, evaluate

log = logging.getLogger("record")
STORE_ERRORS = (OSError, sqlite3.Error)
KNOWN_STATUSES = frozenset(status.value for status in FieldStatus)


class Recorder:
    """Receives results, decides verdicts, stores everything, acknowledges, orders reshoots."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.schema = load_schema(settings.schema_file)
        self.family = self.schema.name
        self.rules = RulesHolder(settings.rules_file,
                                 known_fields={self.schema.name: self.schema.field_names()})
        self.store = Store(settings.data_dir / "appliance.db")
        self.images_dir = settings.data_dir / "images"
        self.spool = Spool(settings.data_dir / "spool")
        for station in settings.stations:
            self.store.upsert_station(station.id, name=station.name or station.id,
                                      source=station.source)
        self.erp_sync = ErpSync(settings, self.store, self.schema.field_names())
        self.sync_erp()
        self.results = ResultReceiver(settings.endpoint("results"), bind=True, hwm=1000)
        self.control: dict[str, Sender] = {}
        self.counts = {"recorded": 0, "duplicates": 0, "spooled": 0, "replayed": 0,
                       "unsaved": 0, "escalated": 0}
        self.outbox_sinks = [sink.name for sink in settings.outbox.sinks]
        self.outbox: OutboxWorker | None = None
        if settings.outbox.sinks:
            self.outbox = OutboxWorker(self.store.path, build_sinks(settings.outbox.sinks),
                                       base_delay_s=settings.outbox.base_delay_s,
                                       max_delay_s=settings.outbox.max_delay_s)
        self.signals = build_signals(settings.line)
        self.metrics = ServiceMetrics("record")
        self._verdicts = self.metrics.counter(
            "nameplate_verdicts", "Inspection attempts stored, by station and verdict",
            ["station", "verdict"])
        self._latency = self.metrics.histogram(
            "nameplate_capture_to_store_seconds",
            "Time from capture to the stored result, by station", ["station"])
        self._events = self.metrics.counter(
            "nameplate_record_events", "Recorder events: duplicates, spooled, replayed, unsaved",
            ["event"])

    @property
    def recorded(self) -> int:
        """Results stored (or spooled) since start."""
        return self.counts["recorded"]

    # -- ERP --------------------------------------------------------------------------------
    @property
    def erp(self) -> dict[str, Any]:
        """The last ERP sync's outcome (state, rows, error)."""
        return self.erp_sync.state

    def sync_erp(self) -> None:
        """Sync the expected records when the source changed or is due; a broken or shrunken
        export changes nothing (and is reported in health)."""
        if self.erp_sync.due():
            self.erp_sync.run()

    # -- main loop --------------------------------------------------------------------------
    def status(self) -> dict[str, object]:
        """What the heartbeat publishes."""
        outbox = ({"delivered": self.outbox.delivered, "failed": self.outbox.failed}
                  if self.outbox else None)
        signals = self.signals.status() if self.signals else None
        return dict(self.counts, spool=self.spool.count(), erp=dict(self.erp), outbox=outbox,
                    signals=signals,
                    received=self.results.stats.received, rejected=self.results.stats.rejected,
                    rejections=self.results.stats.rejections_by_reason,
                    last_rejection=self.results.stats.last_rejection)

    def run(self, stop: StopFlag) -> None:
        """Serve until ``stop`` is set; results already received are stored before it exits."""
        run_dir = self.settings.run_dir
        assert run_dir is not None
        heartbeat = Heartbeat(run_dir, "record", self.status)
        if self.outbox is not None:
            self.outbox.start()
        report_ready(run_dir, "record", log, database=str(self.store.path))
        self.replay_spool()
        last_check = 0.0
        while not stop.is_set():
            received = self.results.receive(timeout_ms=200)
            if received is not None:
                result, payload = received
                self.handle(result, payload or b"")
            if heartbeat.due():
                heartbeat.beat()
                self.metrics.write(run_dir)
                sd_notify("WATCHDOG=1")
            now = time.monotonic()
            if now - last_check > 2.0:
                last_check = now
                self._housekeeping()
        self._drain(seconds=2.0)
        if self.outbox is not None:
            self.outbox.stop()
        if self.signals is not None:
            self.signals.close()
        heartbeat.beat(state="stopped")
        self.results.close()
        for sender in self.control.values():
            sender.close()

    def _drain(self, *, seconds: float) -> None:
        """On stop: store results already waiting (inference stopped before us)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            received = self.results.receive(timeout_ms=100)
            if received is None:
                return
            self.handle(received[0], received[1] or b"")

    def _housekeeping(self) -> None:
        self.sync_erp()
        if self.rules.reload_if_changed():
            log.info("rules reloaded from %s", self.rules.path)
        elif self.rules.last_error:
            log.error("rules reload failed, previous rules stay: %s", self.rules.last_error)
        self.replay_spool()
        try:
            escalated = self.store.escalate_stale_reshoots(
                older_than_s=self.settings.health.reshoot_timeout_s)
        except sqlite3.Error as exc:
            log.warning("reshoot escalation skipped: %s", exc)
            return
        for inspection_id in escalated:
            self.counts["escalated"] += 1
            log.warning("%s: reshoot not served in time, escalated to REVIEW", inspection_id)

    # -- one result -------------------------------------------------------------------------
    def handle(self, result: ResultMessage, payload: bytes) -> Decision | None:
        """Decide, store, acknowledge and act on one result; None for a re-delivered one."""
        frame = result.frame
        if self.store.has_attempt(frame.inspection_id, frame.attempt) or \
                self.spool.has(frame.inspection_id, frame.attempt):
            self.counts["duplicates"] += 1
            self._events.labels("duplicate").inc()
            self._ack(result)
            return None
        record = self.store.expected(frame.unit_id)
        reading = {name: fv.model_dump() for name, fv in result.fields.items()}
        decision = evaluate(reading, record["fields"] if record else None, self.rules.rules,
                            family=self.family, attempt=frame.attempt, read_error=result.error,
                            quality=result.quality, verify=result.verify,
                            earlier=self._earlier_frames(frame.inspection_id, frame.attempt))
        inspection = {
            "id": frame.inspection_id, "station": frame.station, "unit_id": frame.unit_id,
            "order_id": record["order_id"] if record else None, "frame_id": frame.frame_id,
            "attempt": frame.attempt, "captured_at": frame.captured_at.isoformat(),
            "read_at": result.read_at.isoformat(), "verdict": decision.verdict.value,
            "reason": decision.reason, "backend": result.backend, "device": result.device,
            "latency_ms": result.latency_ms, "image_path": None, "family": self.family,
        }
        readings = []
        for name, check in decision.fields.items():
            fv = result.fields.get(name)
            readings.append({
                "inspection_id": frame.inspection_id, "attempt": frame.attempt, "field": name,
                "value": fv.value if fv else None, "confidence": fv.confidence if fv else 0.0,
                "box": list(fv.box) if fv and fv.box else None, "expected": check.expected,
                "status": check.status.value, "explanation": check.explanation,
                "source": (fv.source or result.backend) if fv else None,
                "verify": (result.verify or {}).get(name),
            })
        if not self._keep(result, payload, inspection, readings, decision):
            return decision  # not acknowledged: the camera sends the frame again later
        self.counts["recorded"] += 1
        if self.signals is not None:  # the line first: a reject is time-critical
            self.signals.emit(frame.station, frame.inspection_id, decision.verdict.value,
                              frame.captured_at)
        self._verdicts.labels(frame.station, decision.verdict.value).inc()
        self._latency.labels(frame.station).observe(
            max(0.0, time.time() - frame.captured_at.timestamp()))
        self._ack(result)
        log.info("%s %s unit=%s attempt=%d: %s", frame.station, frame.inspection_id,
                 frame.unit_id, frame.attempt, decision.verdict.value, extra={
                     "station": frame.station, "inspection_id": frame.inspection_id,
                     "attempt": frame.attempt, "unit_id": frame.unit_id,
                     "verdict": decision.verdict.value, "delivery": frame.delivery,
                     "latency_ms": round(result.latency_ms, 1), "backend": result.backend,
                     "frame_sha256": hashlib.sha256(payload).hexdigest()[:16]})
        if decision.verdict is Verdict.RESHOOT:
            self._order_reshoot(result, decision)
        return decision

    def _earlier_frames(self, inspection_id: str,
                        attempt: int) -> dict[int, dict[str, FieldCheck]]:
        """Field checks of the automatic reshoots that led to ``attempt`` (the same plate);
        none where the store cannot say: the frame is then judged alone, which never lets a
        plate through that the evidence would have stopped."""
        if attempt == 0:
            return {}
        try:
            run = self.store.reshoot_run(inspection_id, before=attempt)
        except STORE_ERRORS as exc:
            log.warning("%s: earlier attempts unavailable (%s): judged alone", inspection_id, exc)
            return {}
        earlier: dict[int, dict[str, FieldCheck]] = {}
        for row in run:
            earlier[row["attempt"]] = {
                name: FieldCheck(field=name, status=FieldStatus(f["status"]),
                                 expected=f["expected"], read=f["value"],
                                 confidence=f["confidence"] or 0.0, required=True,
                                 explanation=f["explanation"] or "")
                for name, f in row["fields"].items() if f["status"] in KNOWN_STATUSES}
        return earlier

    def _image(self, result: ResultMessage, payload: bytes) -> tuple[bytes, str] | None:
        info = result.frame.image
        if not payload:
            return None
        if info.encoding == "raw":
            try:
                return encode_jpeg(raw_to_array(payload, info.width, info.height,
                                                info.channels)), ".jpg"
            except (ImageError, ValueError):
                return None
        return payload, ".png" if info.encoding == "png" else ".jpg"

    def _keep(self, result: ResultMessage, payload: bytes, inspection: dict[str, Any],
              readings: list[dict[str, Any]], decision: Decision) -> bool:
        """Image and rows under one guard; else the spool; False when neither could keep it."""
        frame = result.frame
        image = self._image(result, payload)
        reshoot = decision.reshoot_reason.value if decision.reshoot_reason else None
        path: Path | None = None
        try:
            if image is not None:
                path = self._write_image(frame.captured_at.strftime("%Y/%m/%d"),
                                         f"{frame.inspection_id}-{frame.attempt}{image[1]}",
                                         image[0])
                inspection["image_path"] = str(path)
            self.store.record_inspection(inspection, readings, delivery=frame.delivery,
                                         reshoot_reason=reshoot,
                                         outbox=self._events_for(inspection, readings))
            return True
        except STORE_ERRORS as exc:
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()
            inspection["image_path"] = None
            log.error("cannot store %s (%s): spooling", frame.inspection_id, exc)
        try:
            self.spool.put(inspection, readings, image=image[0] if image else None,
                           suffix=image[1] if image else ".jpg", delivery=frame.delivery,
                           reshoot_reason=reshoot)
        except OSError as exc:
            self.counts["unsaved"] += 1
            self._events.labels("unsaved").inc()
            log.error("cannot spool %s either (%s): not acknowledged, the camera keeps it",
                      frame.inspection_id, exc)
            return False
        self.counts["spooled"] += 1
        self._events.labels("spooled").inc()
        return True

    def _events_for(self, inspection: dict[str, Any],
                    readings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The result event per configured sink (queued with the inspection itself)."""
        if not self.outbox_sinks:
            return {}
        event = result_event(inspection, readings)
        return dict.fromkeys(self.outbox_sinks, event)

    def _write_image(self, day: str, name: str, data: bytes) -> Path:
        folder = self.images_dir / day
        path = folder / name
        if self.images_dir.resolve() not in path.resolve().parents:  # ids are patterned too
            raise OSError(f"image path {path} leaves {self.images_dir}")
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
        return path

    def replay_spool(self) -> int:
        """Move spooled results into the database (idempotent); how many went in."""
        moved = 0
        for entry in self.spool.entries():
            inspection = dict(entry.inspection)
            try:
                if entry.image is not None and entry.image.exists():
                    day = str(inspection.get("captured_at", ""))[:10].replace("-", "/")
                    path = self._write_image(day or "unknown", entry.image.name,
                                             entry.image.read_bytes())
                    inspection["image_path"] = str(path)
                self.store.record_inspection(inspection, entry.readings,
                                             delivery=entry.delivery,
                                             reshoot_reason=entry.reshoot_reason,
                                             outbox=self._events_for(inspection, entry.readings))
            except STORE_ERRORS as exc:
                log.warning("spool replay paused: %s", exc)
                break
            self.spool.remove(entry)
            moved += 1
        if moved:
            self.counts["replayed"] += moved
            self._events.labels("replayed").inc(moved)
            log.info("replayed %d spooled result(s) into the database", moved)
        return moved

    # -- orders to the camera ---------------------------------------------------------------
    def _sender(self, station: str) -> Sender:
        if station not in self.control:
            self.control[station] = Sender(self.settings.endpoint("control", station), hwm=1000)
        return self.control[station]

    def _ack(self, result: ResultMessage) -> None:
        frame = result.frame
        ack = AckCommand(station=frame.station, inspection_id=frame.inspection_id,
                         attempt=frame.attempt)
        # a lost acknowledgement costs one re-delivery, which is acknowledged again
        self._sender(frame.station).send(ack, timeout_ms=200)

    def _order_reshoot(self, result: ResultMessage, decision: Decision) -> None:
        frame = result.frame
        assert decision.reshoot_reason is not None
        command = ReshootCommand(station=frame.station, inspection_id=frame.inspection_id,
                                 unit_id=frame.unit_id, attempt=frame.attempt + 1,
                                 reason=decision.reshoot_reason, detail=decision.reason[:200])
        if not self._sender(frame.station).send(command, timeout_ms=500):
            log.warning("camera %s did not take the reshoot order for %s (escalates to REVIEW "
                        "after %g s)", frame.station, frame.inspection_id,
                        self.settings.health.reshoot_timeout_s)


def run_recorder(settings: Settings, stop: StopFlag) -> None:
    """Entry point of ``nameplate record``."""
    Recorder(settings).run(stop)
