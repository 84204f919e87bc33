"""Configuration: TOML + environment, unknown keys rejected, errors with key paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.settings import ConfigError, load_settings

REPO = Path(__file__).resolve().parent.parent


def nameplate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NAMEPLATE_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "appliance.cli", *args], capture_output=True,
                          text=True, env=full_env, cwd=REPO, timeout=60)


def test_repository_default_is_valid_and_resolved() -> None:
    settings = load_settings(REPO / "config" / "appliance.toml")
    assert settings.schema_file == REPO / "config" / "schemas" / "motor.toml"
    assert settings.data_dir == REPO / "var"
    assert settings.panel.host == "127.0.0.1"
    assert settings.endpoint("control", "line1").endswith("/var/run/control-line1.sock")


def test_config_check_prints_effective_configuration() -> None:
    out = nameplate("config", "check", str(REPO / "config" / "appliance.toml"),
                    env={"NAMEPLATE_PANEL__PORT": "9123"})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["panel"]["port"] == 9123
    assert data["stations"][0]["id"] == "line1"


def test_config_check_lists_every_error_with_key_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('bogus = 1\n[panel]\nport = "eighty"\n[[stations]]\nid = "has space"\n')
    out = nameplate("config", "check", str(bad))
    assert out.returncode == 1
    assert f"{bad}: bogus: Extra inputs are not permitted" in out.stderr
    assert f"{bad}: panel.port:" in out.stderr
    assert f"{bad}: stations[0].id:" in out.stderr


def test_unknown_environment_setting_is_rejected() -> None:
    out = nameplate("config", "check", env={"NAMEPLATE_PANNEL__PORT": "1"})
    assert out.returncode == 1
    assert "NAMEPLATE_PANNEL__PORT: unknown setting" in out.stderr


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[panel\nport = 1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(broken)
    assert str(broken) in str(err.value)


def test_duplicate_station_ids_are_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "dup.toml"
    cfg.write_text('[[stations]]\nid = "a"\n[[stations]]\nid = "a"\n')
    with pytest.raises(ConfigError, match="duplicate station id"):
        load_settings(cfg)


def test_endpoint_must_name_a_transport(tmp_path: Path) -> None:
    cfg = tmp_path / "ep.toml"
    cfg.write_text('[endpoints]\nframes = "http://x"\n')
    with pytest.raises(ConfigError, match=r"endpoints\.frames"):
        load_settings(cfg)
