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
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "appliance.toml"
SYSTEM_CONFIG = Path("/etc/nameplate/appliance.toml")
ENV_CONFIG = "NAMEPLATE_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointSettings(_Section):
    """ZeroMQ endpoints; ``{run_dir}`` and ``{station}`` are filled in at run time."""

    frames: str = "ipc://{run_dir}/frames.sock"
    results: str = "ipc://{run_dir}/results.sock"
    control: str = "ipc://{run_dir}/control-{station}.sock"

    @field_validator("frames", "results", "control")
    @classmethod
    def _known_transport(cls, value: str) -> str:
        if not value.startswith(("ipc://", "tcp://", "inproc://")):
            raise ValueError("endpoint must start with ipc://, tcp:// or inproc://")
        return value


class ErpSettings(_Section):
    """Where expected records come from besides ``erp_file`` (a SQL source, an MES push)."""

    source: Literal["file", "sql"] = Field(default="file", description=(
        "file: erp_file (CSV, or JSON lines for .jsonl), replaced whole when it changes; "
        "sql: rows of sql_query changed since the last sync, upserted"))
    sql_url: str = Field(default="", description="SQLAlchemy URL of the ERP staging database")
    sql_query: str = Field(default="", description=(
        "SELECT of unit_id, order_id, the plate fields and the cursor column, with a :cursor "
        "parameter, e.g. ... WHERE updated_at >= CAST(:cursor AS timestamptz)"))
    sql_cursor_column: str = Field(default="updated_at", description=(
        "the query's column that orders changes (a timestamp or a growing number)"))
    sql_columns: dict[str, str] = Field(default_factory=dict, description=(
        "database column → plate field, where their names differ"))
    poll_s: float = Field(default=30.0, gt=0, description="sql: seconds between syncs")
    push_token: str | None = Field(default=None, description=(
        "token an MES sends as 'Authorization: Bearer …' to PUT /api/v1/expected/{unit}; "
        "unset: the push endpoint is off"))


VerdictName = Literal["PASS", "MISMATCH", "RESHOOT", "REVIEW"]


class OutputSettings(_Section):
    """One station's reject output on the line's PLC (``[[line.outputs]]``)."""

    station: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="the station it serves")
    kind: Literal["opcua", "modbus"] = Field(description=(
        "opcua: write a Boolean node of the PLC's OPC UA server; modbus: write a coil"))
    url: str = Field(default="", description="opcua: endpoint, e.g. opc.tcp://plc:4840")
    node: str = Field(default="", description="opcua: node id, e.g. ns=3;s=Line1.Reject")
    host: str = Field(default="", description="modbus: device host")
    port: int = Field(default=502, ge=1, le=65535, description="modbus: TCP port")
    coil: int = Field(default=0, ge=0, le=65535, description="modbus: coil address")
    device_id: int = Field(default=1, ge=0, le=255, description="modbus: unit / device id")
    timeout_s: float = Field(default=2.0, gt=0, le=30, description="one write's time limit")

    @model_validator(mode="after")
    def _needs(self) -> OutputSettings:
        if self.kind == "opcua" and not (self.url and self.node):
            raise ValueError(f"output of {self.station!r} (opcua) needs url and node")
        if self.kind == "modbus" and not self.host:
            raise ValueError(f"output of {self.station!r} (modbus) needs host")
        return self


class LineSettings(_Section):
    """Signals to the line: a reject output per station, written as each verdict is stored."""

    reject_on: list[VerdictName] = Field(
        default_factory=lambda: list[VerdictName](["MISMATCH", "REVIEW", "RESHOOT"]),
        description=(
            "verdicts that set the reject output (the others clear it); REVIEW is in by "
            "default: a plate the appliance could not confirm after its reshoots must not "
            "ship unattended (most wrong plates end there, not in MISMATCH, since a "
            "difference is a MISMATCH only when the reader is 99 % sure); RESHOOT too: a "
            "unit waiting for its next frame (a plate read surely wrong waits for the frame "
            "that confirms it) is held until a later verdict clears it"))
    outputs: list[OutputSettings] = Field(default_factory=list, description="per station")
    trigger_mqtt_host: str = Field(default="", description=(
        "MQTT broker whose TOPIC/STATION/trigger messages trigger a station's camera "
        "(payload: the unit id, or {\"unit_id\": ...}); empty: off"))
    trigger_mqtt_port: int = Field(default=1883, ge=1, le=65535, description="its port")
    trigger_mqtt_topic: str = Field(default="nameplate", description="its topic prefix")


