"""Helpers under Celery's ``celery.contrib`` paths."""
