"""Helpers under Celery's ``celery.utils`` paths that applications import."""
