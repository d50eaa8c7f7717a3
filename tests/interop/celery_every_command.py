"""Run under Celery 5.7 (never imported by Celeriac): send every inspect and control command of
Celery 5.7 to one worker, print the replies as JSON.

    python celery_every_command.py BROKER NODE QUEUE [skip,commands]
"""

import json
import sys

from celery import Celery

broker, node, queue = sys.argv[1:4]
skip = set(sys.argv[4].split(",")) if len(sys.argv) > 4 else set()
app = Celery("every-command", broker=broker)
inspect = app.control.inspect(destination=[node], timeout=5)
replies = {}
for name in (
    "ping",
    "stats",
    "registered",
    "active",
    "reserved",
    "scheduled",
    "revoked",
    "active_queues",
    "conf",
    "report",
    "clock",
    "memsample",
    "memdump",
    "objgraph",
):
    if name not in skip:
        replies[name] = (getattr(inspect, name)() or {}).get(node, "<no reply>")
replies["query_task"] = (inspect.query_task("nope") or {}).get(node, "<no reply>")
commands = [
    ("rate_limit", {"task_name": "e2e.add", "rate_limit": "100/s"}),
    ("time_limit", {"task_name": "e2e.add", "soft": 10, "hard": 20}),
    ("revoke", {"task_id": "nope-1"}),
    ("terminate", {"task_id": "nope-2", "signal": "SIGTERM"}),
    ("revoke_by_stamped_headers", {"headers": {"k": "v"}}),
    ("add_consumer", {"queue": queue + ".extra"}),
    ("cancel_consumer", {"queue": queue + ".extra"}),
    ("enable_events", {}),
    ("disable_events", {}),
    ("heartbeat", {}),
    ("pool_grow", {"n": 1}),
    ("pool_shrink", {"n": 1}),
    ("autoscale", {"max": 3, "min": 1}),
    ("pool_restart", {}),
    ("election", {"id": "x", "topic": "t", "action": "a"}),
]
for name, arguments in commands:
    if name in skip:
        continue
    got = app.control.broadcast(
        name, arguments=arguments, destination=[node], reply=True, timeout=5
    )
    replies[name] = got[0].get(node, "<no reply>") if got else "<no reply>"
print(json.dumps(replies, default=repr))
