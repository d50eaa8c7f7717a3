"""Driver of the canvas_app layout: run with either copy on sys.path; prints observations.

With ``COMPAT_ONLY_WIRE`` set it observes only what crosses the wire (the results of canvases
a worker of the other kind runs), for the crossed runs."""

import json

from proj import tasks
from proj.celery import app

try:
    from celery import chain, chord, group
except ImportError:
    from celeriac import chain, chord, group

TIMEOUT = 60
add, mul, xsum, ident = tasks.add, tasks.mul, tasks.xsum, tasks.ident


def get(result):
    return result.get(timeout=TIMEOUT)


observed = {
    # A group in the middle of a chain becomes a chord whose body is the next step.
    "a | group | b": get(chain(add.s(1, 1), group(add.s(1), add.s(2)), xsum.s()).delay()),
    "a | chord | b": get(
        chain(add.s(1, 1), chord([add.s(1), mul.s(3)], xsum.s()), add.s(100)).delay()
    ),
    "a | group | group": get(
        (add.s(1, 1) | group(add.s(1), add.s(2)) | group(ident.s(), xsum.s())).delay()
    ),
    "a | group": get((add.s(1, 1) | group(add.s(1), add.s(2))).delay()),
    "group | group | b": get(
        (group(add.s(1, 1), add.s(2, 2)) | group(xsum.s(), ident.s()) | ident.s()).delay()
    ),
    "a | group | b | c": get(
        chain(add.s(1, 1), group(add.s(1), add.s(2)), xsum.s(), mul.s(10)).delay()
    ),
    "chord with a chain body | c": get(
        chain(chord([add.s(1, 1), add.s(2, 2)], xsum.s() | add.s(10)), add.s(5)).delay()
    ),
    "a | group of one | b": get(chain(add.s(1, 1), group(add.s(3)), add.s(4)).delay()),
    "a | chord | chord": get(
        chain(
            add.s(1, 1),
            chord([add.s(1), add.s(2)], xsum.s()),
            chord([mul.s(2), mul.s(3)], xsum.s()),
        ).delay()
    ),
}


def saved_group():
    """A group's result saved, restored by id (through ``app.GroupResult``), then deleted."""
    result = group(add.s(i, i) for i in range(3)).delay()
    result.get(timeout=TIMEOUT)
    result.save()
    restored = app.GroupResult.restore(result.id)
    seen = {
        "same ids": [r.id for r in restored.results] == [r.id for r in result.results],
        "same group id": restored.id == result.id,
        "values": restored.get(timeout=TIMEOUT),
        "tuple shape": json.loads(json.dumps(restored.as_tuple()))[0][1],
    }
    restored.delete()
    seen["after delete"] = app.GroupResult.restore(result.id)
    return seen


def children():
    """What a task sent while it ran (a group, then a task), and its graph collected."""
    result = tasks.spawns.delay(3)
    result.get(timeout=TIMEOUT)
    kids = result.children
    for kid in kids:  # collect() without intermediate=True wants every node ready
        kid.get(timeout=TIMEOUT)
    first = chain(add.s(1, 1), add.s(2)).delay()
    first.get(timeout=TIMEOUT)
    linked = add.apply_async((1, 2), link=[mul.s(2), mul.s(3)])
    linked.get(timeout=TIMEOUT)
    (callbacks,) = linked.children
    return {
        "kinds": [type(kid).__name__ for kid in kids],
        "group size": len(kids[0].results),
        "group members have no children": [r.children for r in kids[0].results],
        "collect": [value for _, value in result.collect()],
        "collect leaves": [value for node, value in result.collect() if not node.children],
        "chain step is its parent's child": [c.id for c in first.parent.children] == [first.id],
        "children of an unknown id": app.AsyncResult("no-such-task").children,
        "two callbacks are one group child": [
            type(callbacks).__name__,
            sorted(callbacks.get(timeout=TIMEOUT)),
        ],
    }


def state_and_error(result):
    try:
        return [result.get(timeout=TIMEOUT), None]
    except Exception as exc:
        return [result.state, str(exc).split(":")[-1].strip() if "chain" in str(exc) else None]


def builtins():
    """Celery's built-in tasks, through the canvas API and sent by name."""
    done = [add.delay(1, 1), add.delay(2, 2)]
    for result in done:
        result.get(timeout=TIMEOUT)
    body = xsum.s()
    body.freeze()
    app.send_task(
        "celery.chord_unlock", ("no-group", body), {"result": [r.as_tuple() for r in done]}
    )
    ids = [f"{done[0].id}-m{i}" for i in range(2)]
    members = [add.s(i, i).set(task_id=ids[i]) for i in range(2)]
    saved = app.GroupResult(f"{done[0].id}-g", [app.AsyncResult(i) for i in ids])
    by_name = app.send_task("celery.group", (members, saved.as_tuple(), saved.id, []))
    return {
        "map": xsum.map([[1, 2], [3]]).delay().get(timeout=TIMEOUT),
        "starmap": add.starmap([(1, 1), (2, 2)]).delay().get(timeout=TIMEOUT),
        "chunks": add.chunks([(i, i) for i in range(5)], 2).apply_async().get(timeout=TIMEOUT),
        "accumulate": app.send_task("celery.accumulate", (1, 2, 3)).get(timeout=TIMEOUT),
        "accumulate index": app.send_task("celery.accumulate", (1, 2), {"index": 1}).get(
            timeout=TIMEOUT
        ),
        "backend_cleanup": app.send_task("celery.backend_cleanup").get(timeout=TIMEOUT),
        "chain by name": state_and_error(app.send_task("celery.chain")),
        "chord_unlock sends the body": app.AsyncResult(body.id).get(timeout=TIMEOUT),
        # The task returns the group's result, stored as its result tuple.
        "group by name": [
            by_name.get(timeout=TIMEOUT) == json.loads(json.dumps(saved.as_tuple())),
            [app.AsyncResult(i).get(timeout=TIMEOUT) for i in ids],
        ],
        "chunks by name": [
            len(tree[1])
            for tree in [
                app.send_task("celery.chunks", (add.s(), [[1, 1], [2, 2]], 1)).get(timeout=TIMEOUT)
            ]
        ],
    }


observed["builtins"] = builtins()
observed["children"] = children()
observed["saved group"] = saved_group()
print(json.dumps(observed, sort_keys=True))
