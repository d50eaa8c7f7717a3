"""Reading results: AsyncResult, ResultSet and GroupResult, as in Celery."""

from __future__ import annotations

import builtins
import contextlib
import contextvars
import importlib
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from celeriac.protocol.results import EncodedException, ResultRecord
from celeriac.protocol.states import (
    FAILURE,
    PENDING,
    PROPAGATE_STATES,
    READY_STATES,
    SUCCESS,
)

from .aio.results import AsyncGroupResultMixin, AsyncResultMixin
from .exceptions import IncompleteStream, RemoteError
from .exceptions import TimeoutError as ResultTimeout

if TYPE_CHECKING:
    from .app import App

__all__ = [
    "AsyncResult",
    "GroupResult",
    "ResultSet",
    "allow_join_result",
    "denied_join_result",
    "exception_from",
    "result_from_tuple",
]

# Whether result.get() may wait inside a running task: None follows the default (it may not,
# in a worker); allow_join_result/denied_join_result set it for a block.
_join_allowed: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "celeriac_join_allowed", default=None
)


@contextlib.contextmanager
def allow_join_result() -> Iterator[None]:
    """Within the block, ``get()`` inside a task waits instead of raising (Celery's)."""
    token = _join_allowed.set(True)
    try:
        yield
    finally:
        _join_allowed.reset(token)


@contextlib.contextmanager
def denied_join_result() -> Iterator[None]:
    """Within the block, ``get()`` raises as it does inside a task (Celery's)."""
    token = _join_allowed.set(False)
    try:
        yield
    finally:
        _join_allowed.reset(token)


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

    def __init__(
        self,
        task_id: str,
        app: App | None = None,
        parent: AsyncResult[Any] | None = None,
        *,
        backend: Any = None,
        task_name: str | None = None,
    ) -> None:
        if backend is not None:
            raise TypeError("AsyncResult(backend=...): results are read from the app's backend")
        if app is None:
            from .app import get_current_app

            app = get_current_app()  # AsyncResult(task_id) reads from the current app, as Celery
        self.id = task_id
        self.app = app
        self.parent = parent
        self.task_name = task_name

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

    @property
    def date_done(self) -> Any:
        """When the task finished (None until it is ready)."""
        return self._record().date_done

    # What ``result_extended`` stores with a result (None without it), as Celery's.
    @property
    def name(self) -> str | None:
        """The task's name."""
        return self._record().extended.get("name") or self.task_name

    @property
    def args(self) -> Any:
        """The positional arguments the task was called with."""
        return self._record().extended.get("args")

    @property
    def kwargs(self) -> Any:
        """The keyword arguments the task was called with."""
        return self._record().extended.get("kwargs")

    @property
    def worker(self) -> str | None:
        """The worker that ran the task."""
        return self._record().extended.get("worker")

    @property
    def retries(self) -> int | None:
        """How often the task was retried."""
        return self._record().extended.get("retries")

    @property
    def queue(self) -> str | None:
        """The queue the task came from."""
        return self._record().extended.get("queue")

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 0.5,
        no_ack: bool = True,
        follow_parents: bool = True,
        disable_sync_subtasks: bool = True,
    ) -> R:
        """Wait for the result; re-raise the task's exception when ``propagate``.

        Raises ``celeriac.exceptions.TimeoutError`` (also a built-in TimeoutError) after
        ``timeout`` seconds. Inside a task run by a worker it raises RuntimeError, as Celery
        does (waiting there can deadlock the worker), unless ``disable_sync_subtasks=False``.
        With ``follow_parents``, a failed parent's error is raised first. ``interval`` and
        ``no_ack`` are accepted for Celery's sake: backends here wait without polling.
        """
        if disable_sync_subtasks:
            _refuse_inside_a_task()
        if follow_parents and propagate and self.parent is not None:
            self.parent._raise_if_failed()
        try:
            record = self.app.backend.wait(self.id, timeout=timeout)
        except ResultTimeout:
            raise
        except builtins.TimeoutError as late:
            raise ResultTimeout(str(late) or "The operation timed out.") from None
        if record.status in PROPAGATE_STATES and record.exception is not None:
            exc = exception_from(record.exception)
            if propagate:
                raise exc
            return exc  # type: ignore[return-value]
        value: R = record.result
        return value

    wait = get

    def _raise_if_failed(self) -> None:
        if self.parent is not None:
            self.parent._raise_if_failed()
        record = self._record()
        if record.status in PROPAGATE_STATES and record.exception is not None:
            raise exception_from(record.exception)

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

    def as_tuple(self) -> tuple[Any, None]:
        """The result as Celery names it in stored records: ``((id, parent tuple), None)``."""
        return (self.id, self.parent.as_tuple() if self.parent is not None else None), None

    @property
    def children(self) -> list[AsyncResult[Any] | GroupResult[Any]] | None:
        """The results of the tasks and groups this task sent while it ran, as its worker
        recorded them; None while the task has no record (Celery's)."""
        record = self._record()
        if record.status == PENDING and not record.children:
            return None
        return [result_from_tuple(child, self.app) for child in record.children]

    def iterdeps(
        self, intermediate: bool = False
    ) -> Iterator[tuple[Any, AsyncResult[Any] | GroupResult[Any]]]:
        """``(parent, result)`` for this result and, once each is ready, its children, breadth
        first; raises IncompleteStream at one not ready, unless ``intermediate``."""
        stack: deque[tuple[Any, AsyncResult[Any] | GroupResult[Any]]] = deque([(None, self)])
        while stack:
            parent, node = stack.popleft()
            yield parent, node
            if node.ready():
                stack.extend((node, child) for child in node.children or [])
            elif not intermediate:
                raise IncompleteStream()

    def collect(
        self, intermediate: bool = False, **kwargs: Any
    ) -> Iterator[tuple[AsyncResult[Any] | GroupResult[Any], Any]]:
        """``(result, value)`` for this result and every result under it (its children, theirs,
        ...), as Celery's: ``get(**kwargs)`` of each."""
        for _, node in self.iterdeps(intermediate=intermediate):
            yield node, node.get(**kwargs)

    def revoke(self, terminate: bool = False, signal: str = "SIGTERM") -> None:
        """Ask every worker not to run (or, with terminate, to stop) this task."""
        self.app.control.revoke(self.id, terminate=terminate, signal=signal)


