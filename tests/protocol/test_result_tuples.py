"""Result tuples and saved groups (SPEC.md §7.2, §7.4): Celery's bytes, bad input named."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from celeriac.protocol import ValidationError
from celeriac.protocol.result_tuples import check_result_tuple, decode_group, encode_group

TREE = [["g", None], [[["a", None], None], [["b", [["p", None], None]], None]]]


def test_a_saved_group_is_celerys_json() -> None:
    assert orjson.loads(encode_group(TREE)) == {"result": TREE}
    assert decode_group(encode_group(TREE)) == TREE


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("g", "result"),
        ([["g", None]], "result"),
        ([[1, None], None], "result[0]"),
        ([["g", "p"], None], "result[0][1]"),
        ([["g", None], "members"], "result[1]"),
        ([["g", None], [["x"]]], "result[1][0]"),
    ],
)
def test_a_bad_tuple_names_the_field(value: Any, path: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_result_tuple(value)
    assert caught.value.path == path


def test_a_saved_group_must_have_members_and_a_result_key() -> None:
    with pytest.raises(ValidationError, match="members"):
        encode_group([["g", None], None])
    with pytest.raises(ValidationError, match="'result' key"):
        decode_group(b'{"other": 1}')


def test_a_tree_too_deep_is_refused() -> None:
    tree: Any = [["leaf", None], None]
    for i in range(100):
        tree = [[f"n{i}", tree], None]
    with pytest.raises(ValidationError, match="deeper"):
        check_result_tuple(tree)
