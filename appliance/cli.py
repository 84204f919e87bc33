"""The ``nameplate`` command line."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from appliance.cli_common import cli_settings as _settings
from appliance.cli_model import MODEL_COMMANDS
from appliance.cli_ops import OPS_COMMANDS
from appliance.settings import ConfigError, Settings, default_config_path, load_settings


@click.group()
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path),
              envvar="NAMEPLATE_CONFIG", help="Configuration file (default: $NAMEPLATE_CONFIG, "
              "/etc/nameplate/appliance.toml, or the repository's config/appliance.toml).")
@click.version_option(package_name="nameplate-appliance")
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """Nameplate verification appliance: read rating plates and verify them against the ERP."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


@main.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def config_check(ctx: click.Context, file: Path | None) -> None:
    """Validate FILE (or the configuration in use) and print the effective configuration."""
    path = file or ctx.obj["config"] or default_config_path()
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(settings.model_dump_json(indent=2))


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@click.option("--backend", default=None, help="Reader backend (default: configuration).")
@click.option("--schema", "schema_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Plate family schema TOML (default: configuration).")
@click.option("--expect", "expect", multiple=True, metavar="FIELD=VALUE",
              help="Verify mode: score this expected value instead of reading freely "
              "(ppocr backend); repeatable.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Model folder (ppocr weights, or a vlm/cascade "
              "image-text-to-text model).")
@click.pass_context
def read(ctx: click.Context, images: tuple[Path, ...], as_json: bool, device: str | None,
         backend: str | None, schema_file: Path | None, expect: tuple[str, ...],
         model_dir: Path | None) -> None:
    """Read IMAGES without any service running (or verify expected values with --expect)."""
    from appliance.reader import ImageError, load_image, load_reader
    from appliance.schema import SchemaError, load_schema

    settings = _settings(ctx)
    try:
        schema = load_schema(schema_file or settings.schema_file)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None
    expected: dict[str, str] = {}
    for item in expect:
        name, sep, value = item.partition("=")
        if not sep or name not in schema.fields:
            raise click.ClickException(f"--expect {item!r}: use FIELD=VALUE with a field of "
                                       f"{', '.join(schema.fields)}")
        expected[name] = value
    from appliance.infer.service import reader_options
    from appliance.reader.ppocr.pipeline import COMPILED_LIMIT

    options = reader_options(settings)
    if options.pop("compile_networks", False):
        # a few images are not worth minutes of compiling: read them uncompiled at the
        # detector side a compiled reader uses, so they read as the appliance reads them
        options["detector_limit"] = COMPILED_LIMIT
    if model_dir:
        options["model_dir"] = model_dir
    try:
        reader = load_reader(backend or settings.reader.backend, schema=schema,
                             device=device or settings.reader.device, **options)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if expected and not hasattr(reader, "verify"):
        raise click.ClickException(f"backend {reader.name!r} has no verify mode")
    failures = 0
    for path in images:
        started = time.perf_counter()
        try:
            image = load_image(path)
        except ImageError as exc:
            failures += 1
            click.echo(json.dumps({"image": str(path), "error": str(exc)}) if as_json
                       else f"{path}: error: {exc}", err=not as_json)
            continue
        if expected:
            results = reader.verify(image, expected)  # type: ignore[attr-defined]
            latency = (time.perf_counter() - started) * 1000
            click.echo(json.dumps({"image": str(path), "verify": results, "backend": reader.name,
                                   "device": reader.device, "latency_ms": round(latency, 2)},
                                  default=list))
            continue
        reading = reader.read([image])[0]
        latency = (time.perf_counter() - started) * 1000
        out = {
            "image": str(path),
            "fields": {k: {"value": v.value, "confidence": round(v.confidence, 4),
                           "box": list(v.box) if v.box else None}
                       for k, v in reading.fields.items()},
            "backend": reader.name, "device": reader.device, "latency_ms": round(latency, 2),
        }
        if reading.error:
            out["error"] = reading.error
        if as_json:
            click.echo(json.dumps(out))
        else:
            click.echo(f"{path}  ({reader.name} on {reader.device}, {latency:.0f} ms)")
            for name, field in out["fields"].items():  # type: ignore[attr-defined]
                click.echo(f"  {name:<13} {field['value'] or '—':<24} {field['confidence']:.2f}")
    if failures:
        sys.exit(1)


@main.group()
def bench() -> None:
    """Measure speed (results belong in docs/benchmarks.md with the machine)."""


@bench.command("rules")
@click.option("--repeat", default=5000, show_default=True)
@click.pass_context
def bench_rules_cmd(ctx: click.Context, repeat: int) -> None:
    """Time the rule engine checking one inspection."""
    from appliance.bench.rules_bench import bench_rules

    settings = _settings(ctx)
    click.echo(json.dumps(bench_rules(settings.rules_file, repeat=repeat), indent=2))


@bench.command("read")
@click.option("--backend", default=None, help="Reader backend (default: configuration).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto")
@click.option("-n", "count", default=12, show_default=True)
@click.pass_context
def bench_read_cmd(ctx: click.Context, backend: str | None, device: str, count: int) -> None:
    """Time reading one 1280×960 frame (batch 1) with a backend."""
    from appliance.bench.read_bench import bench_read

    settings = _settings(ctx)
    click.echo(json.dumps(bench_read(backend=backend or settings.reader.backend, device=device,
                                     schema_file=settings.schema_file,
                                     erp_file=settings.erp_file, n=count), indent=2))


_HELD: list[object] = []  # lock handles live as long as the process


