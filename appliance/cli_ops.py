"""Operations commands: ``check`` a reading, ``status`` (health), ``store prune|backup|check``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from appliance.cli_common import cli_settings


class _ReadField(BaseModel):
    model_config = ConfigDict(extra="ignore")
    value: str | None = None
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)


class ReadingFile(BaseModel):
    """What ``nameplate check --reading`` accepts: ``nameplate read --json``'s output."""

    model_config = ConfigDict(extra="ignore")
    fields: dict[str, _ReadField]
    error: str | None = None


class ExpectedFile(BaseModel):
    """What ``--expected`` accepts: ``{"fields": {field: value}}`` (or the bare mapping)."""

    model_config = ConfigDict(extra="forbid")
    fields: dict[str, str]


def _load(path: Path, model: type[BaseModel], *, bare_key: str | None = None) -> Any:
    """Parse and validate a JSON file; any problem is one line naming the file and the key."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: cannot read: {exc}") from None
    except ValueError as exc:
        raise click.ClickException(f"{path}: not JSON: {exc}") from None
    if bare_key and isinstance(data, dict) and bare_key not in data:
        data = {bare_key: data}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise click.ClickException(f"{path}: {where}: {first['msg']}{more}") from None


@click.command()
@click.option("--reading", "reading_files", required=True, multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A reading: the JSON `nameplate read --json` prints. Repeat for the frames "
                   "of one plate's reshoots, in order: each is judged with the earlier ones, "
                   "as the recorder does, until one is not a RESHOOT.")
@click.option("--expected", "expected_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The ERP record: JSON object of field → value (or {\"fields\": {...}}).")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Rules file (default: configuration).")
@click.option("--family", default=None, help="Plate family (default: the schema's name).")
@click.option("--attempt", default=0, show_default=True,
              help="Reshoots already made before the first reading.")
@click.pass_context
def check(ctx: click.Context, reading_files: tuple[Path, ...], expected_file: Path | None,
          rules_file: Path | None, family: str | None, attempt: int) -> None:
    """Check readings against an expected record and print the verdict as JSON."""
    from appliance.schema import load_schema
    from rules import FieldCheck, RulesError, evaluate, load_rules

    settings = cli_settings(ctx)
    try:
        rules = load_rules(rules_file or settings.rules_file)
    except RulesError as exc:
        raise click.ClickException(str(exc)) from None
    readings: list[ReadingFile] = [_load(path, ReadingFile) for path in reading_files]
    expected = None
    if expected_file is not None:
        expected = _load(expected_file, ExpectedFile, bare_key="fields").fields
    family = family or load_schema(settings.schema_file).name
    earlier: dict[int, dict[str, FieldCheck]] = {}
    for number, reading in enumerate(readings, start=attempt):
        fields = {name: f.model_dump() for name, f in reading.fields.items()}
        try:
            decision = evaluate(fields, expected, rules, family=family, attempt=number,
                                read_error=reading.error, earlier=earlier)
        except KeyError as exc:
            raise click.ClickException(str(exc.args[0])) from None
        if decision.verdict.value != "RESHOOT":
            break
        earlier[number] = decision.fields
    click.echo(decision.model_dump_json(indent=2))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="The whole report as JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Health of the running appliance; exit status 1 when anything is wrong."""
    from appliance.health import assess_health

    report = assess_health(cli_settings(ctx))
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        for name, state in report["services"].items():
            shown = (state or {}).get("state", "missing")
            click.echo(f"{name:<20} {shown}")
        for problem in report["problems"]:
            click.echo(f"PROBLEM {problem['service']}: {problem['problem']}: {problem['detail']}")
        click.echo("healthy" if report["healthy"] else "UNHEALTHY")
    sys.exit(0 if report["healthy"] else 1)


@click.group()
def store() -> None:
    """Maintain the database and images: prune, backup, check."""


@store.command("prune")
@click.option("--dry-run", is_flag=True, help="Say what would go, delete nothing.")
@click.pass_context
def store_prune(ctx: click.Context, dry_run: bool) -> None:
    """Delete images past their retention (flagged verdicts kept longer), then oldest
    unflagged images while over the size cap. Rows stay; their image_path is cleared."""
    from appliance.store.maintenance import prune_images

    settings = cli_settings(ctx)
    report = prune_images(settings.data_dir, retention=settings.storage, dry_run=dry_run)
    click.echo(json.dumps(report, indent=2))


@store.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def store_backup(ctx: click.Context, target: Path) -> None:
    """Copy the database to TARGET consistently while the appliance runs (SQLite backup)."""
    from appliance.store.maintenance import backup_database

    settings = cli_settings(ctx)
    click.echo(json.dumps(backup_database(settings.data_dir / "appliance.db", target)))


@store.command("check")
@click.pass_context
def store_check(ctx: click.Context) -> None:
    """Integrity of the database and the journals, images missing, spool waiting."""
    from appliance.store.maintenance import check_store

    settings = cli_settings(ctx)
    report = check_store(settings.data_dir)
    click.echo(json.dumps(report, indent=2))
    sys.exit(0 if report["ok"] else 1)


