"""Finding the user's app from ``-A``, as Celery's command line finds it."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType

import click

from ..app import App

__all__ = ["app_option", "find_app", "load_app", "preloaded"]

# The app ``App.start``/``App.worker_main`` run the command line for, used when no -A is given.
_preloaded: list[App] = []


@contextlib.contextmanager
def preloaded(app: App) -> Iterator[None]:
    """Within the block, commands given no ``-A`` use ``app`` (``App.start`` runs them so)."""
    _preloaded.append(app)
    try:
        yield
    finally:
        _preloaded.remove(app)


def find_app(spec: str) -> App:
    """The app ``spec`` names, found as ``celery -A`` finds it: ``module:attr``, or
    ``module.attr``, or a module whose ``app`` or ``celery`` attribute is the app, or a
    package whose ``celery`` submodule holds it (``proj`` -> ``proj.celery``), or the one app
    a module holds."""
    if ":" in spec:
        module_name, _, attribute = spec.partition(":")
        found: object = _attribute(importlib.import_module(module_name), attribute, spec)
    else:
        try:
            found = importlib.import_module(spec)
        except ModuleNotFoundError as exc:
            module_name, _, attribute = spec.rpartition(".")
            if not module_name or exc.name != spec:
                raise
            found = _attribute(importlib.import_module(module_name), attribute, spec)
    if isinstance(found, ModuleType):
        found = _app_in(found, spec)
    if not isinstance(found, App):
        raise LookupError(f"{spec!r} is a {type(found).__name__}, not a celeriac.App")
    return found


def _attribute(module: ModuleType, path: str, spec: str) -> object:
    found: object = module
    for part in path.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise LookupError(f"{spec!r}: {found!r} has no attribute {part!r}") from None
    return found


def _app_in(module: ModuleType, spec: str) -> App:
    for attribute in ("app", "celery"):
        candidate = getattr(module, attribute, None)
        if isinstance(candidate, App):
            return candidate
    if hasattr(module, "__path__"):  # a package: its celery module, as Celery looks
        try:
            return find_app(f"{spec}.celery")
        except ModuleNotFoundError as exc:
            if exc.name != f"{spec}.celery":
                raise
        except LookupError:
            pass
    for value in vars(module).values():
        if isinstance(value, App):
            return value
    raise LookupError(
        f"no celeriac.App in {spec!r}: looked for its attributes app and celery"
        + (f", the module {spec}.celery" if hasattr(module, "__path__") else "")
        + " and any App it holds"
    )


def load_app(spec: str | None, broker: str | None = None) -> App:
    """Import the app named by ``spec`` and finalize it (its ``include``/``imports`` modules
    and discovered tasks are imported); without a spec, the one given before the command
    (``celeriac -A proj worker``), else an App with the default settings."""
    spec = spec or _given_before_command("app_spec")
    broker = broker or _given_before_command("broker")
    if spec is None and _preloaded:
        app = _preloaded[-1]
        if broker:
            app.conf = app.conf.replace(broker_url=broker)
        app.finalize()
        return app
    if spec is None:
        return App(broker=broker) if broker else App()
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as Celery: the app is looked for from where we run
    try:
        app = find_app(spec)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {spec!r}: {exc}", param_hint="-A") from exc
    except LookupError as exc:
        raise click.BadParameter(str(exc), param_hint="-A") from exc
    if broker:
        app.conf = app.conf.replace(broker_url=broker)
    app.finalize()
    return app


def _given_before_command(name: str) -> str | None:
    """An option given to ``celeriac`` itself, before the command name (Celery's place)."""
    ctx = click.get_current_context(silent=True)
    given = ctx.find_root().obj if ctx is not None else None
    return given.get(name) if isinstance(given, dict) else None


app_option = click.option(
    "-A",
    "--app",
    "app_spec",
    metavar="APP",
    help="The app: module:attribute, module.attribute, or a module or package holding it "
    "(proj finds proj.app, proj.celery, or the app in proj/celery.py), as celery -A.",
)
broker_option = click.option("-b", "--broker", help="Broker URL (overrides the app's).")
