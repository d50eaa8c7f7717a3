from .celery import app


@app.task
def add(x, y):
    return x + y


@app.task
def mul(x, y):
    return x * y


@app.task(name="proj.custom_name")
def renamed():
    return "renamed"


@app.task(bind=True)
def whoami(self):
    return {"task": self.request.task, "retries": self.request.retries}


@app.task
def waits_inside():
    try:
        return add.delay(1, 1).get(timeout=10)
    except RuntimeError as exc:
        return f"RuntimeError: {str(exc).splitlines()[0]}"


@app.task
def xsum(numbers):
    return sum(numbers)
