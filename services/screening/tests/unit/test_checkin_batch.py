"""Check-ins in one transaction (``checkins.check_in_many``, the edge's group commit): each
is ``check_in`` exactly, in order, refusals are their own replies, and the batch is one
commit; anything else unexpected keeps nothing of the batch."""

from __future__ import annotations

import pytest

from gridcare.contracts.screening import PersonStatusChanged
from gridcare.screening.handlers import checkins

from .test_checkins import DAY, MORNING, community, req

pytestmark = pytest.mark.unit


async def test_a_batch_is_each_check_in_in_order_and_one_commit():
    uow = await community()
    before = uow.commits
    replies = await checkins.check_in_many(
        [
            req("c-1", "R-1001"),
            req("c-2", "R-1001", temp=36.8),  # the same day again: replaces c-1
            req("c-1", "R-1001"),  # c-1 again: its reply, nothing changed
            req("c-3", "R-9999"),  # not a resident
            req("c-4", "R-1002", temp=38.2, symptoms=["cough"]),  # a fever: followed up
            req("c-2", "R-1003"),  # another resident's checkin_id
        ],
        uow,
        MORNING,
    )
    assert [r.get("status") for r in replies] == [
        "recorded",
        "replaced",
        "recorded",
        None,
        "recorded",
        None,
    ]
    assert replies[3]["error"]["code"] == "unknown_person"
    assert replies[5]["error"]["code"] == "invalid_checkin"
    assert replies[4]["follow_up"] is True
    assert uow.commits - before == 1  # one transaction for the six
    kept = uow.checkins.rows
    assert kept[("R-1001", DAY)].checkin_id == "c-2"
    assert kept[("R-1002", DAY)].follow_up
    assert ("R-1003", DAY) not in kept
    assert [e["person_id"] for e in uow.events(PersonStatusChanged)] == ["R-1002"]


async def test_a_batch_gives_the_same_replies_as_one_at_a_time():
    one, many = await community(), await community()
    reqs = [req(f"c-{i}", f"R-100{1 + i % 3}", temp=36.0 + i / 5) for i in range(12)]
    alone = [await checkins.check_in(r, one, MORNING) for r in reqs]
    together = await checkins.check_in_many(reqs, many, MORNING)
    assert together == alone
    assert many.state()["checkins"] == one.state()["checkins"]
    assert many.state()["follow_ups"] == one.state()["follow_ups"]


async def test_an_unexpected_failure_keeps_nothing_of_the_batch():
    uow = await community()
    before = (uow.commits, len(uow.outbox))
    put = uow.checkins.put
    calls = 0

    async def breaks_on_the_second(*args, **kw):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk full")
        await put(*args, **kw)

    uow.checkins.put = breaks_on_the_second
    with pytest.raises(RuntimeError):
        await checkins.check_in_many([req("c-1", "R-1001"), req("c-2", "R-1002")], uow, MORNING)
    assert (uow.commits, len(uow.outbox)) == before
    assert uow.checkins.rows == {} and uow.checkins.replies == {}  # c-1 not kept either


async def test_a_steady_stream_lingers_to_share_a_commit_an_isolated_check_in_does_not(
    monkeypatch,
):
    import asyncio

    from gridcare.screening.entrypoints import residents
    from gridcare.screening.entrypoints.residents import Batcher

    monkeypatch.setattr(residents, "BUSY_GAP_S", 5.0)  # "steady" however slow the machine
    uow = await community()

    class Service:  # what the batcher takes its units of work from
        def unit_of_work(self):
            return uow

    loop = asyncio.get_running_loop()
    batcher = Batcher(Service(), lambda: MORNING, linger_s=0.3)
    before = uow.commits
    t0 = loop.time()
    first = await batcher.submit(req("c-1", "R-1001"))
    assert loop.time() - t0 < 0.25  # after a quiet spell: written at once
    assert first["status"] == "recorded" and uow.commits - before == 1
    # right after a commit (steady traffic): the next waits, and those arriving meanwhile
    # join its transaction
    second = asyncio.create_task(batcher.submit(req("c-2", "R-1002")))
    await asyncio.sleep(0.05)
    third = asyncio.create_task(batcher.submit(req("c-3", "R-1003")))
    replies = await asyncio.gather(second, third)
    assert [r["status"] for r in replies] == ["recorded", "recorded"]
    assert uow.commits - before == 2
