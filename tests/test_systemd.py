"""The systemd units: hardened to an exposure of at most 2.0 each, measured by systemd itself."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = sorted((Path(__file__).resolve().parent.parent / "systemd").glob("*.service"))
ANALYZE = shutil.which("systemd-analyze")
HARDENING = re.compile(r"# --- hardening: .*?\n(.*?)# --- what this service needs", re.S)


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze missing (Debian package systemd)")
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_exposure_is_at_most_2(unit: Path) -> None:
    out = subprocess.run([str(ANALYZE), "security", "--offline=yes", str(unit)],
                         capture_output=True, text=True, check=False)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", out.stdout + out.stderr)
    assert found, out.stdout + out.stderr
    print(f"{unit.name}: exposure {found.group(1)}")
    assert float(found.group(1)) <= 2.0


def test_units_share_one_hardening_block_and_keep_the_sockets() -> None:
    assert len(UNITS) == 4
    blocks = {unit.name: HARDENING.search(unit.read_text()) for unit in UNITS}
    assert all(blocks.values()), [n for n, b in blocks.items() if not b]
    assert len({b.group(1) for b in blocks.values() if b}) == 1
    for unit in UNITS:
        text = unit.read_text()
        # a restart of one service must not remove the run directory with every socket
        assert "RuntimeDirectoryPreserve=yes" in text, unit.name
        assert "CapabilityBoundingSet=\n" in text, unit.name
