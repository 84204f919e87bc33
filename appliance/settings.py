"""Appliance configuration: ``config/appliance.toml`` plus ``NAMEPLATE_…`` environment overrides.

Precedence, highest first: environment (``NAMEPLATE_READER__BACKEND=tesseract``; nested keys
joined by ``__``), the TOML file, the defaults below. Unknown keys are rejected. Relative paths
are resolved against the directory of the configuration file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationError,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from appliance.settings_sections import (
    EndpointSettings,
    ErpSettings,
    HealthSettings,
    LineSettings,
    OutboxSettings,
    PanelSettings,
    ReaderSettings,
    SecuritySettings,
    StationSettings,
    StorageSettings,
)

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "appliance.toml"
SYSTEM_CONFIG = Path("/etc/nameplate/appliance.toml")
ENV_CONFIG = "NAMEPLATE_CONFIG"


class Settings(BaseSettings):
    """The whole appliance configuration."""

    model_config = SettingsConfigDict(
        env_prefix="NAMEPLATE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    config_file: Path | None = None
    data_dir: Path = Path("../var")
    run_dir: Path | None = None
    schema_file: Path = Path("schemas/motor.toml")
    rules_file: Path = Path("rules.toml")
    erp_file: Path = Path("demo/erp.csv")
    erp_max_shrink: float = Field(default=0.5, ge=0, le=1, description=(
        "an ERP export that lost more than this share of the rows loaded before is refused"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = Field(default="auto", description=(
        "json: one JSON object per log line; auto: json under systemd, text in a terminal"))
    endpoints: EndpointSettings = EndpointSettings()
    stations: list[StationSettings] = Field(
        default_factory=lambda: [StationSettings(id="line1")], min_length=1
    )
    reader: ReaderSettings = ReaderSettings()
    panel: PanelSettings = PanelSettings()
    storage: StorageSettings = StorageSettings()
    health: HealthSettings = HealthSettings()
    security: SecuritySettings = SecuritySettings()
    outbox: OutboxSettings = OutboxSettings()
    erp: ErpSettings = ErpSettings()
    line: LineSettings = LineSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = _toml_path_in_use()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    def resolved(self) -> Settings:
        """Return a copy with relative paths made absolute against the config file's folder."""
        base = (self.config_file.parent if self.config_file else Path.cwd()).resolve()

        def fix(path: Path) -> Path:
            return path if path.is_absolute() else (base / path).resolve()

        data_dir = fix(self.data_dir)
        security = self.security.model_copy(update={"keys_dir": fix(self.security.keys_dir)})
        reader = self.reader.model_copy(
            update={"model_dir": fix(self.reader.model_dir) if self.reader.model_dir else None}
        )
        return self.model_copy(
            update={
                "data_dir": data_dir,
                "run_dir": fix(self.run_dir) if self.run_dir else data_dir / "run",
                "schema_file": fix(self.schema_file),
                "rules_file": fix(self.rules_file),
                "erp_file": fix(self.erp_file),
                "reader": reader,
                "security": security,
            }
        )

    def station(self, station_id: str) -> StationSettings:
        """The station with ``station_id``; KeyError names the known ones."""
        for station in self.stations:
            if station.id == station_id:
                return station
        known = ", ".join(s.id for s in self.stations)
        raise KeyError(f"no station {station_id!r} in the configuration (known: {known})")

    def endpoint(self, name: Literal["frames", "results", "control"], station: str = "") -> str:
        """The endpoint ``name`` with ``{run_dir}`` and ``{station}`` filled in."""
        template: str = getattr(self.endpoints, name)
        return template.format(run_dir=self.run_dir, station=station)


_ACTIVE_TOML: list[Path | None] = [None]


def _toml_path_in_use() -> Path | None:
    return _ACTIVE_TOML[0]


def default_config_path() -> Path | None:
    """The configuration file used when none is named: $NAMEPLATE_CONFIG, /etc, or the repo's."""
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    if SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG
    return REPO_CONFIG if REPO_CONFIG.exists() else None


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` lists ``(key path, message)`` pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {key}: {msg}" for key, msg in problems]
        super().__init__("\n".join(lines))


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def load_settings(path: Path | str | None = None) -> Settings:
    """Load, validate and resolve the configuration from ``path`` (or the default file).

    Raises :class:`ConfigError` listing every problem with its key path.
    """
    toml = Path(path) if path else default_config_path()
    source = str(toml) if toml else "(defaults)"
    unknown_env = [
        name for name in os.environ
        if name.startswith("NAMEPLATE_") and name != ENV_CONFIG
        and name[len("NAMEPLATE_"):].split("__")[0].lower() not in Settings.model_fields
    ]
    if unknown_env:
        raise ConfigError("environment", [(n, "unknown setting") for n in sorted(unknown_env)])
    if toml is not None and not toml.is_file():
        raise ConfigError(source, [("(file)", "configuration file not found")])
    # NAMEPLATE_CONFIG names the file; it is not a setting, so hide it from the env source.
    saved = os.environ.pop(ENV_CONFIG, None)
    _ACTIVE_TOML[0] = toml
    try:
        settings = Settings(config_file=toml.resolve() if toml else None)
    except ValidationError as exc:
        problems = [(_key_path(tuple(e["loc"])), e["msg"]) for e in exc.errors()]
        raise ConfigError(source, problems) from None
    except (OSError, ValueError) as exc:  # TOML syntax errors arrive as ValueError
        raise ConfigError(source, [("(file)", str(exc))]) from None
    finally:
        _ACTIVE_TOML[0] = None
        if saved is not None:
            os.environ[ENV_CONFIG] = saved
    ids = [s.id for s in settings.stations]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(source, [("stations", f"duplicate station id(s): {', '.join(dupes)}")])
    return settings.resolved()
