"""The sections of the appliance's configuration (``[reader]``, ``[line]``, ...), one model
a section; :mod:`appliance.settings` puts them together and loads them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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
