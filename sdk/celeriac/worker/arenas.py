"""Fewer glibc malloc arenas in a worker process: its threads' memory in two shared heaps.

glibc gives each thread that allocates under contention an arena of its own (up to 8 per
core). A worker runs a dozen threads (the pool's, and on Kafka or SQS the clients' I/O
threads); each arena keeps what it once held, so the process's RSS grows by MBs that are free
but never returned. Two arenas, as ``MALLOC_ARENA_MAX=2`` gives, keep that down: Python's own
small objects come from its allocator under the GIL either way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["ARENAS", "limit_malloc_arenas"]

#: Arenas a worker process keeps (``MALLOC_ARENA_MAX`` in the environment wins).
ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` for this process (before its threads start).

    False where it does not apply: not glibc, or ``MALLOC_ARENA_MAX`` already says otherwise.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
