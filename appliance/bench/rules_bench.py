"""How long the rule engine takes to check one inspection."""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path
from typing import Any

from rules import evaluate, load_rules

RECORD = {
    "manufacturer": "VOLTREX", "model": "VX132M-4", "serial": "48213907KQ",
    "voltage": "230/400 V", "current": "15.2/8.8 A", "power": "4 kW", "frequency": "50 Hz",
    "speed": "1440 r/min", "manufactured": "03/2026", "ip_rating": "IP55",
}
SCENARIOS: dict[str, dict[str, str | None]] = {
    "pass": {},
    "mismatch": {"serial": "48213908KQ"},
    "lookalike-repair": {"serial": "482139O7KQ"},
    "not-read": {"model": None},
}


def bench_rules(rules_file: Path, *, family: str = "motor", repeat: int = 5000) -> dict[str, Any]:
    """Median and p99 time of ``evaluate`` per scenario, in microseconds."""
    rules = load_rules(rules_file)
    results: dict[str, Any] = {"machine": f"{platform.node()} {platform.processor() or ''} "
                               f"{platform.python_implementation()} {platform.python_version()}",
                               "repeat": repeat, "scenarios": {}}
    for name, change in SCENARIOS.items():
        reading = {k: {"value": v, "confidence": 0.95} for k, v in RECORD.items()}
        for field, value in change.items():
            reading[field] = {"value": value, "confidence": 0.95}
        for _ in range(200):  # warm-up
            evaluate(reading, RECORD, rules, family=family)
        times = []
        for _ in range(repeat):
            start = time.perf_counter_ns()
            evaluate(reading, RECORD, rules, family=family)
            times.append((time.perf_counter_ns() - start) / 1000)
        times.sort()
        results["scenarios"][name] = {"median_us": round(statistics.median(times), 1),
                                      "p99_us": round(times[int(len(times) * 0.99)], 1)}
    return results
