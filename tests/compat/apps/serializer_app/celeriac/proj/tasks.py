from .celery import app


@app.task
def echo(value):
    return {"got": value}


@app.task
def count(values):
    return len(values)
