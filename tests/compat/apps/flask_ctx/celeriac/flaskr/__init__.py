import os

from celeriac import Celery, Task

from .web import WebApp


def celery_init_app(web):
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with web.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(web.name, task_cls=FlaskTask)
    celery_app.config_from_object(web.config["CELERY"])
    celery_app.set_default()
    web.extensions["celery"] = celery_app
    return celery_app


def create_app():
    web = WebApp("flaskr")
    web.config["CELERY"] = {
        "broker_url": os.environ.get("COMPAT_BROKER_URL"),
        "result_backend": os.environ.get("COMPAT_BACKEND_URL"),
        "task_ignore_result": True,
        "task_default_queue": os.environ.get("COMPAT_QUEUE", "celery"),
        "imports": ["flaskr.tasks"],
    }
    celery_init_app(web)
    return web
