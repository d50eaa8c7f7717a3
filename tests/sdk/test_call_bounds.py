"""Numbers a caller gives (apply_async, delay, signatures, retry, task options, the publish
retry policy) are checked where they are read, against the ranges the worker enforces
(``celeriac.bounds``): a bad one is refused with an error naming the option, and nothing is
sent; every form Celery 5.7 accepts still goes out."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from celeriac import App
from celeriac.bounds import MAX_DELAY, MAX_TIME_LIMIT, BadNumber, OutOfRange, parse_rate
from celeriac.protocol import decode_task
from celeriac.protocol.control import CONTROL_EXCHANGE
from celeriac.task import Context, _request
from celeriac.worker import boundary, limits


@pytest.fixture
def app() -> App:
    name = uuid.uuid4().hex[:8]
    return App("t", broker=f"memory://{name}", backend=f"memory://{name}")


def _sent(app: App, queue: str = "celery") -> list[Any]:
    consumer = app.producer().consumer([queue])
    try:
        deliveries = consumer.fetch(100, timeout=0.1)
        consumer.ack(deliveries)
    finally:
        consumer.close()
    return [decode_task(d.message) for d in deliveries if d.message is not None]


def _nothing_sent(app: App) -> bool:
    app.declare("celery")
    return app.producer().queue_length("celery") == 0


BAD_CALLS: list[tuple[dict[str, Any], type[BaseException], str]] = [
    ({"countdown": math.nan}, ValueError, "countdown"),
    ({"countdown": math.inf}, OverflowError, "countdown"),
    ({"countdown": -math.inf}, OverflowError, "countdown"),
    ({"countdown": MAX_DELAY + 1}, OverflowError, "countdown"),
    ({"countdown": 1e300}, OverflowError, "countdown"),
    ({"countdown": -3e9}, ValueError, "countdown"),  # past Celery's own lower bound
    ({"countdown": "5"}, TypeError, "countdown"),
    ({"eta": datetime.now(UTC) + timedelta(days=365 * 11)}, OverflowError, "eta"),
    ({"eta": datetime.max}, OverflowError, "eta"),
    ({"eta": "tomorrow"}, ValueError, "eta"),
    ({"eta": 5}, TypeError, "eta"),
    ({"expires": math.nan}, ValueError, "expires"),
    ({"expires": math.inf}, OverflowError, "expires"),
    ({"expires": 1e300}, OverflowError, "expires"),
    ({"expires": "soon"}, ValueError, "expires"),
    ({"expires": [1]}, TypeError, "expires"),
    ({"time_limit": math.nan}, ValueError, "time_limit"),
    ({"time_limit": math.inf}, ValueError, "time_limit"),
    ({"time_limit": -1}, ValueError, "time_limit"),
    ({"time_limit": MAX_TIME_LIMIT * 2}, ValueError, "time_limit"),
    ({"soft_time_limit": -0.5}, ValueError, "soft_time_limit"),
    ({"soft_time_limit": "10"}, ValueError, "soft_time_limit"),
    ({"retries": -1}, ValueError, "retries"),
    ({"retries": 1.5}, TypeError, "retries"),
    ({"retry_policy": {"max_retries": -1}}, ValueError, "retry_policy.max_retries"),
    ({"retry_policy": {"max_retries": math.nan}}, TypeError, "retry_policy.max_retries"),
    ({"retry_policy": {"interval_start": -1}}, ValueError, "retry_policy.interval_start"),
    ({"retry_policy": {"interval_max": math.inf}}, OverflowError, "retry_policy.interval_max"),
    ({"retry_policy": {"interval_step": math.nan}}, ValueError, "retry_policy.interval_step"),
]


@pytest.mark.parametrize(("options", "error", "field"), BAD_CALLS)
def test_a_bad_number_is_refused_naming_the_option_and_nothing_is_sent(
    app: App, options: dict[str, Any], error: type[BaseException], field: str
) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(error) as caught:
        add.apply_async((1, 2), **options)
    assert field in str(caught.value) and add.name in str(caught.value)
    assert isinstance(caught.value, BadNumber | TypeError)
    assert _nothing_sent(app)


def test_signature_and_send_task_are_checked_too(app: App) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(ValueError, match="countdown"):
        add.s(1, 2).apply_async(countdown=math.nan)
    with pytest.raises(ValueError, match="time_limit"):
        add.signature((1, 2), time_limit=-5).delay()
    with pytest.raises(OverflowError, match="countdown"):
        app.send_task("elsewhere.task", countdown=math.inf)
    assert _nothing_sent(app)


def test_the_publish_retry_setting_is_checked_by_name(app: App) -> None:
    app.conf.task_publish_retry_policy = {"max_retries": -2}

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(ValueError, match=r"task_publish_retry_policy\.max_retries"):
        add.delay(1, 2)
    assert _nothing_sent(app)


def test_every_form_celery_accepts_still_goes_out(app: App) -> None:
    app.conf.task_eta_in_broker = False  # every message in the queue at once, to read back

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    later = datetime.now(UTC) + timedelta(hours=1)
    naive = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=2)
    calls: list[dict[str, Any]] = [
        {"countdown": 1.5},
        {"countdown": 3},
        {"countdown": -10},  # already due: Celery sends it with an ETA in the past
        {"countdown": 0},
        {"eta": later},
        {"eta": naive},  # naive is UTC
        {"eta": later.isoformat()},  # Celery passes an ISO string through
        {"eta": datetime.now(UTC) - timedelta(days=3)},
        {"expires": 60},
        {"expires": 0.5},
        {"expires": -5},  # already expired: Celery warns and sends it
        {"expires": later},
        {"expires": later.isoformat()},
        {"expires": later + timedelta(days=365 * 50)},  # no worker range for a late expiry
        {"time_limit": 30, "soft_time_limit": 20.5},
        {"time_limit": 0},  # no limit
        {"time_limit": MAX_TIME_LIMIT},
        {"retries": 2},
        {"retry_policy": {"max_retries": 0, "interval_start": 0, "interval_step": 0.5}},
    ]
    for options in calls:
        add.apply_async((1, 2), **options)
    sent = _sent(app)
    assert len(sent) == len(calls)
    by_call = dict(zip(range(len(calls)), sent, strict=True))
    assert abs((by_call[0].headers.eta - datetime.now(UTC)).total_seconds() - 1.5) < 5
    assert by_call[2].headers.eta < datetime.now(UTC)
    assert by_call[5].headers.eta.replace(tzinfo=None) == naive
    assert by_call[6].headers.eta == later
    assert by_call[10].headers.expires < datetime.now(UTC)
    assert by_call[12].headers.expires == later
    assert by_call[14].headers.time_limit == 30 and by_call[14].headers.soft_time_limit == 20.5
    assert by_call[17].headers.retries == 2


BAD_TASK_OPTIONS: list[tuple[dict[str, Any], type[BaseException], str]] = [
    ({"time_limit": math.nan}, ValueError, "time_limit"),
    ({"soft_time_limit": MAX_TIME_LIMIT + 1}, ValueError, "soft_time_limit"),
    ({"max_retries": -1}, ValueError, "max_retries"),
    ({"max_retries": math.inf}, TypeError, "max_retries"),
    ({"default_retry_delay": -3}, ValueError, "default_retry_delay"),
    ({"default_retry_delay": math.nan}, ValueError, "default_retry_delay"),
    ({"retry_backoff": math.inf}, OverflowError, "retry_backoff"),
    ({"retry_backoff": -2}, ValueError, "retry_backoff"),
    ({"retry_backoff_max": MAX_DELAY * 2}, OverflowError, "retry_backoff_max"),
    ({"rate_limit": "abc"}, ValueError, "rate_limit"),
    ({"rate_limit": "10/d"}, ValueError, "rate_limit"),
    ({"rate_limit": "nan/s"}, ValueError, "rate_limit"),
    ({"rate_limit": "-1/s"}, ValueError, "rate_limit"),
    ({"rate_limit": "1/2h"}, ValueError, "rate_limit"),
    ({"rate_limit": "0.5/h"}, ValueError, "rate_limit"),  # slower than the worker's 1/h
    ({"global_rate_limit": math.inf}, ValueError, "global_rate_limit"),
    ({"expires": math.nan}, ValueError, "expires"),
]


@pytest.mark.parametrize(("options", "error", "field"), BAD_TASK_OPTIONS)
def test_a_bad_task_option_is_refused_at_definition(
    app: App, options: dict[str, Any], error: type[BaseException], field: str
) -> None:
    with pytest.raises(error) as caught:

        @app.task(**options)
        def add(x: int, y: int) -> int:
            return x + y

    assert field in str(caught.value) and "add" in str(caught.value)


@pytest.mark.parametrize(
    ("rate", "per_second"),
    [("10/s", 10.0), ("60/m", 1.0), ("3600/h", 1.0), ("5", 5.0), (" 2 / m ", 2 / 60),
     ("1e2/s", 100.0), (".5/s", 0.5), (2, 2.0), (0.5, 0.5), ("0/s", None), (None, None)],
)  # fmt: skip
def test_rate_strings_are_read_as_celery_reads_them(rate: Any, per_second: float | None) -> None:
    assert parse_rate(rate) == (None if per_second is None else pytest.approx(per_second))


def test_the_worker_shares_the_client_ranges() -> None:
    assert boundary.MAX_TIME_LIMIT is MAX_TIME_LIMIT and boundary.MAX_DELAY is MAX_DELAY
    assert boundary.BadNumber is BadNumber and limits.parse_rate is parse_rate
    assert issubclass(OutOfRange, BadNumber) and issubclass(OutOfRange, OverflowError)


def _retrying(app: App, **task_options: Any) -> Any:
    @app.task(bind=True, **task_options)
    def flaky(self: Any) -> None:
        raise self.retry(**flaky.retry_with)

    flaky.retry_with = {}
    return flaky


def _inside(task: Any, retries: int = 0) -> Any:
    return _request.set(
        Context(id=uuid.uuid4().hex, task=task.name, retries=retries, delivery_info={})
    )


@pytest.mark.parametrize(
    ("retry_with", "error", "field"),
    [
        ({"countdown": math.nan}, ValueError, "retry(countdown)"),
        ({"countdown": math.inf}, OverflowError, "retry(countdown)"),
        ({"countdown": MAX_DELAY * 3}, OverflowError, "retry(countdown)"),
        ({"max_retries": -1}, ValueError, "retry(max_retries)"),
        ({"max_retries": "3"}, TypeError, "retry(max_retries)"),
    ],
)
def test_retry_refuses_bad_numbers(
    app: App, retry_with: dict[str, Any], error: type[BaseException], field: str
) -> None:
    flaky = _retrying(app)
    flaky.retry_with = retry_with
    token = _inside(flaky)
    try:
        with pytest.raises(error) as caught:
            flaky.run()
    finally:
        _request.reset(token)
    assert field in str(caught.value)
    assert _nothing_sent(app)


def test_retry_checks_the_setting_that_stands_in_for_the_option(app: App) -> None:
    app.conf.task_default_retry_delay = math.nan
    flaky = _retrying(app)
    token = _inside(flaky)
    try:
        with pytest.raises(ValueError, match="default_retry_delay"):
            flaky.run()
    finally:
        _request.reset(token)
    assert _nothing_sent(app)


def test_a_long_backoff_is_capped_not_overflowed(app: App) -> None:
    app.conf.task_eta_in_broker = False
    flaky = _retrying(
        app, retry_backoff=True, retry_jitter=False, retry_backoff_max=700, max_retries=None
    )
    token = _inside(flaky, retries=5000)  # 2**5000 is past any float
    try:
        with pytest.raises(Exception) as caught:
            flaky.run()
    finally:
        _request.reset(token)
    assert type(caught.value).__name__ == "Retry" and caught.value.when == 700
    (sent,) = _sent(app)
    wait = (sent.headers.eta - datetime.now(UTC)).total_seconds()
    assert 690 < wait <= 700 and sent.headers.retries == 5001


def test_retry_honours_an_eta_and_checks_it(app: App) -> None:
    app.conf.task_eta_in_broker = False
    flaky = _retrying(app)
    at = datetime.now(UTC) + timedelta(hours=2)
    flaky.retry_with = {"eta": at}
    token = _inside(flaky)
    try:
        with pytest.raises(Exception) as caught:
            flaky.run()
        assert type(caught.value).__name__ == "Retry" and caught.value.when == at
        flaky.retry_with = {"eta": "whenever"}
        with pytest.raises(ValueError, match="eta"):
            flaky.run()
    finally:
        _request.reset(token)
    (sent,) = _sent(app)
    assert sent.headers.eta == at  # not the default retry delay's


def test_control_refuses_what_a_worker_would_before_sending(app: App) -> None:
    got = app.producer().subscribe(CONTROL_EXCHANGE)
    try:
        with pytest.raises(ValueError, match="rate_limit"):
            app.control.rate_limit("t.add", "0.1/h")
        with pytest.raises(ValueError, match="hard"):
            app.control.time_limit("t.add", soft=1, hard=math.inf)
        with pytest.raises(ValueError, match="soft"):
            app.control.time_limit("t.add", soft=-1)
        assert got.get(timeout=0.2) is None  # nothing was broadcast
        app.control.rate_limit("t.add", "10/m")
        assert got.get(timeout=5) is not None
    finally:
        got.close()
