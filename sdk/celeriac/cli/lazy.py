"""A click group that imports each command's module only when that command runs.

A worker started as ``celeriac worker`` then never imports what the dashboard, the demos or the
interop checks need (rich, pygments, the web stack): a few MB less in every worker process.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click

__all__ = ["LazyGroup"]


class LazyGroup(click.Group):
    """``lazy``: command name -> ``"module:attribute"`` (relative to this package)."""

    def __init__(self, *args: Any, lazy: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.lazy, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module, __package__), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)
