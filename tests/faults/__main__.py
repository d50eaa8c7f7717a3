"""Run the fault scenarios by hand, larger than in CI, and print the table.

python -m tests.faults                    # the CI sizes, every transport
python -m tests.faults --full             # thousands of tasks, more kills, longer outages
python -m tests.faults --only redis,amqp
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.brokers import REDIS_URL
from tests.transports.conftest import url_for

from . import scenarios
from .conftest import table
from .scenarios import Row, Setup
from .test_faults import FAULTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="thousands of tasks per scenario")
    parser.add_argument("--only", default=",".join(FAULTS), help="comma-separated transports")
    args = parser.parse_args()
    tasks, kills, outage = (3000, 20, 10.0) if args.full else (200, 4, 3.0)
    rows: list[Row] = []
    for transport in args.only.split(","):
        for scenario in FAULTS[transport]:
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                setup = Setup(transport, url_for(transport, work), work)
                if scenario == "sigkill":
                    row = scenarios.sigkill_workers(setup, tasks, kills, timeout=900)
                elif scenario == "broker-restart":
                    row = scenarios.broker_restart(setup, tasks, timeout=900)
                elif scenario == "clock-jump":
                    row = scenarios.clock_jump(setup, tasks // 5, timeout=900)
                elif scenario == "network-cut":
                    row = scenarios.network_cut(setup, tasks, outage=outage, timeout=900)
                else:
                    backend = REDIS_URL.rsplit("/", 1)[0] + "/4"
                    row = scenarios.backend_outage(setup, backend, tasks, outage, timeout=900)
            rows.append(row)
            print(table(rows[-1:]), flush=True)
    print()
    print(table(rows))
    raise SystemExit(1 if any(r.lost for r in rows) else 0)


if __name__ == "__main__":
    main()
