"""Prometheus metrics across processes: each service writes its own, the panel serves all.

Each service keeps a private ``prometheus_client`` registry and writes it in the text format
to ``run_dir/<service>.prom`` with its heartbeat (node_exporter's textfile idea); the panel's
``/metrics`` parses every fresh file, merges families of the same name (several cameras) and
serves them with its own gauges.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from appliance.runtime import replace_quietly

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class ServiceMetrics:
    """One service's registry, written to a ``.prom`` file beside its status."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()

    def counter(self, name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
        """A counter in this service's registry."""
        return Counter(name, doc, list(labels), registry=self.registry)

    def gauge(self, name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
        """A gauge in this service's registry."""
        return Gauge(name, doc, list(labels), registry=self.registry)

    def histogram(self, name: str, doc: str, labels: Iterable[str] = ()) -> Histogram:
        """A latency histogram (seconds) in this service's registry."""
        return Histogram(name, doc, list(labels), buckets=LATENCY_BUCKETS,
                         registry=self.registry)

    def write(self, run_dir: Path) -> None:
        """Publish the registry atomically; a full disk costs a stale file, nothing else."""
        with contextlib.suppress(OSError):
            replace_quietly(run_dir / f"{self.service}.prom", generate_latest(self.registry))


class FileCollector:
    """Collects the ``.prom`` files of live services (fresher than ``max_age_s``)."""

    def __init__(self, run_dir: Path, *, max_age_s: float) -> None:
        self.run_dir = run_dir
        self.max_age_s = max_age_s

    def collect(self) -> Iterator[Metric]:
        """Merged metric families of every fresh service file."""
        families: dict[str, Metric] = {}
        now = time.time()
        for path in sorted(self.run_dir.glob("*.prom")):
            try:
                if now - path.stat().st_mtime > self.max_age_s:
                    continue
                text = path.read_text()
            except OSError:
                continue
            try:
                parsed = list(text_string_to_metric_families(text))
            except ValueError:
                continue
            for family in parsed:
                if family.name in families:
                    families[family.name].samples.extend(family.samples)
                else:
                    families[family.name] = family
        yield from families.values()
