"""Finding the user's app from ``-A module:attribute`` (or ``module``, which holds an App)."""

from __future__ import annotations

import importlib
import os
import sys

import click

from ..app import App

__all__ = ["app_option", "load_app"]


def load_app(spec: str | None, broker: str | None = None) -> App:
    """Import the app named by ``spec``; without one, an App with the default settings."""
    if spec is None:
        return App(broker=broker) if broker else App()
    sys.path.insert(0, os.getcwd())
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}", param_hint="-A") from exc
    app: object
    if attribute:
        app = getattr(module, attribute, None)
    else:
        found = [v for v in vars(module).values() if isinstance(v, App)]
        app = found[0] if len(found) == 1 else getattr(module, "app", None)
    if not isinstance(app, App):
        raise click.BadParameter(f"{spec!r} does not name a celeriac.App", param_hint="-A")
    if broker:
        app.conf = app.conf.replace(broker_url=broker)
    return app


app_option = click.option(
    "-A", "--app", "app_spec", metavar="MODULE[:APP]", help="The app: module:attribute."
)
broker_option = click.option("-b", "--broker", help="Broker URL (overrides the app's).")
