# A user's project, type-checked in strict mode against the installed wheel.
# Each line that ends in "# error" must be reported by mypy and by pyright; no other line may be.
from typing import Any

from celeriac import App, AsyncResult, GroupResult, Signature, Task, chain, chord, group

app = App("proj", broker="memory://typing", backend="memory://typing")


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task(queue="io", max_retries=3)
async def fetch(url: str, timeout: float = 5.0) -> bytes:
    return url.encode()


@app.task(bind=True)
def crawl(self: Task[..., Any], url: str, depth: int = 1) -> list[str]:
    return [url] * depth


@app.task(bind=True)
async def poll(self: Task[..., Any], key: str) -> int:
    return len(key)


def sync_use() -> None:
    total: AsyncResult[int] = add.delay(2, 3)
    value: int = total.get(timeout=10)
    body: bytes = fetch.delay("https://example.org").get()
    pages: list[str] = crawl.delay("https://example.org", depth=2).get()
    print(value, body, pages)
    add.delay("a", "b")  # error
    add.delay(1)  # error
    crawl.delay(url=3)  # error
    wrong: str = fetch.delay("https://example.org").get()  # error
    not_awaited: bytes = fetch.delay("https://example.org")  # error
    print(wrong, not_awaited)


async def async_use() -> None:
    sent = await add.adelay(2, 3)
    value: int = await sent
    again: int = await sent.aget(timeout=1)
    body: bytes = await (await fetch.adelay("https://example.org")).aget(timeout=10)
    pages = await crawl.adelay("https://example.org")
    page_list: list[str] = await pages
    print(value, again, body, page_list)
    await add.adelay(1, "2")  # error
    text: str = await sent  # error
    await crawl.adelay()  # error
    print(text)


async def canvas_and_control() -> None:
    results = group(add.s(i, i) for i in range(3)).apply_async()
    async for result in results:
        print(result.id, await result)
    values: list[int] = await results.aget(timeout=10)
    wrong_values: list[bytes] = await results.aget(timeout=10)  # error
    pongs = await app.acontrol.ping(timeout=1)
    active = await app.acontrol.inspect().active()
    again = await app.asend_task("proj.add", (1, 2))
    print(values, wrong_values, pongs, active, await again.aget(timeout=1))
    await app.aclose()


def signatures_and_canvas() -> None:
    step: Signature[int] = add.s(2)
    frozen: Signature[int] = add.si(2, 3)
    options: Signature[list[str]] = crawl.signature(("https://example.org",), countdown=1)
    sent: int = step.delay(3).get()
    wrong_sig: Signature[str] = add.s(2)  # error
    print(frozen, options, sent, wrong_sig)
    add.apply_async((2, 3), {"y": 3}, countdown=1)
    add.apply_async([2, 3])
    add.apply_async("23")  # error
    add.apply_async((2, 3), {1: 3})  # error
    step.apply_async((3,), countdown=1)
    step.apply_async("3")  # error

    members: GroupResult[int] = group(add.s(i, i) for i in range(3)).apply_async()
    totals: list[int] = members.get(timeout=10)
    first: AsyncResult[int] = members[0]
    wrong_list: list[str] = members.get(timeout=10)  # error
    print(totals, first, wrong_list)

    pipeline = chain(add.s(1, 2), add.s(3), crawl.s())
    pages: list[str] = pipeline.apply_async().get(timeout=10)
    piped: AsyncResult[bytes] = (add.s(1, 2) | fetch.s()).delay()
    wrong_last: int = chain(add.s(1, 2), crawl.s()).delay().get()  # error
    print(pages, piped, wrong_last)

    summed: int = chord((add.s(i, i) for i in range(3)), add.s(0)).delay().get()
    gathered: int = (group(add.s(i, i) for i in range(3)) | add.s(0)).delay().get()
    print(summed, gathered)


async def calling_directly() -> None:
    here: int = add(2, 3)
    coro = fetch("https://example.org")
    fetched: bytes = await coro
    pages: list[str] = crawl("https://example.org")
    not_awaited: bytes = fetch("https://example.org")  # error
    polled: int = await poll("key")
    sent: int = poll.delay("key").get()
    unpolled: int = poll("key")  # error
    print(here, fetched, pages, not_awaited, polled, sent, unpolled)
