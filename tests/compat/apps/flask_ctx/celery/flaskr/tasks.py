from celery import shared_task

from .web import current_web_app


@shared_task(ignore_result=False)
def add(a, b):
    web = current_web_app()
    return {"sum": a + b, "in_context": web.name if web else None}


@shared_task(bind=True, ignore_result=False)
def context_of(self):
    web = current_web_app()
    return {"task": self.request.task, "in_context": web.name if web else None}


@shared_task
def fire_and_forget(x):
    return x
