from celeriac import shared_task
from django.conf import settings


@shared_task
def add(x, y):
    return x + y


@shared_task
def setting(name):
    return getattr(settings, name, None)


@shared_task(name="polls.count_votes")
def count_votes(votes):
    return sum(votes)
