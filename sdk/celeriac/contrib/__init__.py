"""Helpers under Celery's ``celery.contrib`` paths (``celeriac.contrib.testing``), and for web
frameworks: ``celeriac.contrib.django``, ``celeriac.contrib.flask``."""