class SecuritySettings(_Section):
    """Encryption and authentication of ``tcp://`` endpoints (ZeroMQ CURVE)."""

    curve: bool = Field(default=False, description=(
        "encrypt tcp:// sockets and admit only keys in keys_dir/authorized"))
    keys_dir: Path = Field(default=Path("keys"), description=(
        "folder made by `nameplate keys generate` (appliance.key, appliance.key_secret)"))


class SinkSettings(_Section):
    """One destination of stored results (``[[outbox.sinks]]``)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="unique name of the sink")
    kind: Literal["webhook", "sql", "mqtt"] = Field(description=(
        "webhook: POST JSON; sql: a table in any SQLAlchemy database; mqtt: a broker topic"))
    url: str = Field(default="", description="webhook URL, or the SQLAlchemy URL of a sql sink")
    token: str | None = Field(default=None, description="webhook: bearer token")
    table: str = Field(default="nameplate_results", description="sql: table (created if missing)")
    host: str = Field(default="", description="mqtt: broker host")
    port: int = Field(default=1883, ge=1, le=65535, description="mqtt: broker port")
    topic: str = Field(default="nameplate", description="mqtt: topic prefix")
    username: str | None = Field(default=None, description="mqtt: user name")
    password: str | None = Field(default=None, description="mqtt: password")
    timeout_s: float = Field(default=5.0, gt=0, le=120, description="one delivery's time limit")

    @model_validator(mode="after")
    def _needs(self) -> SinkSettings:
        if self.kind in ("webhook", "sql") and not self.url:
            raise ValueError(f"sink {self.name!r} ({self.kind}) needs url")
        if self.kind == "mqtt" and not self.host:
            raise ValueError(f"sink {self.name!r} (mqtt) needs host")
        return self


class OutboxSettings(_Section):
    """Results out: each stored inspection attempt is delivered to every sink, exactly once."""

    sinks: list[SinkSettings] = Field(default_factory=list, description="where results go")
    base_delay_s: float = Field(default=1.0, gt=0, description="first retry after a failure")
    max_delay_s: float = Field(default=300.0, gt=0, description="retry back-off cap")


class StationSettings(_Section):
    """One inspection station: a camera source and how it is triggered."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = ""
    source: Literal["synthetic", "folder", "opencv"] = "synthetic"
    uri: str = ""
    rate_hz: float = Field(default=0.5, gt=0, le=120)
    trigger: Literal["free", "external"] = "free"
    loop: bool = True
    seed: int = 0
    fault_every: int = Field(default=4, ge=0)
    burst: int = Field(default=1, ge=1, le=32)          # frames per trigger; the sharpest is sent
    part_present: bool = False                         # skip frames with no plate in view
    reconnect_max_s: float = Field(default=2.0, gt=0, le=300)  # back-off cap after a failure
    window: int = Field(default=4, ge=1, le=256, description=(
        "frames sent to inference and not yet acknowledged, at most; free-running capture "
        "skips (counted) while this many wait"))
    redeliver_s: float = Field(default=30.0, gt=0, le=3600, description=(
        "a frame whose stored result was not acknowledged within this time is sent again "
        "(the recorder keeps one)"))
    journal_max: int = Field(default=10_000, ge=1, le=1_000_000, description=(
        "frames the station's journal keeps at most while inference or the recorder is away; "
        "then capture is refused (counted)"))


class StorageSettings(_Section):
    """Disk guard and retention of the recorder's database and images."""

    min_free_mb: float = Field(default=200.0, ge=0, description=(
        "capture stops (health: disk_full) and results are spooled below this free space"))
    keep_days: float = Field(default=30.0, gt=0, description=(
        "images of PASS and RESHOOT inspections are pruned after this many days"))
    keep_days_flagged: float = Field(default=365.0, gt=0, description=(
        "images of MISMATCH and REVIEW inspections are kept this long"))
    max_images_gb: float = Field(default=50.0, gt=0, description=(
        "oldest unflagged images are pruned first when images take more than this"))


