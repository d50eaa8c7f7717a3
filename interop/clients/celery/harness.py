"""Celeriac's interop harness around real Celery 5.7 (run with the Celery venv's python).

    python harness.py send BROKER BACKEND QUEUE CASES_JSON [WAIT_SECONDS]

Sends every case of the conformance set with Celery's own API and prints one JSON line per case
({"case", "id"}); with WAIT_SECONDS it then reads each result through Celery's result backend
({"case", "id", "status", "result"}) and, when the set has ``read_back``, sends what it read as
that case (``interop.echo("read_back", {case: {"status", "result" | "exc_type"}})``, for
``celeriac interop verify --execute``). The worker side is ``celery -A conformance_app worker``.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta


def main() -> None:
    broker, backend, queue, cases_path = sys.argv[2:6]
    wait = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    os.environ["CELERY_BROKER_URL"] = broker
    os.environ["CELERY_RESULT_BACKEND"] = backend if backend != "-" else ""
    from celery import chain, chord, group
    from conformance_app import app

    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)

    def sig(step):
        return app.signature(step["task"], args=step["args"], queue=queue)

    sent = []
    read_back = next((c for c in cases if c.get("report")), None)
    for case in cases:
        if case.get("report"):
            continue  # sent last, with what was read
        opts = dict(case.get("options") or {})
        now = datetime.now(UTC)
        if "eta_in" in opts:
            opts["eta"] = now + timedelta(seconds=opts.pop("eta_in"))
        if "expires_in" in opts:
            opts["expires"] = now + timedelta(seconds=opts.pop("expires_in"))
        kind = case.get("canvas")
        if kind == "chain":
            result = chain(*[sig(s) for s in case["steps"]]).apply_async(queue=queue)
        elif kind == "group":
            result = group(*[sig(s) for s in case["members"]]).apply_async(queue=queue)
        elif kind == "chord":
            result = chord([sig(s) for s in case["members"]])(sig(case["body"]))
        else:
            if kind == "link":
                opts["link"] = sig(case["link"])
            result = app.send_task(
                case["task"], args=case["args"], kwargs=case["kwargs"], queue=queue, **opts
            )
        print(json.dumps({"case": case["name"], "id": result.id}), flush=True)
        sent.append((case["name"], result))
    report = {}
    for name, result in sent if wait else []:
        try:
            value = result.get(timeout=wait, propagate=False)
            # a GroupResult has no status of its own: it succeeded when every member did
            status = (
                result.status
                if hasattr(result, "status")
                else ("SUCCESS" if result.successful() else "FAILURE")
            )
            if status == "SUCCESS":
                report[name] = {"status": status, "result": value}
            else:
                report[name] = {"status": status, "exc_type": type(value).__name__}
            value = value if status == "SUCCESS" else repr(value)
        except Exception as exc:
            status, value = f"ERROR {exc!r}", None
        print(
            json.dumps({"case": name, "id": result.id, "status": status, "result": value}),
            flush=True,
        )
    if read_back is not None and wait:
        result = app.send_task("interop.echo", args=["read_back", report], queue=queue)
        print(json.dumps({"case": "read_back", "id": result.id}), flush=True)
    app.close()


if __name__ == "__main__":
    if sys.argv[1:2] != ["send"]:
        sys.exit("usage: harness.py send BROKER BACKEND QUEUE CASES_JSON [WAIT_SECONDS]")
    main()
