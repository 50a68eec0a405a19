"""What one invocation's global options resolved to, and how a command reads it.

Every area module (`cli.kafka`, `cli.etl`, ...) reads the invocation's settings through
`settings_of`, `source_of` or `state_of`; the typer app in `cli.app` only builds the `CliState`.
Nothing heavy is imported here, so ``harmscan --help`` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from cli.failures import USAGE, fail
from conf.loader import SettingsError, SettingsSource
from conf.settings import Settings


class CliState:
    """What the global options resolved to; settings are built once, on first use."""

    def __init__(
        self, profile: str | None, overrides: list[str], config: Path | None, verbose: bool = False
    ) -> None:
        self.verbose = verbose
        self.profile = profile
        self.overrides = overrides
        self.config = config
        self._source: SettingsSource | None = None
        self._settings: Settings | None = None

    @property
    def source(self) -> SettingsSource:
        """Profile, ``--config`` and ``--set`` values parsed by type: what flows are given."""
        if self._source is None:
            try:
                self._source = SettingsSource.from_cli(self.profile, self.overrides, self.config)
            except SettingsError as exc:
                raise fail(exc, USAGE) from None
        return self._source

    def settings_if_resolved(self) -> Settings | None:
        """The settings, if this invocation got as far as resolving them."""
        return self._settings

    @property
    def settings(self) -> Settings:
        """The resolved settings; a bad setting exits with its explanation."""
        if self._settings is None:
            try:
                self._settings = self.source.resolve()
            except SettingsError as exc:
                raise fail(exc, USAGE) from None
        return self._settings


def state_of(ctx: typer.Context) -> CliState:
    """The global options of this invocation."""
    state = ctx.find_root().obj
    assert isinstance(state, CliState)
    return state


def settings_of(ctx: typer.Context) -> Settings:
    """The settings resolved from the global options of this invocation."""
    return state_of(ctx).settings


def source_of(ctx: typer.Context) -> SettingsSource:
    """The settings source of this invocation (for flows), checked by resolving it once; its
    secrets travel in this process's environment, not in the flow's stored parameters."""
    state = state_of(ctx)
    _ = state.settings
    source, secrets = state.source.without_secrets()
    os.environ.update(secrets)  # the flow runs in this process: it reads them from there
    return source
