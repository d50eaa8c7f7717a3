import json
import os

from celery import Task
from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_received,
    task_retry,
    task_success,
)

from .celery import app


def _record(signal, **fields):
    with open(os.environ["COMPAT_LEDGER"], "a") as ledger:
        ledger.write(json.dumps([signal, fields], sort_keys=True, default=repr) + "\n")


def _others(extra):
    return sorted(k for k in extra if k != "signal")


@task_received.connect
def received(sender=None, request=None, **extra):
    _record(
        "task_received",
        name=request.name,
        task=request.task.name,
        task_name=request.task_name,
        same_id=request.id == request.task_id,
        args=list(request.args),
        kwargs=request.kwargs,
        eta=request.eta is not None,
        hostname="@" in request.hostname,
        shown=str(request).startswith(f"{request.name}[{request.id}]"),
        others=_others(extra),
    )


@task_prerun.connect
def prerun(sender=None, task_id=None, task=None, args=None, kwargs=None, **extra):
    _record(
        "task_prerun",
        sender=sender.name,
        task=task.name,
        args=list(args),
        kwargs=kwargs,
        others=_others(extra),
    )


@task_postrun.connect
def postrun(
    sender=None, task_id=None, task=None, args=None, kwargs=None, retval=None, state=None, **extra
):
    _record(
        "task_postrun",
        sender=sender.name,
        args=list(args),
        kwargs=kwargs,
        retval=repr(retval),
        state=state,
        others=_others(extra),
    )


@task_success.connect
def success(sender=None, result=None, **extra):
    _record("task_success", sender=sender.name, result=result, others=_others(extra))


@task_failure.connect
def failure(
    sender=None,
    task_id=None,
    exception=None,
    args=None,
    kwargs=None,
    traceback=None,
    einfo=None,
    **extra,
):
    _record(
        "task_failure",
        sender=sender.name,
        exception=repr(exception),
        args=list(args),
        kwargs=kwargs,
        einfo=einfo is not None,
        others=_others(extra),
    )


@task_retry.connect
def retried(sender=None, request=None, reason=None, einfo=None, **extra):
    _record(
        "task_retry",
        sender=sender.name,
        reason=repr(reason),
        request_retries=request.retries,
        einfo=einfo is not None,
        others=_others(extra),
    )


class Hooked(Task):
    """A base class whose outcome hooks write to the ledger beside the signals."""

    def on_success(self, retval, task_id, args, kwargs):
        _record("on_success", retval=retval, args=list(args), kwargs=kwargs)
        if self.name.endswith("fragile"):
            raise RuntimeError("on_success broke")

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        _record(
            "on_failure", exc=repr(exc), args=list(args), einfo="ValueError: boom" in str(einfo)
        )

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        _record("on_retry", exc=repr(exc), args=list(args), einfo="Retry" in str(einfo))

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        _record("after_return", status=status, retval=repr(retval), args=list(args), einfo=einfo)


@app.task(base=Hooked)
def add(x, y):
    return x + y


@app.task(base=Hooked)
def boom():
    raise ValueError("boom")


@app.task(base=Hooked, bind=True, max_retries=1, default_retry_delay=0.1)
def again(self):
    if self.request.retries == 0:
        raise self.retry(exc=KeyError("k"))
    return "done"


@app.task(base=Hooked)
def fragile():
    return "kept"


@app.task
def on_error(request, exc, traceback):
    """A new-style errback: the worker calls it with the failed task's request."""
    _record(
        "errback",
        task=request.task,
        args=list(request.args),
        exc=repr(exc),
        traceback="ValueError: boom" in traceback,
    )
