"""An async view that awaits a task, and a view that sends one only if its transaction
commits."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, JsonResponse

from celeriac.contrib.django import delay_on_commit

from .tasks import add, confirm_order


async def add_view(request: HttpRequest) -> JsonResponse:
    """``/add?x=1&y=2``: send, then await the result for at most 5 s (504 after)."""
    x, y = int(request.GET["x"]), int(request.GET["y"])
    result = await add.adelay(x, y)
    try:
        value = await result.aget(timeout=5)
    except TimeoutError:
        return JsonResponse({"task_id": result.id, "error": "not ready"}, status=504)
    return JsonResponse({"task_id": result.id, "value": value})


def order_view(request: HttpRequest) -> JsonResponse:
    """``/order?id=7&fail=1``: the confirmation is sent only if the transaction commits."""
    order_id = int(request.GET["id"])
    try:
        with transaction.atomic():
            delay_on_commit(confirm_order, order_id)
            if request.GET.get("fail"):
                raise ValueError("payment refused")  # rolls back: nothing is sent
    except ValueError as exc:
        return JsonResponse({"order": order_id, "error": str(exc)}, status=402)
    return JsonResponse({"order": order_id, "queued": True})