class ResultSet(Generic[R]):
    """Several results read together (Celery's ``ResultSet``): a ``ResultSet[R]`` of
    ``AsyncResult[R]`` handles, whose ``get()`` is a ``list[R]``."""

    def __init__(self, results: Sequence[AsyncResult[R]], app: App | None = None) -> None:
        self.results = list(results)
        self.app = app if app is not None else (self.results[0].app if self.results else None)

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[AsyncResult[R]]:
        return iter(self.results)

    def __getitem__(self, index: int) -> AsyncResult[R]:
        return self.results[index]

    def add(self, result: AsyncResult[R]) -> None:
        """Add a result (once)."""
        if result not in self.results:
            self.results.append(result)

    def remove(self, result: AsyncResult[Any] | str) -> None:
        """Remove a result, or the result of a task id; KeyError if it is not here."""
        found = [r for r in self.results if r == result or r.id == result]
        if not found:
            raise KeyError(result)
        self.results.remove(found[0])

    def discard(self, result: AsyncResult[Any] | str) -> None:
        """Remove a result if it is here."""
        try:
            self.remove(result)
        except KeyError:
            pass

    def clear(self) -> None:
        """Remove every result."""
        self.results.clear()

    def ready(self) -> bool:
        """True when every task is ready."""
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        """True when every task succeeded."""
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        """True when any task failed."""
        return any(r.failed() for r in self.results)

    def waiting(self) -> bool:
        """True when any task is not ready yet."""
        return not self.ready()

    def completed_count(self) -> int:
        """How many tasks succeeded."""
        return sum(r.successful() for r in self.results)

    def forget(self) -> None:
        """Delete every stored result."""
        for r in self.results:
            r.forget()

    def revoke(self, terminate: bool = False, signal: str = "SIGTERM") -> None:
        """Revoke every task."""
        for r in self.results:
            r.revoke(terminate=terminate, signal=signal)

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 0.5,
        disable_sync_subtasks: bool = True,
        **options: Any,
    ) -> list[R]:
        """Every result, in order (waiting at most ``timeout`` in all)."""
        import time

        if disable_sync_subtasks:
            _refuse_inside_a_task()
        deadline = None if timeout is None else time.monotonic() + timeout
        out: list[R] = []
        for r in self.results:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            out.append(r.get(timeout=left, propagate=propagate, disable_sync_subtasks=False))
        return out

    join = get


