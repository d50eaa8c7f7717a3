"""``einfo``: the exception a task raised, with its formatted traceback, as Celery's hooks and
signals (``on_failure``, ``on_retry``, ``task_failure``, ``task_retry``) receive it."""

from __future__ import annotations

import traceback as tb
from types import TracebackType

__all__ = ["ExceptionInfo"]


class ExceptionInfo:
    """An exception and its traceback (Celery's ``billiard.einfo.ExceptionInfo`` shape):
    ``type``, ``exception``, ``tb``, ``traceback`` (the text), ``exc_info`` and ``internal``
    (True when the worker, not the task, raised it)."""

    def __init__(self, exception: BaseException, internal: bool = False) -> None:
        self.type: type[BaseException] = type(exception)
        self.exception = exception
        self.tb: TracebackType | None = exception.__traceback__
        self.internal = internal
        try:
            self.traceback = "".join(tb.format_exception(exception))
        except Exception:  # user code: its __str__ may raise
            self.traceback = f"{self.type.__qualname__} (its traceback could not be formatted)"

    @property
    def exc_info(self) -> tuple[type[BaseException], BaseException, TracebackType | None]:
        """The ``sys.exc_info()`` triple."""
        return self.type, self.exception, self.tb

    def __str__(self) -> str:
        return self.traceback

    def __repr__(self) -> str:
        return f"<ExceptionInfo: {self.exception!r}>"
