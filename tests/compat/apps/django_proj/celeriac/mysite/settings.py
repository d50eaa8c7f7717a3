import os

SECRET_KEY = "compat-suite"
DEBUG = True
INSTALLED_APPS = ["django.contrib.contenttypes", "polls"]
USE_TZ = True
TIME_ZONE = "UTC"
# Not prefixed with CELERY_: Celery's namespace leaves it alone (it would break the tests).
BROKER_URL = "memory://not-for-celery"

CELERY_BROKER_URL = os.environ.get("COMPAT_BROKER_URL")
CELERY_RESULT_BACKEND = os.environ.get("COMPAT_BACKEND_URL")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("COMPAT_QUEUE", "celery")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_EXTENDED = True
CELERY_TIMEZONE = TIME_ZONE
