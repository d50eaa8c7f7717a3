"""Where one Redis round trip (``delay().get()``) spends its time: ``python -m bench.rttrace``.

A worker (threads pool, from its command line) and a client each record monotonic timestamps
(one clock for every process on the machine) at the steps of each round trip, through hooks
that ``hooks/sitecustomize.py`` wraps around Celeriac's functions when ``RTTRACE`` is set.
The steps, in order: the client's ``delay()`` starts and returns; the worker wakes on the
publish's poke, runs its fetch script and has the message; the job reaches the pool (or runs in
the loop) and the task starts; the result is sent (one script: SET and PUBLISH); the client's
first GET of the record returns; the client has the result.
"""
