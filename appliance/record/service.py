"""The recorder: check each result against the ERP record, store it, order reshoots.

It is the database's only writer. A result is written to disk (image) and SQLite in one
transaction; if SQLite fails, the result is spooled as JSON so nothing is lost.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from appliance.reader.images import encode_jpeg, raw_to_array
from appliance.runtime import StopFlag, report_ready, sd_notify, write_status
from appliance.schema import load_schema
from appliance.settings import Settings
from appliance.store import Store
from appliance.transport import ReshootCommand, ResultMessage, ResultReceiver, Sender
from erp_bridge import ErpFileError, load_erp_csv
from rules import Decision, RulesHolder, Verdict, evaluate

log = logging.getLogger("record")


class Recorder:
    """Receives results, decides verdicts, stores everything, sends reshoot commands."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.schema = load_schema(settings.schema_file)
        self.family = self.schema.name
        self.rules = RulesHolder(settings.rules_file,
                                 known_fields={self.schema.name: self.schema.field_names()})
        self.store = Store(settings.data_dir / "appliance.db")
        self.images_dir = settings.data_dir / "images"
        self.spool_dir = settings.data_dir / "spool"
        for station in settings.stations:
            self.store.upsert_station(station.id, name=station.name or station.id,
                                      source=station.source)
        self._erp_mtime = 0.0
        self.sync_erp()
        self.results = ResultReceiver(settings.endpoint("results"), bind=True, hwm=1000)
        self.control: dict[str, Sender] = {}
        self.recorded = 0

    def sync_erp(self) -> None:
        """Load the ERP file if it changed; a broken file is logged and changes nothing."""
        path = self.settings.erp_file
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = -1.0
        if mtime == self._erp_mtime:
            return
        self._erp_mtime = mtime
        try:
            records = load_erp_csv(path, field_names=self.schema.field_names())
        except ErpFileError as exc:
            log.error("ERP records not updated: %s", exc)
            self.store.log_event("erp_error", "record", str(exc))
            return
        count = self.store.replace_expected(((r.unit_id, r.order_id, r.fields) for r in records),
                                            source=str(path))
        self.store.log_event("erp_sync", "record", f"loaded {count} ERP records from {path}")
        log.info("loaded %d ERP records from %s", count, path)

    def run(self, stop: StopFlag) -> None:
        """Serve until ``stop`` is set."""
        run_dir = self.settings.run_dir
        assert run_dir is not None
        report_ready(run_dir, "record", log, database=str(self.store.path))
        last_check = 0.0
        while not stop.is_set():
            received = self.results.receive(timeout_ms=200)
            if received is not None:
                result, payload = received
                self.handle(result, payload or b"")
            now = time.monotonic()
            if now - last_check > 1.0:
                last_check = now
                self.sync_erp()
                if self.rules.reload_if_changed():
                    log.info("rules reloaded from %s", self.rules.path)
                elif self.rules.last_error:
                    log.error("rules reload failed, previous rules stay: %s",
                              self.rules.last_error)
                write_status(run_dir, "record", {
                    "state": "ready", "recorded": self.recorded,
                    "rejected": self.results.stats.rejected,
                    "last_rejection": self.results.stats.last_rejection})
                sd_notify("WATCHDOG=1")
        self.results.close()
        for sender in self.control.values():
            sender.close()

    def handle(self, result: ResultMessage, payload: bytes) -> Decision:
        """Decide, store and act on one result."""
        frame = result.frame
        record = self.store.expected(frame.unit_id)
        reading = {name: fv.model_dump() for name, fv in result.fields.items()}
        decision = evaluate(reading, record["fields"] if record else None, self.rules.rules,
                            family=self.family, attempt=frame.attempt, read_error=result.error,
                            quality=result.quality)
        image_path = self._save_image(result, payload)
        inspection = {
            "id": frame.inspection_id, "station": frame.station, "unit_id": frame.unit_id,
            "order_id": record["order_id"] if record else None, "frame_id": frame.frame_id,
            "attempt": frame.attempt, "captured_at": frame.captured_at.isoformat(),
            "read_at": result.read_at.isoformat(), "verdict": decision.verdict.value,
            "reason": decision.reason, "backend": result.backend, "device": result.device,
            "latency_ms": result.latency_ms, "image_path": str(image_path) if image_path else None,
            "family": self.family,
        }
        readings = []
        for name, check in decision.fields.items():
            fv = result.fields.get(name)
            readings.append({
                "inspection_id": frame.inspection_id, "attempt": frame.attempt, "field": name,
                "value": fv.value if fv else None, "confidence": fv.confidence if fv else 0.0,
                "box": list(fv.box) if fv and fv.box else None, "expected": check.expected,
                "status": check.status.value, "explanation": check.explanation,
            })
        try:
            self.store.record_inspection(inspection, readings)
        except Exception as exc:  # the database is gone or full: keep the result on disk
            log.exception("database write failed, spooling %s", frame.inspection_id)
            self._spool(inspection, readings, str(exc))
        self.recorded += 1
        log.info("%s %s unit=%s attempt=%d: %s", frame.station, frame.inspection_id,
                 frame.unit_id, frame.attempt, decision.verdict.value)
        if decision.verdict is Verdict.RESHOOT:
            self._order_reshoot(result, decision)
        return decision

    def _save_image(self, result: ResultMessage, payload: bytes) -> Path | None:
        if not payload:
            return None
        frame = result.frame
        info = frame.image
        data = payload
        if info.encoding == "raw":
            try:
                data = encode_jpeg(raw_to_array(payload, info.width, info.height, info.channels))
            except ValueError:
                return None
        suffix = ".png" if info.encoding == "png" else ".jpg"
        day = frame.captured_at.strftime("%Y/%m/%d")
        path = self.images_dir / day / f"{frame.inspection_id}-{frame.attempt}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def _spool(self, inspection: dict[str, object], readings: list[dict[str, object]],
               error: str) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"{inspection['id']}-{inspection['attempt']}.json"
        path.write_text(json.dumps({"inspection": inspection, "readings": readings,
                                    "error": error}))

    def _order_reshoot(self, result: ResultMessage, decision: Decision) -> None:
        frame = result.frame
        station = frame.station
        if station not in self.control:
            self.control[station] = Sender(self.settings.endpoint("control", station), hwm=100)
        command = ReshootCommand(station=station, inspection_id=frame.inspection_id,
                                 unit_id=frame.unit_id, attempt=frame.attempt + 1,
                                 reason=decision.reason)
        if not self.control[station].send(command, timeout_ms=500):
            log.warning("camera %s did not take the reshoot order for %s", station,
                        frame.inspection_id)


def run_recorder(settings: Settings, stop: StopFlag) -> None:
    """Entry point of ``nameplate record``."""
    Recorder(settings).run(stop)
