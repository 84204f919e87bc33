"""``nameplate synth``, ``eval`` and ``finetune``: making and measuring the reader (the
commands import the ``training`` wing only when run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from appliance.cli_common import cli_settings as _settings


@click.command()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write images/ and labels.jsonl into.")
@click.option("-n", "count", required=True, type=click.IntRange(1), help="Number of frames.")
@click.option("--seed", default=0, show_default=True, help="Same seed, same images.")
@click.option("--schema", "schema_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Plate family schema (default: configuration).")
@click.option("--split", type=click.Choice(["train", "dev", "heldout", "station",
                                           "station-heldout"]), default="train",
              show_default=True, help="heldout and station-heldout render with fonts and "
                                      "layouts kept out of training.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1))
@click.option("--crops", is_flag=True, help="Also write rectified text-line crops.")
@click.option("--sheet", "sheet", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a contact sheet PNG of the first 48 frames.")
@click.pass_context
def synth(ctx: click.Context, out: Path, count: int, seed: int, schema_file: Path | None,
          split: str, workers: int, crops: bool, sheet: Path | None) -> None:
    """Render synthetic nameplate frames with complete labels."""
    from appliance.schema import SchemaError, load_schema
    from appliance.synth.dataset import contact_sheet, write_dataset

    path = schema_file or _settings(ctx).schema_file
    try:
        load_schema(path)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None
    summary = write_dataset(out, n=count, seed=seed, schema_file=path, split=split,
                            workers=workers, crops=crops)
    if sheet:
        contact_sheet(out, sheet)
    click.echo(json.dumps(summary, indent=2))


@click.command("eval")
@click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Trained reader folder (default: the shipped one).")
@click.option("--backend", "backends", multiple=True, default=["ppocr"], show_default=True,
              help="Repeat to measure several readers on the same frames (e.g. "
                   "--backend ppocr --backend rapidocr).")
@click.option("--split", type=click.Choice(["dev", "heldout", "station", "station-heldout"]),
              default="dev")
@click.option("-n", "count", default=100, show_default=True)
@click.option("--seed", default=2026, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto")
@click.option("--workers", default=2, show_default=True)
@click.option("--reliability-plot", "plot", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Draw confidence against share right (PNG), per backend.")
@click.option("--reshoots/--no-reshoots", default=True, show_default=True,
              help="Take a unit the rules ask to reshoot through its reshoots (the same plate "
                   "photographed again, earlier frames' evidence combined as the recorder "
                   "does); --no-reshoots judges each first frame as the final attempt.")
@click.option("--compile/--no-compile", "compile_networks", default=True, show_default=True,
              help="On a CPU, read as the appliance does by default: the networks compiled "
                   "(minutes at load), the detector at 1280 px; --no-compile: uncompiled, "
                   "960 px.")
@click.pass_context
def eval_cmd(ctx: click.Context, model_dir: Path | None, backends: tuple[str, ...], split: str,
             count: int, seed: int, device: str, workers: int, plot: Path | None,
             reshoots: bool, compile_networks: bool) -> None:
    """Measure readers on rendered plates: legible values in the text runs, field exact
    match, model+serial, latency, and the verdicts the shipped rules give (good units PASS /
    MISMATCH / RESHOOT / REVIEW at the final attempt, after their reshoots; records with one
    character changed that PASS; with reader.verify_known, verify judges both records as in
    the appliance), and how well confidence is calibrated (ECE, reliability bins). Several
    backends read the very same frames."""
    from appliance.reader import load_reader
    from appliance.reader.base import compile_gains
    from appliance.schema import load_schema
    from appliance.synth.dataset import iter_samples
    from rules import load_rules
    from training.evaluate import evaluate

    settings = _settings(ctx)
    options: dict[str, Any] = {"compile_networks": compile_networks and compile_gains(device)}
    if model_dir:
        options["model_dir"] = model_dir
    samples = list(iter_samples(settings.schema_file, seed=seed, split=split, n=count,
                                workers=workers))
    rules = load_rules(settings.rules_file)
    family = load_schema(settings.schema_file).name
    curves: dict[str, Any] = {}
    for backend in backends:
        try:
            reader = load_reader(backend, schema=load_schema(settings.schema_file),
                                 device=device, **options)
        except (ImportError, FileNotFoundError, ValueError) as exc:
            raise click.ClickException(f"backend {backend}: {exc}") from None
        report = evaluate(reader, settings.schema_file, split=split, samples=samples,
                          seed=seed, rules=rules, family=family,
                          verify=settings.reader.verify_known, reshoots=reshoots)
        click.echo(json.dumps(report, indent=2))
        curves[backend] = report["calibration"]["reliability"]
    if plot is not None:
        from training.calibrate.plot import plot_bins

        click.echo(f"reliability plot: {plot_bins(curves, plot)}")


@click.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="New folder for the fine-tuned reader (must not exist).")
@click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Reader to start from (default: the shipped one).")
@click.option("--steps", default=200, show_default=True, help="Training steps.")
@click.option("--lr", default=3e-4, show_default=True,
              help="Learning rate, relative to each weight tensor's RMS.")
@click.option("--batch", default=32, show_default=True,
              help="Lines per step (a quarter from the photos, the rest synthetic).")
@click.option("--rehearsal", default=80, show_default=True,
              help="Synthetic frames rendered for rehearsal lines.")
@click.option("--dev", "dev_frames", default=40, show_default=True,
              help="Synthetic dev frames read before and after (the guard).")
@click.option("--tolerance", default=0.01, show_default=True,
              help="Largest drop in dev field exact match accepted (0.01 = 1 point).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto")
@click.option("--workers", default=2, show_default=True, help="Render workers.")
@click.pass_context
def finetune(ctx: click.Context, folder: Path, out: Path, model_dir: Path | None, steps: int,
             lr: float, batch: int, rehearsal: int, dev_frames: int,
             tolerance: float, device: str, workers: int) -> None:
    """Fine-tune the reader on FOLDER's labelled photos (NAME.jpg + NAME.json, the panel's
    correction format); refused, writing nothing, if the synthetic dev set gets worse."""
    from appliance.reader import resolve_device
    from training.photos import FinetuneError
    from training.ppocr.plant import finetune as run_finetune

    settings = _settings(ctx)
    try:
        report = run_finetune(folder, out, schema_file=settings.schema_file,
                              model_dir=model_dir, steps=steps, lr=lr, batch=batch,
                              rehearsal_frames=rehearsal, dev_frames=dev_frames,
                              tolerance=tolerance, device=resolve_device(device),
                              workers=workers)
    except FinetuneError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(report, indent=2))
    if not report["accepted"]:
        click.echo(f"refused: {report['refused']}", err=True)
        sys.exit(3)


MODEL_COMMANDS = [synth, eval_cmd, finetune]
