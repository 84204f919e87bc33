"""Benchmark the rule engine: `python bench/rules_bench.py [RULES]` (= `nameplate bench rules`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from appliance.bench.rules_bench import bench_rules

if __name__ == "__main__":
    default = Path(__file__).resolve().parent.parent / "config" / "rules.toml"
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    print(json.dumps(bench_rules(path), indent=2))
