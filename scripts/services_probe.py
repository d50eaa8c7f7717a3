#!/usr/bin/env python3
"""Client-level readiness probes for the brokers started by ``scripts/services``.

Standard library only, so it runs before any virtualenv exists.  Each probe speaks the
broker's own protocol far enough to prove that a real client would be served:

* redis     - RESP ``PING`` answered with ``+PONG``
* rabbitmq  - full AMQP 0-9-1 handshake as guest/guest on vhost ``/`` (Start, Tune, Open)
* zookeeper - a ZooKeeper session (ConnectRequest), ``exists /``, closeSession
* kafka     - ApiVersions, Metadata (the broker lists itself), FindCoordinator for a group
              (which also creates ``__consumer_offsets`` so the first test's group is fast)
* sqs       - the SQS JSON protocol ``ListQueues`` call that boto3 makes

Usage::

    services_probe.py check NAME              # one attempt; exit 0 when ready
    services_probe.py wait NAME [--timeout S] [--pidfile F]
                                              # poll until ready, the process dies, or S pass
    services_probe.py kafka-cluster-id        # print a fresh KRaft cluster id
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import socket
import struct
import sys
import time
import urllib.error
import urllib.request
import uuid

HOST = "127.0.0.1"
PORTS = {"redis": 6379, "rabbitmq": 5672, "zookeeper": 2181, "kafka": 19092, "sqs": 9324}
IO_TIMEOUT = 5.0


class NotReady(Exception):
    """The broker answered (or did not) in a way that says it is not serving yet."""


def _connect(port: int) -> socket.socket:
    try:
        return socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
    except OSError as exc:
        raise NotReady(f"connect {HOST}:{port}: {exc.strerror or exc}") from None


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise NotReady(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


# ----------------------------------------------------------------------------- redis


def probe_redis() -> str:
    with _connect(PORTS["redis"]) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        line = s.recv(256)
    if not line.startswith(b"+PONG"):
        raise NotReady(f"PING answered {line!r}")
    return "PONG"


# ----------------------------------------------------------------------------- amqp


def _amqp_frame(channel: int, payload: bytes, ftype: int = 1) -> bytes:
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + b"\xce"


def _amqp_method(cls: int, meth: int, args: bytes) -> bytes:
    return _amqp_frame(0, struct.pack(">HH", cls, meth) + args)


def _shortstr(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">B", len(b)) + b


def _longstr(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _amqp_read_method(sock: socket.socket) -> tuple[int, int, bytes]:
    while True:
        ftype, _channel, size = struct.unpack(">BHI", _recv_exact(sock, 7))
        payload = _recv_exact(sock, size)
        if _recv_exact(sock, 1) != b"\xce":
            raise NotReady("bad AMQP frame end")
        if ftype == 8:  # heartbeat
            continue
        if ftype != 1:
            raise NotReady(f"unexpected AMQP frame type {ftype}")
        cls, meth = struct.unpack(">HH", payload[:4])
        if (cls, meth) == (10, 50):  # Connection.Close from the server
            code = struct.unpack(">H", payload[4:6])[0]
            text = payload[7 : 7 + payload[6]].decode(errors="replace")
            raise NotReady(f"server closed the connection: {code} {text}")
        return cls, meth, payload[4:]


def probe_rabbitmq() -> str:
    with _connect(PORTS["rabbitmq"]) as s:
        s.sendall(b"AMQP\x00\x00\x09\x01")
        head = _recv_exact(s, 7)
        if head.startswith(b"AMQP"):
            raise NotReady(f"server refused protocol 0-9-1, offers {head!r}")
        ftype, _ch, size = struct.unpack(">BHI", head)
        payload = _recv_exact(s, size + 1)[:-1]
        if ftype != 1 or struct.unpack(">HH", payload[:4]) != (10, 10):
            raise NotReady("no Connection.Start")
        major, minor = payload[4], payload[5]
        start_ok = (
            struct.pack(">I", 0)  # empty client-properties table
            + _shortstr("PLAIN")
            + _longstr(b"\x00guest\x00guest")
            + _shortstr("en_US")
        )
        s.sendall(_amqp_method(10, 11, start_ok))
        cls, meth, args = _amqp_read_method(s)
        if (cls, meth) != (10, 30):
            raise NotReady(f"expected Connection.Tune, got {cls}.{meth}")
        channel_max, frame_max, _hb = struct.unpack(">HIH", args[:8])
        s.sendall(_amqp_method(10, 31, struct.pack(">HIH", channel_max, frame_max, 0)))
        s.sendall(_amqp_method(10, 40, _shortstr("/") + _shortstr("") + b"\x00"))
        cls, meth, _ = _amqp_read_method(s)
        if (cls, meth) != (10, 41):
            raise NotReady(f"expected Connection.Open-Ok, got {cls}.{meth}")
        s.sendall(_amqp_method(10, 50, struct.pack(">H", 200) + _shortstr("") + b"\0\0\0\0"))
        with contextlib.suppress(NotReady, OSError):
            _amqp_read_method(s)  # Close-Ok
    return f"AMQP {major}-{minor} login guest@/ ok"


# ----------------------------------------------------------------------------- zookeeper


def _zk_send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">i", len(payload)) + payload)


def _zk_recv(sock: socket.socket) -> bytes:
    (n,) = struct.unpack(">i", _recv_exact(sock, 4))
    return _recv_exact(sock, n)


def probe_zookeeper() -> str:
    with _connect(PORTS["zookeeper"]) as s:
        # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly
        _zk_send(s, struct.pack(">iqiqi16s?", 0, 0, 10000, 0, 16, b"\0" * 16, False))
        try:
            resp = _zk_recv(s)
        except NotReady as exc:
            raise NotReady(f"session refused ({exc}); server not serving yet") from None
        _proto, _timeout, session_id = struct.unpack(">iiq", resp[:16])
        if session_id == 0:
            raise NotReady("ZooKeeper returned session id 0")
        path = b"/"
        # exists("/"): RequestHeader(xid=1, type=3) + path + watch=false
        _zk_send(s, struct.pack(">ii", 1, 3) + struct.pack(">i", len(path)) + path + b"\0")
        while True:
            reply = _zk_recv(s)
            xid, _zxid, err = struct.unpack(">iqi", reply[:16])
            if xid == 1:
                break
        if err != 0:
            raise NotReady(f"exists('/') failed with error {err}")
        _zk_send(s, struct.pack(">ii", 2, -11))  # closeSession
        with contextlib.suppress(NotReady, OSError):
            _zk_recv(s)
    return f"session 0x{session_id & 0xFFFFFFFFFFFFFFFF:x}, exists('/') ok"


# ----------------------------------------------------------------------------- kafka


class _KafkaConn:
    def __init__(self) -> None:
        self.sock = _connect(PORTS["kafka"])
        self.corr = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, api_key: int, version: int, body: bytes) -> bytes:
        self.corr += 1
        client = b"celeriac-services"
        header = struct.pack(">hhih", api_key, version, self.corr, len(client)) + client
        msg = header + body
        self.sock.sendall(struct.pack(">i", len(msg)) + msg)
        (n,) = struct.unpack(">i", _recv_exact(self.sock, 4))
        resp = _recv_exact(self.sock, n)
        (corr,) = struct.unpack(">i", resp[:4])
        if corr != self.corr:
            raise NotReady(f"kafka correlation id mismatch {corr} != {self.corr}")
        return resp[4:]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        vals = struct.unpack(fmt, self.data[self.pos : self.pos + size])
        self.pos += size
        return vals if len(vals) > 1 else vals[0]

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return s


def _kafka_kstr(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


API_METADATA, API_FIND_COORDINATOR, API_VERSIONS = 3, 10, 18
METADATA_V, FIND_COORDINATOR_V = 4, 1  # last non-flexible versions still served by 4.x


def probe_kafka() -> str:
    conn = _KafkaConn()
    try:
        r = _Reader(conn.request(API_VERSIONS, 0, b""))
        err = r.take(">h")
        if err:
            raise NotReady(f"ApiVersions error {err}")
        ranges = {}
        for _ in range(r.take(">i")):
            key, lo, hi = r.take(">hhh")
            ranges[key] = (lo, hi)
        for key, ver in ((API_METADATA, METADATA_V), (API_FIND_COORDINATOR, FIND_COORDINATOR_V)):
            lo, hi = ranges.get(key, (1, 0))
            if not lo <= ver <= hi:
                raise RuntimeError(f"probe needs api {key} v{ver}, broker serves {lo}..{hi}")

        # Metadata v4: topics=null (all), allow_auto_topic_creation=false
        r = _Reader(conn.request(API_METADATA, METADATA_V, struct.pack(">i?", -1, False)))
        r.take(">i")  # throttle
        brokers = []
        for _ in range(r.take(">i")):
            node = r.take(">i")
            host = r.string()
            port = r.take(">i")
            r.string()  # rack
            brokers.append((node, host, port))
        cluster = r.string()
        controller = r.take(">i")
        if not brokers:
            raise NotReady("metadata lists no brokers yet")
        if controller < 0:
            raise NotReady("no active controller yet")

        # FindCoordinator v1 for a group: creates __consumer_offsets on first use.
        body = _kafka_kstr("celeriac-services-probe") + b"\x00"
        r = _Reader(conn.request(API_FIND_COORDINATOR, FIND_COORDINATOR_V, body))
        r.take(">i")
        err = r.take(">h")
        msg = r.string()
        if err:
            raise NotReady(f"group coordinator not available yet (error {err} {msg or ''})")
    finally:
        conn.close()
    return f"cluster {cluster}, brokers {brokers}, group coordinator ready"


def kafka_cluster_id() -> str:
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


# ----------------------------------------------------------------------------- sqs


def probe_sqs() -> str:
    req = urllib.request.Request(
        f"http://{HOST}:{PORTS['sqs']}/",
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "AmazonSQS.ListQueues",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=IO_TIMEOUT) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        raise NotReady(f"ListQueues HTTP {exc.code}: {exc.read()[:200]!r}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise NotReady(f"ListQueues: {getattr(exc, 'reason', exc)}") from None
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise NotReady(f"ListQueues returned non-JSON {body[:200]!r}") from None
    return f"ListQueues ok ({len(data.get('QueueUrls', []))} queues)"


PROBES = {
    "redis": probe_redis,
    "rabbitmq": probe_rabbitmq,
    "zookeeper": probe_zookeeper,
    "kafka": probe_kafka,
    "sqs": probe_sqs,
}


def check(name: str) -> str:
    try:
        return PROBES[name]()
    except (OSError, struct.error, IndexError, UnicodeDecodeError) as exc:
        raise NotReady(f"{type(exc).__name__}: {exc}") from None


def _pid_alive(pidfile: str | None) -> bool | None:
    """True/False when the pid file names a (dead) process, None when unknown yet."""
    if not pidfile or not os.path.exists(pidfile):
        return None
    try:
        with open(pidfile) as fh:
            pid = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except OSError:
        pass
    return True


def wait(name: str, timeout: float, pidfile: str | None) -> int:
    deadline = time.monotonic() + timeout
    last = "never probed"
    delay = 0.2
    while True:
        try:
            print(check(name))
            return 0
        except NotReady as exc:
            last = str(exc)
        if _pid_alive(pidfile) is False:
            print(f"{name}: process exited before it was ready (last probe: {last})")
            return 2
        if time.monotonic() >= deadline:
            print(f"{name}: not ready after {timeout:.0f}s (last probe: {last})")
            return 1
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("name", choices=sorted(PROBES))
    w = sub.add_parser("wait")
    w.add_argument("name", choices=sorted(PROBES))
    w.add_argument("--timeout", type=float, default=90.0)
    w.add_argument("--pidfile")
    sub.add_parser("kafka-cluster-id")
    args = ap.parse_args(argv)
    if args.cmd == "kafka-cluster-id":
        print(kafka_cluster_id())
        return 0
    if args.cmd == "check":
        try:
            print(check(args.name))
            return 0
        except NotReady as exc:
            print(f"{args.name}: {exc}")
            return 1
    return wait(args.name, args.timeout, args.pidfile)


if __name__ == "__main__":
    sys.exit(main())
