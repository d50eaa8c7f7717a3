"""One system-free drain, for A/B work on a single row of the scaling table.

    python -m bench.drain_one BROKER PAYLOAD_BYTES COUNT [ROUNDS]

BROKER is ``redis``, ``amqp``, ``sqs`` or a broker URL. Celeriac's worker with the compare
section's first pool drains COUNT preloaded no-op tasks each carrying PAYLOAD_BYTES, timed as
the bench's drains (first take to an empty queue); prints the rate of each round.
"""

from __future__ import annotations

import sys

from .suite import URLS, drain_with
from .systems import Celeriac


def main() -> None:
    broker, payload, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    system = Celeriac()
    url = URLS.get(broker, broker)
    rates = [drain_with(system, url, system.pools[0], count, payload).rate for _ in range(rounds)]
    print(broker, payload, count, [round(r) for r in rates], flush=True)


if __name__ == "__main__":
    main()
