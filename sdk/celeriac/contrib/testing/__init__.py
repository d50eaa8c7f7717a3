"""Testing helpers under Celery's ``celery.contrib.testing`` path."""
