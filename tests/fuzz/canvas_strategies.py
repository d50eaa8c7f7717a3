"""Hypothesis strategies for the signatures a task message embeds (callbacks, errbacks, chain,
chord): valid ones the worker sends on, nested ones (groups, chains and chords inside each
other, links inside links), wrong types at every field, and huge or deep ones."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import strategies as st

from celeriac.protocol import WireMessage, encode_task, new_task_message
from tests.fuzz.strategies import EDGE_FLOATS, EDGE_NUMBERS, OPTION_KEYS, Hostile, limits, values

#: Task names a signature may carry: the harness's own (most of the time), Celery's built-ins
#: (which the worker must not run from a client's say-so), unknown and empty ones.
TASK_NAMES = ["fz.ok", "fz.ok", "fz.ok", "fz.fail", "fz.unknown", "", "celery.group",
              "celery.chain", "celery.chord", "celery.chord_unlock", "celery.map",
              "celery.accumulate", "celery.backend_cleanup"]  # fmt: skip
SUBTASK_TYPES = [None, None, "group", "chain", "chord", "xmap", "xstarmap", "chunks", "bogus"]
#: Options a follow-up keeps: the numbers among them are drawn at and past every range.
SIG_OPTION_KEYS = [*OPTION_KEYS, "retries", "group_id", "group_index", "chord_size"]


#: Numbers at and past the ranges a follow-up's options are checked against.
OPTION_NUMBERS = st.one_of(
    st.sampled_from(EDGE_NUMBERS), st.sampled_from(EDGE_FLOATS), st.floats(), st.integers()
)


def _options() -> st.SearchStrategy[Any]:
    numeric = st.dictionaries(
        st.sampled_from(["countdown", "expires", "time_limit", "soft_time_limit", "priority",
                         "retries"]),
        OPTION_NUMBERS,
        max_size=2,
    )  # fmt: skip
    hostile = st.dictionaries(st.sampled_from(SIG_OPTION_KEYS), limits, max_size=3)
    return st.one_of(st.just({}), st.just({}), numeric, numeric, hostile)


leaf = st.fixed_dictionaries(
    {
        "task": st.sampled_from(TASK_NAMES),
        "args": st.lists(st.integers() | st.text(max_size=8), max_size=2),
        "kwargs": st.just({}),
        "options": _options(),
        "subtask_type": st.sampled_from(SUBTASK_TYPES),
        "immutable": st.booleans(),
    },
    optional={"chord_size": limits},
)


def _typed_wrong(sig: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A signature with one field of a wrong type (or missing)."""

    def spoil(pair: tuple[dict[str, Any], str, Any]) -> dict[str, Any]:
        found, key, value = pair
        spoiled = dict(found)
        if value is _MISSING:
            spoiled.pop(key, None)
        else:
            spoiled[key] = value
        return spoiled

    keys = st.sampled_from(["task", "args", "kwargs", "options", "subtask_type", "immutable"])
    return st.tuples(sig, keys, values | st.just(_MISSING)).map(spoil)


_MISSING = object()


def _group(tasks: list[Any]) -> dict[str, Any]:
    return {"task": "celery.group", "args": [], "kwargs": {"tasks": tasks}, "options": {},
            "subtask_type": "group", "immutable": False}  # fmt: skip


def _chain(tasks: list[Any]) -> dict[str, Any]:
    return {"task": "celery.chain", "args": [], "kwargs": {"tasks": tasks}, "options": {},
            "subtask_type": "chain", "immutable": False}  # fmt: skip


def _chord(pair: tuple[list[Any], Any]) -> dict[str, Any]:
    header, body = pair
    return {"task": "celery.chord", "args": [],
            "kwargs": {"header": _group(header), "body": body, "kwargs": {}},
            "options": {}, "subtask_type": "chord", "immutable": False}  # fmt: skip


def _linked(pair: tuple[dict[str, Any], list[Any], list[Any]]) -> dict[str, Any]:
    sig, link, link_error = pair
    options = sig.get("options")
    options = dict(options) if isinstance(options, dict) else {}
    options.update(link=link, link_error=link_error)
    return {**sig, "options": options}


signatures = st.recursive(
    st.one_of(leaf, leaf, leaf, _typed_wrong(leaf)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(_group),
        st.lists(inner, max_size=3).map(_chain),
        st.tuples(st.lists(inner, max_size=3), inner).map(_chord),
        st.tuples(inner, st.lists(inner, max_size=2), st.lists(inner, max_size=2)).map(_linked),
    ),
    max_leaves=8,
)


def _deep(depth: int) -> dict[str, Any]:
    """A callback linking to a callback ... ``depth`` times (each a valid signature)."""
    sig: dict[str, Any] = {"task": "fz.ok", "args": [], "kwargs": {}, "options": {},
                           "subtask_type": None, "immutable": True}  # fmt: skip
    for _ in range(depth):
        sig = {**sig, "options": {"link": [sig]}}
    return sig


def _wide(count: int) -> list[dict[str, Any]]:
    return [{"task": "fz.ok", "args": [i], "kwargs": {}, "options": {}, "subtask_type": None,
             "immutable": True} for i in range(count)]  # fmt: skip


def _fat(size: int) -> dict[str, Any]:
    return {"task": "fz.ok", "args": ["x" * size], "kwargs": {}, "options": {},
            "subtask_type": None, "immutable": True}  # fmt: skip


#: What an embed field holds: a list of signatures, one signature, a wrong type, or a huge or
#: deep one.
sig_lists = st.one_of(
    st.lists(signatures, max_size=3),
    st.lists(signatures, max_size=3),
    signatures,
    values,
    st.integers(min_value=1, max_value=25).map(_deep).map(lambda s: [s]),
    st.integers(min_value=30, max_value=2_000).map(_deep).map(lambda s: [s]),
    st.integers(min_value=1, max_value=40).map(_wide),
    st.integers(min_value=1_000, max_value=400_000).map(_fat).map(lambda s: [s]),
)
_lists = st.one_of(sig_lists, st.lists(signatures, min_size=1, max_size=3))
_chord = st.one_of(signatures, signatures, signatures, sig_lists)


@st.composite
def embeds(draw: Any) -> dict[str, Any]:
    """One to four of the embed's fields, each drawn."""
    keys = draw(st.sets(st.sampled_from(["callbacks", "errbacks", "chain", "chord"]), min_size=1))
    return {key: draw(_chord if key == "chord" else _lists) for key in sorted(keys)}


@st.composite
def signature_messages(draw: Any) -> Hostile:
    """A valid call of ``fz.ok`` or ``fz.fail`` whose embed holds drawn signatures; sometimes
    with the group headers a chord member carries."""
    task_id = str(uuid.uuid4())
    name = draw(st.sampled_from(["fz.ok", "fz.ok", "fz.fail"]))
    base = encode_task(new_task_message(name, (1,), task_id=task_id))
    headers: dict[str, Any] = dict(base.headers)
    if draw(st.booleans()):
        # A chord member (well-formed: wrong headers are test_worker_fuzz.py's part).
        headers["group"] = str(uuid.uuid4())
        headers["group_index"] = draw(st.integers(0, 3))
    embed = draw(embeds())
    try:
        body = json.dumps([[1], {}, embed]).encode()
    except (ValueError, RecursionError):  # nesting json refuses: still a message to send
        body = b"[[1], {}, " + b"[" * 3000 + b"]" * 3000 + b"]"
    return Hostile(
        WireMessage(body, base.content_type, base.content_encoding, headers, base.properties),
        task_id,
        False,
    )
