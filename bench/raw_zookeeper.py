"""The bare kazoo figure for the ZooKeeper transport: sequential creates, then get and delete.

    python -m bench.raw_zookeeper [--count 20000]

Publishing creates ``entry-009-`` sequential nodes in multi requests of up to 64 KiB of data (one
server write per request: single creates, even pipelined, cost one write each and run several
times slower; larger multis fill the server's in-memory log of recent writes); consuming lists the
queue node once, reads 500 items with pipelined calls, then deletes them in one multi request.
No claims, no watches: the least a ZooKeeper queue can cost here.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

from kazoo.client import KazooClient

from celeriac.protocol import new_task_message
from celeriac.protocol.envelopes import json_envelope

ZOOKEEPER_URL = os.environ.get("CELERIAC_TEST_ZOOKEEPER_URL", "zookeeper://127.0.0.1:2181")
WINDOW = 500
MULTI_BYTES = 64 * 1024


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def raw_zookeeper(count: int, payload: int) -> tuple[float, float]:
    """(publish, consume) msgs/s of a bare kazoo loop with ``payload``-byte node data."""
    client = KazooClient(hosts=ZOOKEEPER_URL.split("://", 1)[1].split("/", 1)[0])
    client.start(timeout=10)
    root = f"/bench-raw-{uuid.uuid4().hex[:8]}"
    data = b"x" * payload
    try:
        client.ensure_path(root)
        per_multi = max(MULTI_BYTES // payload, 1)
        start = time.perf_counter()
        for i in range(0, count, per_multi):
            tx = client.transaction()
            for _ in range(min(per_multi, count - i)):
                tx.create(f"{root}/entry-009-", data, sequence=True)
            tx.commit()
        publish = _rate(count, time.perf_counter() - start)
        start = time.perf_counter()
        names = sorted(client.get_children(root))
        for i in range(0, len(names), WINDOW):
            window = names[i : i + WINDOW]
            reads = [client.get_async(f"{root}/{name}") for name in window]
            for read in reads:
                read.get()
            tx = client.transaction()
            for name in window:
                tx.delete(f"{root}/{name}")
            tx.commit()
        consume = _rate(len(names), time.perf_counter() - start)
        return publish, consume
    finally:
        client.delete(root, recursive=True)
        client.stop()
        client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args(argv)
    payload = len(json_envelope.pack(new_task_message("bench.noop", (1, 2))))
    publish, consume = raw_zookeeper(args.count, payload)
    print(
        f"bare kazoo, {args.count:,} nodes of {payload} bytes: "
        f"publish {publish:,.0f} msg/s, consume {consume:,.0f} msg/s"
    )


if __name__ == "__main__":
    main()
