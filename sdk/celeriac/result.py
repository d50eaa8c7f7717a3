"""Reading results: AsyncResult and GroupResult, as in Celery."""

from __future__ import annotations

import builtins
import importlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from celeriac.protocol.results import EncodedException, ResultRecord
from celeriac.protocol.states import FAILURE, PROPAGATE_STATES, READY_STATES, SUCCESS

from .aio.results import AsyncGroupResultMixin, AsyncResultMixin
from .exceptions import RemoteError

if TYPE_CHECKING:
    from .app import App

__all__ = ["AsyncResult", "GroupResult", "exception_from"]

R = TypeVar("R")
# Modules whose exceptions may be rebuilt by name; anything else becomes a RemoteError, so a
# result record can never make a client import arbitrary code.
_SAFE_MODULES = frozenset(("builtins", "celeriac.exceptions", "celery.exceptions"))


def exception_from(exc: EncodedException, allowed: frozenset[str] = _SAFE_MODULES) -> BaseException:
    """The exception a result record describes: the same type where it is safe to import."""
    module_name = exc.exc_module or "builtins"
    cls: Any = None
    if module_name == "celery.exceptions":
        # Records name Celery's module for Celery's exceptions (§7.3); code written for Celeriac
        # catches ours of the same name, so those come first (Celery's when we have none).
        cls = getattr(importlib.import_module("celeriac.exceptions"), exc.exc_type, None)
    if cls is None and (module_name in allowed or module_name.split(".")[0] in allowed):
        try:
            module = builtins if module_name == "builtins" else importlib.import_module(module_name)
            cls = getattr(module, exc.exc_type, None)
        except ImportError:
            cls = None
    if isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            return cls(*exc.exc_message)
        except Exception:  # a constructor that wants other arguments
            pass
    return RemoteError(exc.exc_type, exc.exc_module, tuple(exc.exc_message))


class AsyncResult(AsyncResultMixin[R], Generic[R]):
    """The result of a task that was sent: its state, and its value once it is ready."""

    def __init__(self, task_id: str, app: App, parent: AsyncResult[Any] | None = None) -> None:
        self.id = task_id
        self.app = app
        self.parent = parent

    def __repr__(self) -> str:
        return f"<AsyncResult: {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def _record(self) -> ResultRecord:
        return self.app.backend.get(self.id)

    @property
    def state(self) -> str:
        """PENDING, STARTED, SUCCESS, FAILURE, RETRY, REVOKED or a custom state."""
        return self._record().status

    status = state

    @property
    def info(self) -> Any:
        """The result, the exception, or the progress meta of a custom state."""
        record = self._record()
        if record.exception is not None:
            return exception_from(record.exception)
        return record.result

    result = info

    @property
    def traceback(self) -> str | None:
        """The worker's traceback of a failed task."""
        return self._record().traceback

    def ready(self) -> bool:
        """True once the task succeeded, failed or was revoked."""
        return self.state in READY_STATES

    def successful(self) -> bool:
        """True when the task succeeded."""
        return self.state == SUCCESS

    def failed(self) -> bool:
        """True when the task failed."""
        return self.state == FAILURE

    def get(self, timeout: float | None = None, propagate: bool = True) -> R:
        """Wait for the result; re-raise the task's exception when ``propagate``.

        Raises TimeoutError after ``timeout`` seconds.
        """
        record = self.app.backend.wait(self.id, timeout=timeout)
        if record.status in PROPAGATE_STATES and record.exception is not None:
            exc = exception_from(record.exception)
            if propagate:
                raise exc
            return exc  # type: ignore[return-value]
        value: R = record.result
        return value

    wait = get

    def iter_progress(self, timeout: float | None = None, interval: float = 0.1) -> Iterator[Any]:
        """Yield each new progress meta (``update_state``) until the task is ready."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        last: Any = object()
        while True:
            record = self._record()
            if record.status in READY_STATES:
                return
            if record.result != last and record.result is not None:
                last = record.result
                yield record.result
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"task {self.id} not ready after {timeout} s")
            time.sleep(interval)  # polling the backend for progress; no notification here

    def forget(self) -> None:
        """Delete the stored result."""
        self.app.backend.forget(self.id)

    def revoke(self, terminate: bool = False, signal: str = "SIGTERM") -> None:
        """Ask every worker not to run (or, with terminate, to stop) this task."""
        self.app.control.revoke(self.id, terminate=terminate, signal=signal)


class GroupResult(AsyncGroupResultMixin):
    """The results of a group's tasks, in order."""

    def __init__(self, group_id: str, results: Sequence[AsyncResult[Any]], app: App) -> None:
        self.id = group_id
        self.results = list(results)
        self.app = app

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[AsyncResult[Any]]:
        return iter(self.results)

    def ready(self) -> bool:
        """True when every task is ready."""
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        """True when every task succeeded."""
        return all(r.successful() for r in self.results)

    def completed_count(self) -> int:
        """How many tasks succeeded."""
        return sum(r.successful() for r in self.results)

    def get(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        """Every result, in the order of the group (waiting at most ``timeout`` in all)."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        out = []
        for r in self.results:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            out.append(r.get(timeout=left, propagate=propagate))
        return out

    join = get
