"""The numbers of a call, side by side with real Celery 5.7: every form Celery's client sends,
Celeriac's sends too; where both refuse, Celeriac's error is of Celery's type; the forms only
Celeriac refuses are listed here with the reason (a value its worker, or Celery's, would refuse
or mishandle later)."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.bounds import parse_rate
from interop.celery_env import run_script

#: (label, the options as a Python expression): evaluated in each interpreter.
CASES = {
    "countdown float": "{'countdown': 1.5}",
    "countdown int": "{'countdown': 3}",
    "countdown negative": "{'countdown': -10}",
    "countdown zero": "{'countdown': 0}",
    "countdown NaN": "{'countdown': math.nan}",
    "countdown inf": "{'countdown': math.inf}",
    "countdown 1e300": "{'countdown': 1e300}",
    "countdown -3e9": "{'countdown': -3e9}",
    "countdown string": "{'countdown': '5'}",
    "countdown 11 years": "{'countdown': 11 * 365 * 86400}",
    "eta datetime": "{'eta': datetime.now(UTC) + timedelta(hours=1)}",
    "eta naive": "{'eta': datetime.utcnow() + timedelta(hours=1)}",
    "eta ISO string": "{'eta': (datetime.now(UTC) + timedelta(hours=1)).isoformat()}",
    "eta past": "{'eta': datetime.now(UTC) - timedelta(days=3)}",
    "eta not a date": "{'eta': 'tomorrow'}",
    "eta a number": "{'eta': 5}",
    "expires int": "{'expires': 60}",
    "expires float": "{'expires': 0.5}",
    "expires negative": "{'expires': -5}",
    "expires datetime": "{'expires': datetime.now(UTC) + timedelta(hours=1)}",
    "expires ISO string": "{'expires': (datetime.now(UTC) + timedelta(hours=1)).isoformat()}",
    "expires in 50 years": "{'expires': 50 * 365 * 86400}",
    "expires 1e300": "{'expires': 1e300}",
    "expires NaN": "{'expires': math.nan}",
    "expires inf": "{'expires': math.inf}",
    "expires not a date": "{'expires': 'soon'}",
    "expires a list": "{'expires': [1]}",
    "time_limit": "{'time_limit': 30, 'soft_time_limit': 20.5}",
    "time_limit zero": "{'time_limit': 0}",
    "time_limit NaN": "{'time_limit': math.nan}",
    "time_limit negative": "{'time_limit': -1}",
    "retries": "{'retries': 2}",
    "retries negative": "{'retries': -1}",
    "retry_policy": "{'retry_policy': {'max_retries': 0, 'interval_start': 0}}",
    "retry_policy negative": "{'retry_policy': {'max_retries': -1}}",
    "countdown bool": "{'countdown': True}",
}

#: Sent by Celery's client, refused by Celeriac's, and why.
STRICTER = {
    "countdown 11 years": "past the 10 years a worker parks an ETA for",
    "eta not a date": "Celery sends the string as is; its worker then fails to parse it",
    "time_limit NaN": "a worker's timer cannot hold it",
    "time_limit negative": "a worker's timer cannot hold it",
    "retries negative": "meaningless",
    "retry_policy negative": "Celery then tries no send at all and raises nothing",
    "countdown bool": "not a number of seconds",
}
#: Refused by both, with another exception type, and why.
OTHER_TYPE = {
    "eta a number": "Celery raises AttributeError ('int' has no isoformat); Celeriac TypeError",
}

_CELERY_SIDE = """
import json, math, sys
from datetime import datetime, timedelta, timezone
from celery import Celery

UTC = timezone.utc
app = Celery("probe", broker="memory://")
out = {}
for label, expr in json.loads(sys.argv[1]).items():
    options = eval(expr, {"math": math, "datetime": datetime, "timedelta": timedelta, "UTC": UTC})
    try:
        app.send_task("probe.add", (1, 2), **options)
        out[label] = "ok"
    except Exception as exc:
        out[label] = [klass.__name__ for klass in type(exc).__mro__]
print(json.dumps(out))
"""


def _celeriac_side() -> dict[str, Any]:
    name = uuid.uuid4().hex[:8]
    app = App("probe", broker=f"memory://{name}", backend="")
    out: dict[str, Any] = {}
    space = {"math": math, "datetime": datetime, "timedelta": timedelta, "UTC": UTC}
    try:
        for label, expr in CASES.items():
            try:
                app.send_task("probe.add", (1, 2), **eval(expr, space))
                out[label] = "ok"
            except Exception as exc:
                out[label] = exc
    finally:
        app.close()
    return out


def test_call_options_side_by_side_with_celery(tmp_path: Path) -> None:
    script = tmp_path / "celery_side.py"
    script.write_text(_CELERY_SIDE)
    celery = json.loads(run_script(script, json.dumps(CASES), timeout=300).stdout)
    ours = _celeriac_side()
    for label in CASES:
        theirs, mine = celery[label], ours[label]
        if theirs == "ok":
            assert mine == "ok" or label in STRICTER, f"{label}: Celery sends it, we raise {mine!r}"
            assert not (mine == "ok" and label in STRICTER), f"{label}: listed as refused"
        else:
            assert mine != "ok", f"{label}: Celery raises {theirs[0]}, we send it"
            if label not in OTHER_TYPE:
                assert theirs[0] in [k.__name__ for k in type(mine).__mro__], (label, mine)
    assert set(STRICTER) | set(OTHER_TYPE) <= set(CASES)


#: Rate limits as written in ``@app.task(rate_limit=...)`` and ``control rate_limit``.
RATES = ["10/s", "100/m", "1000/h", "2/h", "1/h", "5", "0.5/s", ".5/m", "1e2/s", "3600/h",
         "0/s", "0.5/h", "-1/s", "nan/s", "inf/s", "10/d", "abc", "1/2h"]  # fmt: skip
#: Read by Celery, refused by Celeriac: slower than the 1/h a worker accepts, or not finite.
SLOWER_OR_ODD = {"0.5/h", "-1/s", "nan/s", "inf/s"}

_CELERY_RATES = """
import json, sys
from celery.utils.time import rate

out = {}
for text in json.loads(sys.argv[1]):
    try:
        out[text] = rate(text)
    except Exception as exc:
        out[text] = type(exc).__name__
print(json.dumps(out))
"""


def test_rate_strings_side_by_side_with_celery(tmp_path: Path) -> None:
    script = tmp_path / "celery_rates.py"
    script.write_text(_CELERY_RATES)
    celery = json.loads(run_script(script, json.dumps(RATES), timeout=300).stdout)
    for text in RATES:
        theirs = celery[text]
        try:
            mine: Any = parse_rate(text)
        except ValueError:
            mine = "refused"
        if isinstance(theirs, str):  # Celery cannot read it either
            assert mine == "refused", (text, mine)
        elif text in SLOWER_OR_ODD:
            assert mine == "refused", (text, theirs, mine)
        else:
            assert (mine or 0) == pytest.approx(theirs), (text, theirs, mine)
