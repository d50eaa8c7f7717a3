"""A TCP proxy on loopback that a test can cut and restore, to fake a network outage, or
freeze and thaw, to fake a frozen server."""

from __future__ import annotations

import socket
import threading

__all__ = ["CuttableProxy"]


class CuttableProxy:
    """Relays ``127.0.0.1:<port>`` to ``host:target``. ``cut()`` drops every connection and
    refuses new ones (they are accepted and closed at once) until ``restore()``;
    ``swallow()`` keeps the connections open and loses what they carry, either way, until
    ``restore()``. ``freeze()`` keeps every connection open and relays nothing, either way,
    until ``thaw()``: a frozen server (SIGSTOP, a paused VM), whose kernel still accepts
    connections."""

    def __init__(self, target: int, host: str = "127.0.0.1") -> None:
        self.host, self.target = host, target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._swallow = False
        self._closed = False
        self._thawed = threading.Event()
        self._thawed.set()
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut
            if refused:
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((self.host, self.target), timeout=5)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        with self._lock:
            if self._cut:
                client.close()
                upstream.close()
                return
            self._open |= {client, upstream}
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                self._thawed.wait()  # frozen: held here, sent (late) once thawed
                if not self._swallow:
                    sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        with self._lock:
            self._open.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def cut(self) -> None:
        """Break every open connection; refuse new ones until ``restore()``."""
        with self._lock:
            self._cut = True
            victims = list(self._open)
        for s in victims:
            self._drop(s)

    def swallow(self) -> None:
        """Lose every byte the open connections carry from now on (they stay open)."""
        self._swallow = True

    def restore(self) -> None:
        with self._lock:
            self._cut = False
            self._swallow = False

    def freeze(self) -> None:
        """Relay nothing from now on; connections stay open and new ones are accepted."""
        self._thawed.clear()

    def thaw(self) -> None:
        self._thawed.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.thaw()
        self.listener.close()
