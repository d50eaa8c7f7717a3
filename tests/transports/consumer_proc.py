"""A consumer in its own process, for tests that kill it: ``python consumer_proc.py URL QUEUE N``.

It fetches until it holds N deliveries without settling them, prints ``HOLDING N``, then keeps
calling fetch (as a live worker does) until it is killed.
"""

from __future__ import annotations

import sys

from celeriac.transports import resolve


def main() -> None:
    url, queue, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    transport = resolve(url)(url, visibility_timeout=2)
    transport.connect()
    consumer = transport.consumer([queue], prefetch=count)
    held: list[object] = []
    while len(held) < count:
        held += consumer.fetch(count - len(held), timeout=1.0)
    print(f"HOLDING {len(held)}", flush=True)
    while True:
        consumer.fetch(1, timeout=0.5)


if __name__ == "__main__":
    main()