@click.group()
def keys() -> None:
    """CURVE keys for tcp:// endpoints across hosts."""


@keys.command("generate")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def keys_generate(folder: Path) -> None:
    """Create the appliance's certificate in FOLDER and authorise it (copy FOLDER to each
    host, then set security.curve = true and security.keys_dir = FOLDER)."""
    from appliance.transport.security import generate_keys

    public = generate_keys(folder)
    click.echo(f"public key {public}; secret key {folder / 'appliance.key_secret'} (mode 600)")


@click.group()
def outbox() -> None:
    """Results out: what waits for which sink, and retrying now."""


@outbox.command("status")
@click.pass_context
def outbox_status_cmd(ctx: click.Context) -> None:
    """Per sink: delivered, waiting, age of the oldest waiting, last error."""
    from appliance.outbox import outbox_status

    settings = cli_settings(ctx)
    click.echo(json.dumps(outbox_status(settings.data_dir / "appliance.db"), indent=2))


@outbox.command("retry")
@click.option("--sink", default=None, help="Only this sink.")
@click.pass_context
def outbox_retry_cmd(ctx: click.Context, sink: str | None) -> None:
    """Make every waiting event due now (after a sink was fixed)."""
    from appliance.outbox import retry_failed

    settings = cli_settings(ctx)
    click.echo(json.dumps({"due_now": retry_failed(settings.data_dir / "appliance.db", sink)}))


@click.group()
def erp() -> None:
    """Expected records from the ERP: sync now, or see how the last syncs went."""


@erp.command("sync")
@click.pass_context
def erp_sync_cmd(ctx: click.Context) -> None:
    """Sync the configured ERP source once (for a systemd timer or cron); exit 1 on failure."""
    from appliance.record.erp import ErpSync
    from appliance.schema import load_schema
    from appliance.store import Store

    settings = cli_settings(ctx)
    store = Store(settings.data_dir / "appliance.db")
    sync = ErpSync(settings, store, load_schema(settings.schema_file).field_names())
    result = sync.run()
    click.echo(json.dumps(dict(result, source=sync.name), default=str))
    sys.exit(0 if result["state"] == "ok" else 1)


@erp.command("status")
@click.pass_context
def erp_status_cmd(ctx: click.Context) -> None:
    """Each source's last success, rows, cursor, last error and age; records loaded."""
    import time
    from datetime import datetime

    from appliance.store import Store

    settings = cli_settings(ctx)
    store = Store(settings.data_dir / "appliance.db")
    sources = list(store.db.table("erp_sync").rows)
    for source in sources:
        if source.get("last_success"):
            age = time.time() - datetime.fromisoformat(source["last_success"]).timestamp()
            source["age_s"] = round(age, 1)
    click.echo(json.dumps({"records": store.expected_count(), "sources": sources}, indent=2))


@click.group()
def user() -> None:
    """Panel accounts (roles: viewer, operator, supervisor, admin) and machine tokens."""


@contextmanager
def _account_errors() -> Iterator[None]:
    """An account operation's refusal as one line and exit status 1."""
    from appliance.panel.accounts import AccountError

    try:
        yield
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["viewer", "operator", "supervisor", "admin"]),
              default="operator", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.pass_context
def user_add(ctx: click.Context, username: str, role: str, password_stdin: bool) -> None:
    """Create an account (the password is stored only as an argon2 hash)."""
    from appliance.panel.accounts import add_user

    settings = cli_settings(ctx)
    with _account_errors():
        add_user(settings.data_dir / "appliance.db", username, _password(password_stdin), role)
    click.echo(f"user {username} ({role}) added")


@user.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.pass_context
def user_passwd(ctx: click.Context, username: str, password_stdin: bool) -> None:
    """Change an account's password."""
    from appliance.panel.accounts import set_password

    settings = cli_settings(ctx)
    with _account_errors():
        set_password(settings.data_dir / "appliance.db", username, _password(password_stdin))
    click.echo(f"password of {username} changed")


@user.command("list")
@click.pass_context
def user_list(ctx: click.Context) -> None:
    """Accounts and roles."""
    from appliance.panel.accounts import list_users

    settings = cli_settings(ctx)
    click.echo(json.dumps(list_users(settings.data_dir / "appliance.db"), indent=2))


@user.command("remove")
@click.argument("username")
@click.pass_context
def user_remove(ctx: click.Context, username: str) -> None:
    """Delete an account."""
    from appliance.panel.accounts import remove_user

    settings = cli_settings(ctx)
    with _account_errors():
        remove_user(settings.data_dir / "appliance.db", username)
    click.echo(f"user {username} removed")


@user.command("token")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator", "supervisor", "admin"]),
              default="viewer", show_default=True)
@click.pass_context
def user_token(ctx: click.Context, name: str, role: str) -> None:
    """Create a machine token (printed once; send it as 'Authorization: Bearer …')."""
    from appliance.panel.accounts import add_token

    settings = cli_settings(ctx)
    click.echo(add_token(settings.data_dir / "appliance.db", name, role))


OPS_COMMANDS = [check, status, store, keys, outbox, erp, user]