@bench.command("panel")
@click.option("-n", "count", default=100_000, show_default=True, help="Inspections stored.")
@click.option("--repeat", default=20, show_default=True)
@click.pass_context
def bench_panel_cmd(ctx: click.Context, count: int, repeat: int) -> None:
    """Time the panel's list views on a database of N inspections (p50/p95)."""
    from appliance.bench.panel_bench import bench_panel

    click.echo(json.dumps(bench_panel(_settings(ctx), count=count, repeat=repeat), indent=2))


def _serve(ctx: click.Context, name: str) -> tuple[Settings, object]:
    """Settings, logging, a stop flag, and this service's lock (one instance per run dir)."""
    from appliance.runtime import LockHeld, StopFlag, hold_lock, setup_logging

    settings = _settings(ctx)
    setup_logging(settings.log_level, name, fmt=settings.log_format)
    if name != "up":
        assert settings.run_dir is not None
        try:
            _HELD.append(hold_lock(settings.run_dir / f"{name}.lock"))
        except LockHeld as exc:
            raise click.ClickException(f"{name} is already running ({exc})") from None
    return settings, StopFlag().install()


@contextmanager
def _startup_errors() -> Iterator[None]:
    """Turn a bad schema, rules, ERP file or model folder into one clear line and exit 1."""
    from appliance.schema import SchemaError
    from erp_bridge import ErpFileError
    from rules import RulesError

    try:
        yield
    except (SchemaError, RulesError, ErpFileError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--station", required=True, help="Station id from the configuration.")
@click.pass_context
def camera(ctx: click.Context, station: str) -> None:
    """Run the capture daemon of one station."""
    from camera import run_camera

    settings, stop = _serve(ctx, f"camera-{station}")
    try:
        settings.station(station)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    with _startup_errors():
        run_camera(settings, station, stop)  # type: ignore[arg-type]


@main.command()
@click.pass_context
def infer(ctx: click.Context) -> None:
    """Run the resident inference process."""
    from appliance.infer import run_inference

    settings, stop = _serve(ctx, "infer")
    with _startup_errors():
        run_inference(settings, stop)  # type: ignore[arg-type]


@main.command()
@click.pass_context
def record(ctx: click.Context) -> None:
    """Run the recorder: rules, storage and reshoot orders."""
    from appliance.record import run_recorder

    settings, stop = _serve(ctx, "record")
    with _startup_errors():
        run_recorder(settings, stop)  # type: ignore[arg-type]


@main.command()
@click.pass_context
def panel(ctx: click.Context) -> None:
    """Run the operator panel (HTTP)."""
    from appliance.panel import run_panel
    from appliance.panel.app import PanelExposed

    settings, _ = _serve(ctx, "panel")
    try:
        run_panel(settings)
    except PanelExposed as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.pass_context
def up(ctx: click.Context) -> None:
    """Run the whole appliance: every service as a supervised child process."""
    from appliance.supervisor import AlreadyRunning, Supervisor, acquire_lock, service_specs

    settings, stop = _serve(ctx, "up")
    try:
        lock = acquire_lock(settings.data_dir)
    except AlreadyRunning as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"panel: http://{settings.panel.host}:{settings.panel.port}", err=True)
    try:
        Supervisor(service_specs(settings, settings.config_file),
                   settings=settings).run(stop)  # type: ignore[arg-type]
    finally:
        lock.close()


@main.command()
@click.option("--rate", "rate_hz", default=3.0, show_default=True, help="Triggers per second.")
@click.option("--seconds", default=600.0, show_default=True, help="How long the line runs.")
@click.option("--kill", "kills", multiple=True, metavar="AT_S:TARGET",
              help="Fault: kill -9 TARGET (record, infer, camera-line1, up) or 'stop' "
              "(graceful stop and start) at AT_S seconds; repeatable.")
@click.option("--fill-disk", default=None, metavar="FROM_S:UNTIL_S",
              help="Fill the data folder's file system from FROM_S until UNTIL_S seconds "
              "(use --data-dir on a small tmpfs).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--backend", default="ppocr", show_default=True)
@click.option("--drain-timeout", default=900.0, show_default=True,
              help="Seconds to wait for the backlog to be stored after the line stops.")
def soak(rate_hz: float, seconds: float, kills: tuple[str, ...], fill_disk: str | None,
         data_dir: Path | None, workdir: Path | None, backend: str,
         drain_timeout: float) -> None:
    """Run a triggered line against a scratch appliance with faults; check captured = stored."""
    import tempfile

    from appliance.soak import SoakPlan, run_soak

    def pair(text: str) -> tuple[float, str]:
        at, _, what = text.partition(":")
        try:
            return float(at), what
        except ValueError:
            raise click.BadParameter(f"{text!r}: expected AT_S:TARGET") from None

    fill = None
    if fill_disk:
        start, until = pair(fill_disk)
        fill = (start, float(until))
    plan = SoakPlan(rate_hz=rate_hz, seconds=seconds, kills=[pair(k) for k in kills],
                    fill_disk=fill, backend=backend, drain_timeout_s=drain_timeout)
    folder = workdir or Path(tempfile.mkdtemp(prefix="nameplate-soak-"))
    report = run_soak(plan, workdir=folder, data_dir=data_dir,
                      log=lambda line: click.echo(line, err=True))
    click.echo(json.dumps(report.as_dict(), indent=2))
    sys.exit(0 if report.ok else 1)


for _command in [*MODEL_COMMANDS, *OPS_COMMANDS]:
    main.add_command(_command)

if __name__ == "__main__":
    main()
