"""Flask with Celeriac: tasks run inside the Flask application context."""

from __future__ import annotations

from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue

from celeriac import App
from celeriac.contrib.flask import in_app_context

flask_app = Flask(__name__)
flask_app.config["GREETING"] = "hello"

app = App("site", broker="redis://localhost:6379/0", backend="redis://localhost:6379/1")


@app.task
@in_app_context(flask_app)
def greet(name: str) -> str:
    """Reads the Flask configuration, as a view would."""
    return f"{current_app.config['GREETING']}, {name}"


@flask_app.post("/greet/<name>")
def send_greeting(name: str) -> ResponseReturnValue:
    return jsonify(task_id=greet.delay(name).id)


@flask_app.get("/greet/result/<task_id>")
def greeting(task_id: str) -> ResponseReturnValue:
    return jsonify(value=app.AsyncResult(task_id).get(timeout=5))
