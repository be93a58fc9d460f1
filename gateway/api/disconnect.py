"""Cancel the upstream work when the client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

T = TypeVar("T")


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`; if the client disconnects first, cancel it (and its upstream calls).

    One watcher task per request: it waits for `http.disconnect` and cancels the handler's
    own task, which cancels whatever the handler is awaiting.
    """
    handler = asyncio.current_task()

    async def watch() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                if handler is not None:
                    handler.cancel()
                return

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        return await work
    finally:
        watcher.cancel()
