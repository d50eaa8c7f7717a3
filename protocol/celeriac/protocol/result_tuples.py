"""Result tuples (SPEC.md §7.2): how Celery names a result, a group's or a task's, with its
parents, in a record's ``children`` and in a saved group (§7.4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import serializers
from .errors import ValidationError
from .limits import DEFAULT_LIMITS, Limits

__all__ = ["check_result_tuple", "decode_group", "encode_group"]

_MAX_DEPTH = 64  # parents and members nest; a deeper tree is refused, not recursed into


def check_result_tuple(value: Any, path: str = "result", depth: int = 0) -> None:
    """Raise ValidationError (naming the field) unless ``value`` is a result tuple:
    ``[[id, parent tuple or null], null]`` or ``[[group id, parent or null], [tuple, ...]]``."""
    if depth > _MAX_DEPTH:
        raise ValidationError(path, f"nested deeper than {_MAX_DEPTH}")
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValidationError(path, "a result tuple is a pair [[id, parent], members or null]")
    head, members = value
    if isinstance(head, str):  # Celery's reader also takes a bare id
        head = [head, None]
    if not isinstance(head, list | tuple) or len(head) != 2 or not isinstance(head[0], str):
        raise ValidationError(f"{path}[0]", "must be [id, parent tuple or null]")
    if head[1] is not None:
        check_result_tuple(head[1], f"{path}[0][1]", depth + 1)
    if members is None:
        return
    if not isinstance(members, list | tuple):
        raise ValidationError(f"{path}[1]", "must be a list of result tuples or null")
    for index, member in enumerate(members):
        check_result_tuple(member, f"{path}[1][{index}]", depth + 1)


def encode_group(tree: Any, serializer: str = "json") -> bytes:
    """A saved group's value: ``{"result": <group result tuple>}``, as Celery's backends write
    it under ``celery-taskset-meta-<group id>``."""
    check_result_tuple(tree)
    if tree[1] is None:
        raise ValidationError("result[1]", "a saved group has a list of members")
    data, _, _ = serializers.dumps({"result": tree}, serializer, path="result")
    return data


def decode_group(
    data: bytes, content_type: str = serializers.JSON, *, limits: Limits = DEFAULT_LIMITS
) -> Any:
    """The group result tuple of a saved group; errors name the field."""
    value = serializers.loads(data, content_type, limits=limits)
    if not isinstance(value, Mapping) or "result" not in value:
        raise ValidationError("result", "a saved group is a mapping with a 'result' key")
    check_result_tuple(value["result"])
    return value["result"]
