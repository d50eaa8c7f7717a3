"""The worker side of tests/aio/test_no_stall.py, in a process of its own (settings from the
CELERIAC_* variables the test sets)."""

from celeriac import App

app = App("stall")


@app.task(name="stall.add")
def add(x: int, y: int) -> int:
    return x + y
