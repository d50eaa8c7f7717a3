"""Worker "hosts" on one machine: network namespaces joined by veth pairs to a private bridge.

The bridge holds the machine's address on a private /24 (``.1``); each host gets a namespace
with its own address (``.11``, ``.12``, ...), so a broker that listens on the bridge address is
reachable from every host, and a host can be cut off (its veth set down: its packets are
dropped, as when a cable is pulled, and no connection is reset) and mended, or its processes
killed, without touching anything else. Everything carries the ``c20b`` prefix, and
:meth:`Network.remove` (also ``scripts/services cluster down netns``) deletes it all, whatever a
failed run left behind. Needs root (``ip netns``).
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PREFIX = "c20b"
BRIDGE = f"{PREFIX}br0"
#: Candidate subnets; the first one no route of this machine overlaps is used.
SUBNETS = ("10.220.20.0/24", "10.221.20.0/24", "172.31.220.0/24")


def ip(*args: str, check: bool = True) -> str:
    """Run ``ip ARGS``; its output (a failure names the command and what ip said)."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def free_subnet() -> ipaddress.IPv4Network:
    """A private /24 that no address or route of this machine uses."""
    taken = []
    for line in ip("-4", "route", "show", "table", "all").splitlines():
        first = line.split()[0] if line.split() else ""
        if first[:1].isdigit():
            taken.append(ipaddress.ip_network(first if "/" in first else f"{first}/32", False))
    for candidate in SUBNETS:
        net = ipaddress.IPv4Network(candidate)
        if not any(net.overlaps(t) for t in taken):
            return net
    raise RuntimeError(f"every candidate subnet ({', '.join(SUBNETS)}) is in use here")


def remove_all() -> None:
    """Kill every process in our namespaces, delete them and the bridge (veths go with them)."""
    for line in ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(f"{PREFIX}-"):
            for pid in ip("netns", "pids", name, check=False).split():
                subprocess.run(["kill", "-KILL", pid], capture_output=True, check=False)
            ip("netns", "del", name, check=False)
    if ip("link", "show", BRIDGE, check=False):
        ip("link", "del", BRIDGE, check=False)


@dataclass
class Host:
    """One namespace: its name, its address on the bridge, and the veth end left outside."""

    name: str
    netns: str
    address: str
    outside: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as run inside this host (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command(argv), **kwargs)

    def cut(self) -> None:
        """Pull the cable: the host's packets are dropped from now on (nothing is reset)."""
        ip("link", "set", self.outside, "down")

    def mend(self) -> None:
        ip("link", "set", self.outside, "up")


class Network:
    """A bridge with this machine on ``.1`` and hosts added by :meth:`host`."""

    def __init__(self) -> None:
        remove_all()  # what a killed run left
        self.subnet = free_subnet()
        self.gateway = str(self.subnet.network_address + 1)
        self.hosts: list[Host] = []
        try:
            ip("link", "add", BRIDGE, "type", "bridge")
            ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", BRIDGE)
            ip("link", "set", BRIDGE, "up")
        except BaseException:
            remove_all()
            raise

    def host(self, name: str) -> Host:
        """A new namespace ``c20b-<name>`` on the bridge, with the next free address."""
        n = len(self.hosts) + 1
        address = str(self.subnet.network_address + 10 + n)
        netns, outside, inside = f"{PREFIX}-{name}", f"{PREFIX}h{n}", f"{PREFIX}n{n}"
        ip("netns", "add", netns)
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", netns)
        ip("link", "set", outside, "master", BRIDGE)
        ip("link", "set", outside, "up")
        ip("-n", netns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", inside)
        ip("-n", netns, "link", "set", inside, "up")
        ip("-n", netns, "link", "set", "lo", "up")
        host = Host(name, netns, address, outside)
        self.hosts.append(host)
        return host

    def remove(self) -> None:
        remove_all()
        self.hosts.clear()
