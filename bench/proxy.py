"""A TCP proxy on loopback that adds a round-trip delay (half each way), to put a broker at a
distance: ``python -m bench.proxy TARGET_PORT --rtt 0.002`` prints the port it listens on.

Each chunk read is held until its own time has come (read time + delay) and written in order,
so the delay adds latency without limiting throughput (as a longer wire would). Like
tests/faults/proxy.py, but asyncio and delaying rather than cuttable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from collections import deque

from .common import REPO


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    held: deque[tuple[float, bytes]] = deque()
    more = asyncio.Event()
    done = False

    async def send() -> None:
        while True:
            while not held:
                if done:
                    return
                more.clear()
                await more.wait()
            due, chunk = held.popleft()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            if not held:
                await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while chunk := await reader.read(65536):
            held.append((loop.time() + delay, chunk))
            more.set()
    except ConnectionError:
        pass
    finally:
        done = True
        more.set()
        with contextlib.suppress(Exception):
            await sender
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(target: int, one_way: float) -> None:
    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(_pipe(cr, uw, one_way), _pipe(ur, cw, one_way))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


class DelayProxy:
    """The proxy in a process of its own (so it does not share our GIL)."""

    def __init__(self, target: int, rtt: float = 0.002) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.proxy", str(target), "--rtt", str(rtt)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> DelayProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def measured_rtt(port: int, pings: int = 50) -> float:
    """Median round trip of a Redis PING through the proxy (seconds)."""
    import redis

    client = redis.Redis(port=port)
    client.ping()
    times = []
    for _ in range(pings):
        t = time.perf_counter()
        client.ping()
        times.append(time.perf_counter() - t)
    client.close()
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("target", type=int)
    parser.add_argument("--rtt", type=float, default=0.002)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.target, args.rtt / 2))


if __name__ == "__main__":
    main()
