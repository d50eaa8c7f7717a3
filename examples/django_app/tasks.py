"""The tasks of the Django example (``celeriac worker -A examples.django_app.tasks:app``)."""

from __future__ import annotations

from celeriac import App

app = App("orders", broker="redis://localhost:6379/0", backend="redis://localhost:6379/1")


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task(queue="orders.confirmations")
def confirm_order(order_id: int) -> str:
    return f"order {order_id} confirmed"
