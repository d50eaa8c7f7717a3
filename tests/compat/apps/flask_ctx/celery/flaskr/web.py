"""A stand-in for Flask: an app object with config, extensions and an app context."""

import contextlib
import contextvars

_current = contextvars.ContextVar("current_web_app")


class WebApp:
    def __init__(self, name):
        self.name = name
        self.config = {}
        self.extensions = {}

    @contextlib.contextmanager
    def app_context(self):
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)


def current_web_app():
    return _current.get(None)
