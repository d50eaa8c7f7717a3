from celery import group

from .celery import app


@app.task
def add(x, y):
    return x + y


@app.task
def mul(x, y):
    return x * y


@app.task
def xsum(numbers):
    return sum(numbers)


@app.task
def ident(x):
    return x


@app.task
def fails(x):
    raise ValueError(f"bad {x}")


@app.task(bind=True)
def spawns(self, n):
    """Sends a group and a task from inside the task: its children."""
    group(add.s(i, i) for i in range(n)).apply_async()
    add.delay(100, n)
    return n
