"""Bounded concurrency over a lazy sequence of work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def bounded(work: Callable[[T], Awaitable[None]], items: Iterable[T], limit: int) -> None:
    """Run `work(item)` for every item, at most `limit` at a time. Items are taken one
    by one as workers free up (never all scheduled at once); the first failure cancels
    the rest and is raised."""
    iterator = iter(items)

    async def worker() -> None:
        for item in iterator:  # shared: each item goes to exactly one worker
            await work(item)

    async with asyncio.TaskGroup() as group:
        for _ in range(max(1, limit)):
            group.create_task(worker())
