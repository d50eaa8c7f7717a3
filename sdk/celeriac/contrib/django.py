"""Django helpers: send a task only once the surrounding transaction commits (Celery 5.4's
``delay_on_commit``), so a worker never reads a row that is not there yet."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ParamSpec

from django.db import transaction

if TYPE_CHECKING:
    from celeriac.task import CallArgs, Task

__all__ = ["apply_async_on_commit", "delay_on_commit"]

P = ParamSpec("P")


def delay_on_commit(task: Task[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
    """``task.delay(*args, **kwargs)`` once the current transaction of the default database
    commits (at once outside a transaction; never if it rolls back)."""
    transaction.on_commit(functools.partial(task.apply_async, args, kwargs))


def apply_async_on_commit(
    task: Task[P, Any],
    args: CallArgs | None = None,
    kwargs: Mapping[str, Any] | None = None,
    *,
    using: str | None = None,
    **options: Any,
) -> None:
    """``task.apply_async(...)`` once the transaction of database ``using`` commits."""
    transaction.on_commit(functools.partial(task.apply_async, args, kwargs, **options), using)
