"""Settings of the Django example: one SQLite database, no apps of its own."""

SECRET_KEY = "example-only"
DEBUG = True
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "examples.django_app.urls"
INSTALLED_APPS: list[str] = []
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
