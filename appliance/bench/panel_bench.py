"""``nameplate bench panel``: list views of the panel on a large database, p50/p95."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.bench.history_data import fill_history


def bench_panel(settings: Any, *, count: int = 100_000, repeat: int = 20) -> dict[str, Any]:
    """Fill a scratch database with ``count`` inspections, then time each list query through
    the panel's HTTP app (in process, as a browser would call it)."""
    from fastapi.testclient import TestClient

    from appliance.panel.app import create_app

    folder = Path(tempfile.mkdtemp(prefix="nameplate-bench-panel-"))
    started = time.perf_counter()
    fill_history(folder / "appliance.db", count)
    filled_s = time.perf_counter() - started
    app = create_app(settings.model_copy(update={"data_dir": folder, "run_dir": folder / "run"}))
    client = TestClient(app)
    queries = {
        "latest 50": "", "verdict=MISMATCH": "verdict=MISMATCH", "station=line2":
        "station=line2", "unit_id": f"unit_id=U{count // 2}", "order_id": "order_id=PO-7",
        "field_status=not_read": "field_status=not_read",
        "time range + station": "since=2026-11-01T10:00:00%2B00:00&"
                                "until=2026-11-01T11:00:00%2B00:00&station=line1",
        "page 5 (cursor)": None,
    }
    out: dict[str, Any] = {"inspections": count, "fill_s": round(filled_s, 1)}
    for name, query in queries.items():
        if query is None:
            cursor = None
            for _ in range(4):
                cursor = client.get("/api/v1/inspections", params={"cursor": cursor} if cursor
                                    else {}).json()["next_cursor"]
            query = f"cursor={cursor}"
        times = []
        for _ in range(repeat):
            begin = time.perf_counter()
            response = client.get(f"/api/v1/inspections?{query}")
            times.append((time.perf_counter() - begin) * 1000)
            response.raise_for_status()
        times.sort()
        out[name] = {"p50_ms": round(statistics.median(times), 1),
                     "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                     "rows": len(response.json()["inspections"])}
    return out