class GroupResult(AsyncGroupResultMixin[R], ResultSet[R]):
    """The results of a group's tasks, in order (``GroupResult[R]``: its ``get()`` and
    ``await``-ing ``aget()`` give a ``list[R]``)."""

    #: The app ``restore`` reads from when none is given (``app.GroupResult`` sets it).
    _default_app: App | None = None

    def __init__(
        self,
        group_id: str,
        results: Sequence[AsyncResult[R]] = (),
        app: App | None = None,
        parent: AsyncResult[Any] | GroupResult[Any] | None = None,
    ) -> None:
        super().__init__(results, app if app is not None else self._default_app)
        self.id = group_id
        #: What ran before the group in a chain (its result), as on an AsyncResult.
        self.parent: AsyncResult[Any] | GroupResult[Any] | None = parent

    @property
    def children(self) -> list[AsyncResult[R]]:
        """The group's results (Celery's)."""
        return self.results

    def as_tuple(self) -> tuple[Any, list[Any]]:
        """The group as Celery names it in stored records and saved groups."""
        parent = self.parent.as_tuple() if self.parent is not None else None
        return (self.id, parent), [r.as_tuple() for r in self.results]

    def _backend(self, backend: Any) -> Any:
        if backend is not None:
            return backend
        if self.app is None:
            raise ValueError(f"{self!r} has no app to find a result backend with")
        return self.app.backend

    def save(self, backend: Any = None) -> GroupResult[R]:
        """Keep the group in the result backend, as Celery does, for ``restore(id)``."""
        self._backend(backend).save_group(self.id, self.as_tuple())
        return self

    def delete(self, backend: Any = None) -> None:
        """Delete the saved group (its tasks' results stay)."""
        self._backend(backend).delete_group(self.id)

    @classmethod
    def restore(
        cls, group_id: str, backend: Any = None, app: App | None = None
    ) -> GroupResult[Any] | None:
        """The group saved under ``group_id`` (by Celery or Celeriac), or None."""
        if app is None:
            app = cls._default_app
        if app is None:
            from .app import get_current_app

            app = get_current_app()
        tree = (backend or app.backend).restore_group(group_id)
        if tree is None:
            return None
        restored = result_from_tuple(tree, app)
        if not isinstance(restored, GroupResult):
            raise ValueError(f"the record saved under {group_id!r} is not a group")
        return restored

    def _raise_if_failed(self) -> None:
        if self.parent is not None:
            self.parent._raise_if_failed()
        for result in self.results:
            result._raise_if_failed()

    def __repr__(self) -> str:
        return f"<GroupResult: {self.id} [{', '.join(r.id for r in self.results)}]>"


def result_from_tuple(value: Any, app: App | None = None) -> Any:
    """The result a result tuple names (SPEC.md §7.2): an AsyncResult, or a GroupResult when
    it has members; parents included (Celery's ``result_from_tuple``)."""
    if isinstance(value, AsyncResult | GroupResult):
        return value
    if app is None:
        from .app import get_current_app

        app = get_current_app()
    head, members = value
    task_id, parent = (head, None) if isinstance(head, str) else head
    parent_result = result_from_tuple(parent, app) if parent else None
    if members is not None:
        return GroupResult(
            task_id, [result_from_tuple(m, app) for m in members], app, parent=parent_result
        )
    return AsyncResult(task_id, app, parent_result)


def _refuse_inside_a_task() -> None:
    from .task import current_request

    allowed = _join_allowed.get()
    request = current_request()
    inside = request.id is not None and not request.is_eager
    if allowed is False or (inside and not allowed):
        raise RuntimeError(
            "Never call result.get() within a task!\n"
            "See https://docs.celeryq.dev/en/latest/userguide/tasks.html"
            "#avoid-launching-synchronous-subtasks"
        )
