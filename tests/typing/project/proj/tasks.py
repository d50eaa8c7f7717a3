# A user's project, type-checked in strict mode against the installed wheel.
# Each line that ends in "# error" must be reported by mypy and by pyright; no other line may be.
from typing import Any

from celeriac import App, AsyncResult, Task, group

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
    values: list[Any] = await results.aget(timeout=10)
    pongs = await app.acontrol.ping(timeout=1)
    active = await app.acontrol.inspect().active()
    again = await app.asend_task("proj.add", (1, 2))
    print(values, pongs, active, await again.aget(timeout=1))
    await app.aclose()
