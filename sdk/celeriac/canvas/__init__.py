"""Signatures and the canvas (chain, group, chord), written into messages exactly as Celery
writes them (SPEC.md §2.7-2.8), so canvases cross between Celery and Celeriac.

Import them from here, as from Celery's ``celery.canvas``; each lives in a module of this
package: ``signatures`` (``Signature``, ``signature``, ``maybe_signature``), ``chains``,
``groups`` (``group``, ``chord``) and ``maps`` (``xmap``, ``xstarmap``, ``chunks``).
"""

from .chains import chain
from .groups import chord, group
from .maps import chunks, xmap, xstarmap
from .signatures import Signature, maybe_signature, signature, subtask

# The worker turns canvases it receives back into their classes with this.
from .signatures import _typed as _typed

__all__ = [
    "Signature",
    "chain",
    "chord",
    "chunks",
    "group",
    "maybe_signature",
    "signature",
    "subtask",
    "xmap",
    "xstarmap",
]
