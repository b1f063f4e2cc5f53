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


class Linger:
    """Group commit's pacing: under steady traffic (the previous commit began less than
    ``busy_gap_s`` ago) and with fewer than ``small_batch`` queued, wait ``linger_s`` for
    more to join the next commit (a commit costs about as much as a dozen items); after a
    quiet spell the first item is written at once. Used by the gate register and the
    check-in edge."""

    def __init__(self, linger_s: float, busy_gap_s: float, small_batch: int = 32) -> None:
        self.linger_s = linger_s
        self.busy_gap_s = busy_gap_s
        self.small_batch = small_batch
        self._last_commit = float("-inf")  # loop time of the last commit's start

    async def before_commit(self, queued: int, stopping: bool = False) -> None:
        """Called just before a commit of what is queued (``queued`` items)."""
        loop = asyncio.get_running_loop()
        if (
            self.linger_s
            and queued < self.small_batch
            and not stopping
            and loop.time() - self._last_commit < self.busy_gap_s
        ):
            await asyncio.sleep(self.linger_s)
        self._last_commit = loop.time()


class Foreground:
    """Work people wait on and long background passes, sharing one event loop.

    Foreground work (a batch of check-ins whose senders wait for the reply) says when it
    starts (:meth:`begin`), after each batch it finishes (:meth:`step`), and when it has
    nothing left (:meth:`end`). A background pass (the morning reminders) calls
    :meth:`make_way` between its steps: with no foreground work under way it goes on at
    once (after one turn of the loop); otherwise it waits until the next batch has
    finished, at most ``max_wait_s``, so the pass takes what the loop has spare and the
    replies do not queue behind it. One per process (:data:`FOREGROUND`)."""

    def __init__(self) -> None:
        self._active = 0
        self._waiters: list[asyncio.Future] = []

    @property
    def active(self) -> bool:
        return self._active > 0

    def begin(self) -> None:
        self._active += 1

    def end(self) -> None:
        self._active = max(0, self._active - 1)
        self.step()

    def step(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def make_way(self, max_wait_s: float = 0.05) -> None:
        if not self._active:
            await asyncio.sleep(0)
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait({waiter}, timeout=max_wait_s)
        finally:
            if not waiter.done():
                waiter.cancel()
                self._waiters.remove(waiter)


#: the process's foreground work and background passes (:class:`Foreground`)
FOREGROUND = Foreground()
