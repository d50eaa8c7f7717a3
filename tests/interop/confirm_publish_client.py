"""One client, run by Celery 5.7's python or by ours: ``python confirm_publish_client.py
celery|celeriac BROKER QUEUE on|off``. It sends a first task (the connection is then open),
prints ``ready``, and on each line read from stdin sends one more task and prints ``sent`` once
``send_task`` has returned. ``on`` sets Kombu's ``confirm_publish`` transport option. The same
lines run against either package: only the import differs, as the README promises."""

import importlib
import sys


def main() -> None:
    package, broker, queue, confirm = sys.argv[1:5]
    Celery = importlib.import_module(package).Celery
    options = {"confirm_publish": True} if confirm == "on" else {}
    app = Celery("confirm-side", broker=broker)
    app.conf.broker_transport_options = options
    app.send_task("confirm.noop", queue=queue)
    print("ready", flush=True)
    for _ in sys.stdin:
        app.send_task("confirm.noop", queue=queue)
        print("sent", flush=True)
    close = getattr(app, "close", None)
    if close is not None:
        close()


if __name__ == "__main__":
    main()
