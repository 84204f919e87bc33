"""What the command-line modules share: the configuration, loaded once per command."""

from __future__ import annotations

import click

from appliance.settings import ConfigError, Settings, load_settings


def cli_settings(ctx: click.Context) -> Settings:
    """The configuration named by ``nameplate --config`` (or the default), or a clear error.

    With ``security.curve`` on, every tcp:// channel this command opens uses CURVE.
    """
    from appliance.transport.security import KeyError_, enable_curve, load_keys

    try:
        settings: Settings = load_settings(ctx.obj["config"])
    except ConfigError as exc:
        raise click.ClickException(f"configuration error\n{exc}") from None
    if settings.security.curve:
        try:
            enable_curve(load_keys(settings.security.keys_dir))
        except KeyError_ as exc:
            raise click.ClickException(f"security.curve: {exc}") from None
    return settings
