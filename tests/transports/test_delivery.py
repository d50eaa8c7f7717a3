"""A delivery made without ``extra`` shares one empty dict that refuses writes; one made with
its own keeps it."""

from __future__ import annotations

import pytest

from celeriac.transports import Delivery


def test_a_delivery_without_extra_shares_an_empty_one_that_refuses_writes() -> None:
    first, second = Delivery("q", None, 1), Delivery("q", None, 2)
    assert first.extra == {} and first.extra is second.extra
    with pytest.raises(TypeError, match="without extra="):
        first.extra["list"] = "q"
    with pytest.raises(TypeError):
        first.extra.update(list="q")
    with pytest.raises(TypeError):
        first.extra.setdefault("list", "q")
    assert second.extra == {}


def test_a_delivery_keeps_the_extra_it_was_given() -> None:
    mine = {"list": "q"}
    delivery = Delivery("q", None, 1, extra=mine)
    delivery.extra["group"] = "g"
    assert delivery.extra is mine and mine == {"list": "q", "group": "g"}
    assert Delivery("q", None, 1) == Delivery("q", None, 1, extra={})
