"""Check-ins arriving together over a real nats-server and real stores (SQLite and
PostgreSQL) go into one transaction (the edge's group commit, set-based): every reply is
committed, a repeat in the same batch is the same reply, the same day met again in a batch
replaces, and many replaced at once are each updated. At stop, every check-in received is
written and answered."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa
from screening_kit import checkin_settings

from gridcare.screening.adapters import tables as T
from gridcare.screening.bootstrap import build

from .test_checkins import DAY, ask, checkin, count, world  # noqa: F401 (the fixture)

PEOPLE = ("R-1001", "R-1002")
DAYS = (DAY, DAY - timedelta(days=1))


async def test_many_at_once_are_each_taken_and_all_committed(world):  # noqa: F811
    state, _, nc, _ = world
    svc = state["svc"]
    # one check-in per person and day, at once: all recorded
    first = await asyncio.gather(
        *(
            ask(nc, p, checkin(f"a-{p}-{d}", person=p, day=d.isoformat()))
            for p in PEOPLE
            for d in DAYS
        )
    )
    assert [r["status"] for r in first] == ["recorded"] * 4
    # then 4 more for the same days, 4 repeats of them, a fever and a stranger, at once
    reqs = [
        (p, checkin(f"b-{p}-{d}", person=p, day=d.isoformat(), temperature_c=36.9))
        for p in PEOPLE
        for d in DAYS
    ]
    reqs += reqs
    reqs.append(("R-1001", checkin("b-fever", temperature_c=38.4, symptoms=["cough"])))
    reqs.append(("R-9999", checkin("b-stranger", person="R-9999")))
    replies = await asyncio.gather(*(ask(nc, p, body) for p, body in reqs))
    assert replies[:4] == replies[4:8]  # a repeat: the same reply
    assert [r["status"] for r in replies[:4]] == ["replaced"] * 4
    assert replies[8]["status"] == "replaced" and replies[8]["follow_up"] is True
    assert replies[9]["error"]["code"] == "unknown_person"
    # every reply's check-in is kept; one in force per person and day
    assert await count(svc, T.checkin_requests) == 4 + 4 + 1
    async with svc.store.sessions() as s:
        rows = {(r.person_id, r.day): r for r in await s.execute(sa.select(T.checkins))}
    assert set(rows) == {(p, d) for p in PEOPLE for d in DAYS}
    assert rows[("R-1002", DAYS[1])].checkin_id == f"b-R-1002-{DAYS[1]}"
    assert rows[("R-1002", DAYS[1])].temperature_c == 36.9
    assert rows[("R-1001", DAY)].checkin_id in {"b-fever", f"b-R-1001-{DAY}"}


async def test_at_stop_every_check_in_received_is_answered_and_kept(
    world,  # noqa: F811
    tmp_path,
    database_url,
):
    """Screening stops while check-ins pour in: each request gets its reply, committed, or
    (sent after the subscription was drained) "no responders" at once; none times out."""
    from nats.errors import NoRespondersError

    state, server, nc, clock = world
    svc = state["svc"]
    residents = ("R-1001", "R-1002")
    first = asyncio.Event()

    async def one(n: int) -> str:
        person = residents[n % 2]
        body = checkin(f"s-{n}", person=person, day=DAYS[n % 2].isoformat())
        try:
            reply = await ask(nc, person, body)
        except NoRespondersError:
            return "no responders"
        first.set()
        assert reply["status"] in {"recorded", "replaced"}, reply
        return f"s-{n}"

    async def flood() -> list[str]:
        tasks = []
        for n in range(400):
            tasks.append(asyncio.create_task(one(n)))
            if n % 20 == 19:
                await asyncio.sleep(0.005)
        return await asyncio.gather(*tasks)

    sending = asyncio.create_task(flood())
    await asyncio.wait_for(first.wait(), 10)
    await svc.stop()  # drains the subscription: what it received is written and answered
    results = await sending
    answered = [r for r in results if r != "no responders"]
    assert answered, "nothing was answered before the stop"
    async with svc.store.sessions() as s:
        kept = set(await s.scalars(sa.select(T.checkin_requests.c.checkin_id)))
    assert set(answered) <= kept
    # a restart answers again (and the fixture has a running service to stop)
    svc = state["svc"] = build(checkin_settings(server, database_url, tmp_path), clock=clock)
    await svc.start()
    again = await ask(nc, "R-1001", checkin("s-0", person="R-1001", day=DAYS[0].isoformat()))
    assert again["status"] in {"recorded", "replaced"}
