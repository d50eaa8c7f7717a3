"""Helpers for web frameworks: ``celeriac.contrib.django``, ``celeriac.contrib.flask``."""
