"""Small asyncio helpers the services share."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


async def stop_task(task: asyncio.Task | None) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling again while it goes on.

    One ``cancel()`` is not always enough on Python 3.11: ``asyncio.wait_for`` (used by
    libraries, too) swallows a cancellation that arrives just as the awaitable it waits
    for completes, and a background loop then carries on while ``await task`` waits for
    ever. (This hung a service's stop now and then before this helper.)
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if not task.cancelled() and task.exception() is not None:
        log.warning("task %s ended with an error", task.get_name(), exc_info=task.exception())


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait for ``event`` at most ``seconds``: whether it was set (unlike
    ``asyncio.wait_for``, a cancellation is never lost)."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
