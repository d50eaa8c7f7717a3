"""Celery's ``celery.app.base`` path: the application class under both of its names."""

from __future__ import annotations

from . import App, Celery

__all__ = ["App", "Celery"]
