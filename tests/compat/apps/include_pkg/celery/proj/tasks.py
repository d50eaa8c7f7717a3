from .celery import app


@app.task
def add(x, y):
    return x + y


@app.task
def mul(x, y):
    return x * y


@app.task(name="proj.custom_name")
def renamed():
    return "renamed"


@app.task(bind=True)
def whoami(self):
    return {"task": self.request.task, "retries": self.request.retries}


#: The message properties a request shows on every broker (Kombu adds its own per transport).
AMQP_PROPERTIES = ("correlation_id", "reply_to", "priority", "delivery_mode")


@app.task(bind=True)
def request_fields(self, x, key=None):
    """What a task sees of its request, as comparable values (ids, hosts and queues vary)."""
    r = self.request
    return {
        "args": list(r.args),
        "kwargs": r.kwargs,
        "retries": r.retries,
        "is_eager": r.is_eager,
        "called_directly": r.called_directly,
        "eta": r.eta,
        "expires set": r.expires is not None,
        "hostname has @": "@" in (r.hostname or ""),
        "delivery_info": sorted(r.delivery_info),
        "routing_key": r.delivery_info.get("routing_key") == app.conf.task_default_queue,
        "reply_to set": bool(r.reply_to),
        "correlation_id is id": r.correlation_id == r.id,
        "root_id is id": r.root_id == r.id,
        "parent_id": r.parent_id,
        "group": r.group,
        "chord": r.chord,
        "callbacks": r.callbacks,
        "errbacks": r.errbacks,
        "chain": r.chain,
        "timelimit": list(r.timelimit or ()),
        "origin set": bool(r.origin),
        "ignore_result": r.ignore_result,
        "shadow": r.shadow,
        "properties": sorted(k for k in r.properties or {} if k in AMQP_PROPERTIES),
        "get": r.get("retries"),
    }


@app.task
def waits_inside():
    try:
        return add.delay(1, 1).get(timeout=10)
    except RuntimeError as exc:
        return f"RuntimeError: {str(exc).splitlines()[0]}"


@app.task
def xsum(numbers):
    return sum(numbers)