class HealthSettings(_Section):
    """When a service or station counts as unhealthy (``/healthz``, ``nameplate status``)."""

    stale_s: float = Field(default=5.0, gt=0, description=(
        "a service whose heartbeat is older than this is stalled (frozen, hung or dead)"))
    max_batch_s: float = Field(default=8.0, gt=0, description=(
        "inference busy on one batch for longer than this is hung"))
    max_lag_s: float = Field(default=60.0, gt=0, description=(
        "a station whose oldest unacknowledged frame is older than this is lagging"))
    restart_stalled: bool = Field(default=True, description=(
        "nameplate up kills and restarts a service whose heartbeat stopped"))
    erp_max_age_h: float | None = Field(default=None, gt=0, description=(
        "the ERP export counts as stale when unchanged for longer (unset: never)"))
    reshoot_timeout_s: float = Field(default=60.0, gt=0, description=(
        "a RESHOOT not answered by a new attempt within this time escalates to REVIEW"))


class ReaderSettings(_Section):
    """Which reader the inference process loads, and where it runs."""

    backend: str = "ppocr"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    model_dir: Path | None = None
    max_batch: int = Field(default=8, ge=1, le=256)
    workers: int = Field(default=1, ge=1, le=64, description=(
        "reader processes that share each batch (1: the inference process reads itself). "
        "On a CPU host each has its own reader; one per core reads more frames per second "
        "(2 cores: +31 %) at some latency per frame. On a GPU the inference process loads "
        "the ppocr networks once and serves them to the workers, which do the per-frame "
        "CPU work: many stations at once (H100, 16 cores, 32 workers: 230 frames/s compiled, "
        "213 not, against 29-38 for one process) at about 2-3 times one frame's latency "
        "(docs/benchmarks.md)"))
    compile_networks: bool = Field(default=True, description=(
        "ppocr: run the networks through torch.compile where that was measured to gain: a "
        "reader on a CPU (2 vCPUs: a frame read with the detector at 1280 px in 255 ms "
        "against 362 uncompiled, so a compiled CPU reader looks at 1280 px, not 960: field "
        "exact +1.4 points) and networks served on a GPU (workers > 1; H100, 32 workers: "
        "230 frames/s). A first start compiles for minutes; later starts reuse the kernels "
        "kept in TORCHINDUCTOR_CACHE_DIR. The in-process GPU reader is not compiled"))
    max_new_tokens: int = Field(default=48, ge=1, le=512, description=(
        "vlm/cascade: generation stops here; an answer cut by the cap is not read"))
    timeout_s: float = Field(default=30.0, gt=0, le=600, description=(
        "vlm/cascade: time limit of one generate call; an answer cut by it is not read"))
    cache_size: int = Field(default=256, ge=0, le=100_000, description=(
        "vlm/cascade: readings kept by image hash + prompt + model (0: no cache)"))
    trust_remote_code: bool = Field(default=False, description=(
        "vlm/cascade: run Python code shipped in the model folder (off: only model classes "
        "transformers itself ships load)"))
    static_cache: bool = Field(default=False, description=(
        "vlm/cascade on CUDA: static KV cache, compiled decoding (faster reads; the first "
        "read compiles for about a minute)"))
    verify_known: bool = Field(default=True, description=(
        "when the unit's ERP record is known, also score its expected values with the "
        "reader's verify mode (ppocr, vlm, cascade) and store the outcome per field; the "
        "rules then keep a MISMATCH only where verify also finds the expected value "
        "differs, and with the rules' policy.verified_confirms a field read unsurely "
        "counts as matching where verify finds the expected value clearly (station "
        "frames never tuned on: good units PASS 52 % -> 62 %, no wrong record passed). "
        "ppocr reuses the frame's reading; vlm and cascade score it in a second pass"))
    cascade_primary: str = Field(default="ppocr", description=(
        "cascade: the OCR reader that reads every frame"))
    cascade_min_confidence: float = Field(default=0.6, ge=0, le=1, description=(
        "cascade: OCR fields under this confidence (or out of format) go to the VLM"))


class PanelSettings(_Section):
    """The operator panel's HTTP server."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    refresh_s: float = Field(default=2.0, gt=0)


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
