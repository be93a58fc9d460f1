"""Cancel the upstream work when the client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

T = TypeVar("T")

WATCH_AFTER_S = 0.2
"""A request still running after this long gets a disconnect watcher. Most answers come
sooner (a local model in a millisecond, a fast upstream in tens), and a watcher task for each
of them was ~5% of a classify call's CPU; a slow upstream call (seconds) is still cancelled
within this long of the client leaving."""


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`; if the client disconnects first, cancel it (and its upstream calls).

    After `WATCH_AFTER_S`, one watcher task waits for `http.disconnect` and cancels the
    handler's own task, which cancels whatever the handler is awaiting.
    """
    handler = asyncio.current_task()
    loop = asyncio.get_running_loop()
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                if handler is not None:
                    handler.cancel()
                return

    def start_watching() -> None:
        nonlocal watcher
        watcher = loop.create_task(watch())

    timer = loop.call_later(WATCH_AFTER_S, start_watching)
    try:
        return await work
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()
