"""Gauges the panel derives from the services' status files and the database."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from appliance.health import assess_health
from appliance.settings import Settings


class StatusCollector:
    """Station health, queue depths, drops by reason, disk free, verdict totals, health."""

    def __init__(self, settings: Settings, counts: Callable[[], dict[str, int] | None]) -> None:
        self.settings = settings
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        """One family per quantity, labelled by station / service / reason."""
        report = assess_health(self.settings)
        statuses: dict[str, Any] = report["services"]
        now = time.time()
        up = GaugeMetricFamily("nameplate_service_heartbeat_age_seconds",
                               "Seconds since each service's last heartbeat", labels=["service"])
        for name, status in statuses.items():
            if status:
                up.add_metric([name], max(0.0, now - float(status.get("updated", 0))))
        yield up
        healthy = GaugeMetricFamily("nameplate_healthy", "1 when /healthz finds no problem")
        healthy.add_metric([], 1.0 if report["healthy"] else 0.0)
        yield healthy
        problems = GaugeMetricFamily("nameplate_health_problems",
                                     "Current health findings by kind", labels=["problem"])
        kinds: dict[str, int] = {}
        for finding in report["problems"]:
            kinds[finding["problem"]] = kinds.get(finding["problem"], 0) + 1
        for kind, n in kinds.items():
            problems.add_metric([kind], n)
        yield problems
        yield from self._stations(statuses)
        disk = GaugeMetricFamily("nameplate_disk_free_bytes", "Free space on the data folder")
        with contextlib.suppress(OSError):
            disk.add_metric([], shutil.disk_usage(self.settings.data_dir).free)
        yield disk
        verdicts = CounterMetricFamily("nameplate_inspections",
                                       "Inspections in the database by latest verdict",
                                       labels=["verdict"])
        for verdict, n in (self.counts() or {}).items():
            verdicts.add_metric([verdict], n)
        yield verdicts

    def _stations(self, statuses: dict[str, Any]) -> Iterator[Metric]:
        connected = GaugeMetricFamily("nameplate_station_connected",
                                      "1 when the station's source delivers", labels=["station"])
        pending = GaugeMetricFamily("nameplate_station_pending_frames",
                                    "Frames captured and not yet stored (journal depth)",
                                    labels=["station"])
        lag = GaugeMetricFamily("nameplate_station_oldest_pending_seconds",
                                "Age of the oldest frame waiting for its stored result",
                                labels=["station"])
        fps = GaugeMetricFamily("nameplate_station_fps", "Frames sent per second (10 s)",
                                labels=["station"])
        captured = CounterMetricFamily("nameplate_station_captured",
                                       "Frames that became inspections", labels=["station"])
        drops = CounterMetricFamily("nameplate_station_drops",
                                    "Frames that did not become inspections, by reason",
                                    labels=["station", "reason"])
        for station in self.settings.stations:
            status = statuses.get(f"camera-{station.id}") or {}
            connected.add_metric([station.id], 1.0 if status.get("source_state") == "connected"
                                 else 0.0)
            pending.add_metric([station.id], float(status.get("pending") or 0))
            lag.add_metric([station.id], float(status.get("oldest_pending_s") or 0))
            fps.add_metric([station.id], float(status.get("fps") or 0))
            captured.add_metric([station.id], float(status.get("captured_total") or 0))
            for reason, n in (status.get("drops") or {}).items():
                drops.add_metric([station.id, str(reason)], float(n))
        yield from (connected, pending, lag, fps, captured, drops)
