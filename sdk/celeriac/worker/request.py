"""A received task message as Celery's worker shows it (``celery.worker.request.Request``):
what ``task_received`` receivers get."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from celeriac.protocol import TaskMessage

if TYPE_CHECKING:
    from ..task import Task

__all__ = ["Request"]


class Request:
    """One received call: its id and name, its arguments and options from the message, and
    ``task``, the registered task that will run it (None for an unknown name)."""

    def __init__(
        self, message: TaskMessage, task: Task[Any, Any] | None, queue: str, hostname: str
    ) -> None:
        self.message = message
        self.id = message.id
        self.name = message.task
        self.task = task
        self.hostname = hostname
        self.delivery_info: Mapping[str, Any] = {
            "exchange": "",
            "routing_key": queue,
            "priority": message.properties.priority,
            "redelivered": False,
        }

    task_id = property(lambda self: self.id, doc="The task id (``id``).")
    task_name = property(lambda self: self.name, doc="The task name (``name``).")
    type = property(lambda self: self.name, doc="The task name, as the message gives it.")

    @property
    def args(self) -> Sequence[Any]:
        """The positional arguments."""
        return self.message.args

    @property
    def kwargs(self) -> Mapping[str, Any]:
        """The keyword arguments."""
        return self.message.kwargs

    @property
    def argsrepr(self) -> str:
        """How the client showed the arguments (their repr when it did not say)."""
        return self.message.headers.argsrepr or repr(self.args)

    @property
    def kwargsrepr(self) -> str:
        """How the client showed the keyword arguments (their repr when it did not say)."""
        return self.message.headers.kwargsrepr or repr(self.kwargs)

    @property
    def eta(self) -> datetime | None:
        """When the call is due (None: now)."""
        return self.message.headers.eta

    @property
    def expires(self) -> datetime | None:
        """When the call expires (None: never)."""
        return self.message.headers.expires

    @property
    def root_id(self) -> str | None:
        """The id of the first call of its workflow."""
        return self.message.headers.root_id

    @property
    def parent_id(self) -> str | None:
        """The id of the call that sent it."""
        return self.message.headers.parent_id

    @property
    def correlation_id(self) -> str | None:
        """The message's correlation id (the task id, for Celery's clients)."""
        return self.message.properties.correlation_id or self.id

    @property
    def reply_to(self) -> str | None:
        """Where an rpc result goes."""
        return self.message.properties.reply_to

    @property
    def ignore_result(self) -> bool:
        """Whether the client asked for no result."""
        return bool(self.message.headers.ignore_result)

    @property
    def content_type(self) -> str:
        """The serializer's content type."""
        return self.message.content_type

    def humaninfo(self) -> str:
        """``name[id]``."""
        return f"{self.name}[{self.id}]"

    def __str__(self) -> str:
        return self.humaninfo() + (f" ETA:[{self.eta}]" if self.eta else "")

    def __repr__(self) -> str:
        return f"<Request: {self.humaninfo()} {self.argsrepr} {self.kwargsrepr}>"
