"""The shared asyncio helpers: a background loop always stops."""

from __future__ import annotations

import asyncio

from gridcare.shared.aio import Foreground, stop_task, wait_event


async def test_stop_task_ends_a_loop_whose_wait_for_swallowed_the_cancel():
    """A relay-like loop waits for its wake-up with ``asyncio.wait_for``; the wake-up and
    the cancel come in the same moment (a last commit wakes it as the service stops). On
    Python 3.11 ``wait_for`` then returns normally and the loop carries on: one cancel
    does not end it, ``stop_task`` does."""
    wake = asyncio.Event()
    rounds = 0

    async def relay_loop() -> None:
        nonlocal rounds
        while True:
            try:
                await asyncio.wait_for(wake.wait(), 10)
            except TimeoutError:
                pass
            wake.clear()
            rounds += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(relay_loop())
    await asyncio.sleep(0.01)  # waiting for its wake-up
    wake.set()
    task.cancel()  # what a stop used to do: on Python 3.11 this cancel is lost
    await asyncio.sleep(0.05)
    await asyncio.wait_for(stop_task(task), 5)
    assert task.done()


async def test_stop_task_accepts_none_and_finished_tasks():
    await stop_task(None)
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    await stop_task(done)
    assert done.done() and not done.cancelled()


async def test_wait_event_says_whether_it_was_set():
    ev = asyncio.Event()
    assert await wait_event(ev, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, ev.set)
    assert await wait_event(ev, 5) is True


async def test_wait_event_never_loses_a_cancel():
    """The same race as above, with ``wait_event``: one cancel is enough."""
    wake = asyncio.Event()

    async def loop() -> None:
        while True:
            await wait_event(wake, 10)
            wake.clear()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    wake.set()
    task.cancel()
    await asyncio.sleep(0.05)
    assert task.cancelled()


async def test_a_background_pass_makes_way_for_foreground_batches():
    """With no foreground work a pass goes on after one turn of the loop; while a batch is
    under way it waits for that batch to finish, and never longer than its bound."""
    fg = Foreground()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await fg.make_way(max_wait_s=1.0)
    assert loop.time() - t0 < 0.05  # nothing to make way for

    fg.begin()
    order: list[str] = []

    async def batch() -> None:
        await asyncio.sleep(0.1)
        order.append("batch written")
        fg.step()

    async def pass_step() -> None:
        await fg.make_way(max_wait_s=1.0)
        order.append("pass goes on")

    await asyncio.gather(pass_step(), batch())
    assert order == ["batch written", "pass goes on"]

    t0 = loop.time()
    await fg.make_way(max_wait_s=0.05)  # a batch that does not finish: the bound holds
    assert 0.04 < loop.time() - t0 < 0.5
    assert not fg._waiters  # the one that gave up is not left behind
    fg.end()
    assert not fg.active
