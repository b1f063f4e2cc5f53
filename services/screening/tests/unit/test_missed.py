"""A missed follow-up day escalates after one day (issue 14), on the in-memory unit of work
with a clock the tests move: the grid worker's alert and a door visit once per person and
missed day; everyone else only by the ordinary rule of two missed days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from gridcare.contracts.edge import CheckinRequest
from gridcare.contracts.notify import NotificationRequested
from gridcare.contracts.refdata import (
    Building,
    Community,
    CommunityPolicy,
    Compound,
    Household,
    Resident,
)
from gridcare.contracts.screening import DoorVisitRequested, PersonStatusChanged
from gridcare.screening.domain import missed as ms
from gridcare.screening.domain.checkins import MemberResult, Visit
from gridcare.screening.handlers import checkins, followup, missed
from gridcare.screening.handlers import refdata as refdata_handlers
from gridcare.screening.unit_of_work import FakeUnitOfWork

DAY = date(2026, 3, 12)
D1, D2, D3, D4, D5 = (DAY + timedelta(days=i) for i in range(1, 6))


def at(day: date, hh: int, mm: int = 0) -> datetime:
    """``hh:mm`` of a local day in Shanghai, as UTC."""
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC) - timedelta(hours=8)


async def community(**policy) -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    entities = [
        Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
        Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
        Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
        Household(household_id="H-0101", building_id="B-01", unit="1-101"),
        Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
        Resident(resident_id="R-1002", household_id="H-0101", name="Wang Lei"),
        Household(household_id="H-0102", building_id="B-01", unit="1-102"),
        Resident(resident_id="R-1003", household_id="H-0102", name="Zhao Min"),
        CommunityPolicy(community_id="CM-1", checkin_reminder_at="10:00", **policy),
    ]
    for entity in entities:
        await refdata_handlers.reference_data_changed(entity, uow)
    return uow


async def followed(uow, person: str, when: datetime, status: str = "close_contact") -> None:
    """``person`` enters a followed status at ``when`` (the follow-up consumer's way)."""
    ev = PersonStatusChanged(
        person_id=person, status=status, holds_at_gate=True, decided_at=when,
        role="community_doctor", reason="CDC list",
    )  # fmt: skip
    await followup.status_changed(ev, uow)


async def check_in(uow, person: str, day: date) -> None:
    req = CheckinRequest(
        checkin_id=f"c-{person}-{day}",
        person_id=person,
        day=day,
        temperature_c=36.5,
        symptoms=[],
        submitted_at=at(day, 8).isoformat(),
    )
    await checkins.check_in(req, uow, at(day, 8))


async def tick(uow, now: datetime) -> dict[str, int]:
    """What bootstrap's check-in tick does: missed follow-up days, then the reminder pass."""
    escalated = await missed.escalate(lambda: uow, now)
    done = await checkins.remind(lambda: uow, now)
    return {**done, "follow_up_missed": escalated}


def alerts(uow) -> list[dict]:
    return [e for e in uow.events(NotificationRequested) if e["template"] == ms.TEMPLATE]


def visits(uow, person: str | None = None) -> list[dict]:
    found = uow.events(DoorVisitRequested)
    return [v for v in found if person is None or v["person_id"] == person]


async def test_a_missed_day_under_follow_up_is_one_alert_and_one_door_visit():
    uow = await community()
    await followed(uow, "R-1003", at(DAY, 15))
    for person in ("R-1001", "R-1002"):  # not followed; they check in every day
        for d in (DAY, D1, D2):
            await check_in(uow, person, d)
    # the day the period began is not one it must be heard from on
    assert await tick(uow, at(D1, 11)) == {
        "reminded": 1,
        "visits_requested": 0,
        "follow_up_missed": 0,
    }
    assert await missed.escalate(lambda: uow, at(D2, 9, 59)) == 0  # before the reminder time
    assert alerts(uow) == [] and visits(uow) == []
    assert (await tick(uow, at(D2, 10)))["follow_up_missed"] == 1
    [asked] = visits(uow)
    rid = ms.request_id("R-1003", D1)
    assert asked["request_id"] == rid and asked["person_id"] == "R-1003"
    assert asked["missed_days"] == 1 and asked["day"] == D2.isoformat()
    assert asked["grid_id"] == "G-01" and asked["last_checkin_day"] is None
    [alert] = alerts(uow)
    assert alert["recipient"] == {"kind": "role", "role": "grid_worker", "place_id": "G-01"}
    assert alert["priority"] == "urgent" and alert["needs_ack"] is True
    assert alert["alert_kind"] == "follow_up_missed"
    assert alert["params"] == {
        "person_id": "R-1003",
        "name": "Zhao Min",
        "household_id": "H-0102",
        "days": [D1.isoformat()],
        "started_on": DAY.isoformat(),
        "ends_on": (DAY + timedelta(days=14)).isoformat(),
        "last_checkin_day": None,
    }
    # the follow-up's history shows the day missed, and the door visit asked for is kept
    shown = await followup.follow_up_of("R-1003", uow)
    assert [(d["day"], d["source"], d["source_ref"]) for d in shown["days"]] == [
        (D1.isoformat(), "missed", rid)
    ]
    assert uow.checkins.visit_requests[rid]["missed_days"] == 1


async def test_a_second_pass_sends_nothing_new():
    uow = await community()
    await followed(uow, "R-1003", at(DAY, 15))
    await tick(uow, at(D2, 10))
    state = repr(uow.state())
    assert (await tick(uow, at(D2, 18)))["follow_up_missed"] == 0
    assert repr(uow.state()) == state
    assert len(alerts(uow)) == 1 and len(visits(uow, "R-1003")) == 1


async def test_each_missed_day_escalates_once_and_the_two_day_rule_not_again():
    uow = await community()
    await followed(uow, "R-1003", at(DAY, 8))
    for d in (DAY, D1, D2, D3):
        await tick(uow, at(d, 11))
    # D1 (asked on D2), D2 (asked on D3): one each; the 2-day rule, which would have
    # asked on D2 (missed DAY and D1, reminded both), finds the door asked for already
    assert [v["request_id"] for v in visits(uow, "R-1003")] == [
        ms.request_id("R-1003", D1),
        ms.request_id("R-1003", D2),
    ]
    assert len(alerts(uow)) == 2
    assert [e["template"] for e in uow.events(NotificationRequested)].count("checkin.missed") == 2
    # ... those two are R-1001's and R-1002's: not followed, the ordinary rule only
    others = [v for v in visits(uow) if v["person_id"] != "R-1003"]
    assert sorted(v["person_id"] for v in others) == ["R-1001", "R-1002"]
    assert {v["missed_days"] for v in others} == {2}
    assert {a["params"]["person_id"] for a in alerts(uow)} == {"R-1003"}


async def test_someone_not_under_follow_up_is_left_to_the_two_day_rule():
    uow = await community()
    for d in (DAY, D1):
        await tick(uow, at(d, 11))
    assert visits(uow) == [] and alerts(uow) == []  # one day missed: nothing yet
    await tick(uow, at(D2, 11))
    assert {v["missed_days"] for v in visits(uow)} == {2} and alerts(uow) == []


async def test_a_visit_finding_them_at_home_is_not_a_missed_day_but_not_at_home_is():
    uow = await community()
    await followed(uow, "R-1001", at(DAY, 8))
    await followed(uow, "R-1002", at(DAY, 8))
    members = (MemberResult("R-1001", 36.4), MemberResult("R-1002", not_at_home=True))
    v = Visit("v-1", "H-0101", "W-01", at(D1, 16), D1, members)
    await checkins.record_visit(v, uow, at(D1, 16))
    await missed.escalate(lambda: uow, at(D2, 10))
    assert [a["params"]["person_id"] for a in alerts(uow)] == ["R-1002"]
    days = {(d.person_id, d.day): d.source for d in uow.follow_ups.days.values()}
    assert days == {("R-1001", D1): "visit", ("R-1002", D1): "missed"}


async def test_a_check_in_on_the_day_is_not_missed_and_the_last_one_is_named():
    uow = await community()
    await followed(uow, "R-1003", at(DAY, 8))
    await check_in(uow, "R-1003", D1)
    await missed.escalate(lambda: uow, at(D2, 10))
    assert alerts(uow) == []
    await missed.escalate(lambda: uow, at(D3, 10))
    [asked] = visits(uow)
    assert asked["last_checkin_day"] == D1.isoformat()
    assert alerts(uow)[0]["params"]["days"] == [D2.isoformat()]


async def test_the_periods_end_day_is_the_last_one_watched():
    uow = await community(follow_up_days=2)  # DAY to D2; open after (no negative test)
    await followed(uow, "R-1003", at(DAY, 8))
    for d in (D1, D2, D3, D4, D5):
        await missed.escalate(lambda: uow, at(d, 10))
    assert (await uow.follow_ups.open_of("R-1003")).ends_on == D2  # still open
    assert [a["params"]["days"] for a in alerts(uow)] == [[D1.isoformat()], [D2.isoformat()]]


async def test_a_released_period_is_watched_no_more():
    uow = await community(follow_up_days=2, release_needs_negative_test=False)
    await followed(uow, "R-1003", at(DAY, 8))  # DAY to D2
    assert await followup.release_due(uow, at(D2, 0, 30)) == 1  # its end: released
    await missed.escalate(lambda: uow, at(D2, 10))  # D1 had no check-in, but it is over
    await missed.escalate(lambda: uow, at(D3, 10))
    assert alerts(uow) == [] and visits(uow) == []


async def test_days_missed_while_no_pass_ran_are_one_escalation():
    uow = await community()
    await followed(uow, "R-1003", at(DAY, 8))
    assert await missed.escalate(lambda: uow, at(D3, 10)) == 1  # nothing ran on D2
    [alert] = alerts(uow)
    assert alert["params"]["days"] == [D1.isoformat(), D2.isoformat()]
    [asked] = visits(uow)
    assert asked["missed_days"] == 2 and asked["request_id"] == ms.request_id("R-1003", D2)
    days = sorted((d.day, d.source) for d in uow.follow_ups.days.values())
    assert days == [(D1, "missed"), (D2, "missed")]


async def test_a_full_batch_keeps_one_persons_days_together():
    uow = await community()
    for person in ("R-1001", "R-1002", "R-1003"):
        await followed(uow, person, at(DAY, 8))
    assert await missed.escalate(lambda: uow, at(D3, 10), batch=3) == 3
    per_person = {a["params"]["person_id"]: a["params"]["days"] for a in alerts(uow)}
    assert per_person == {p: [D1.isoformat(), D2.isoformat()] for p in per_person}
    assert len(per_person) == 3 and len(visits(uow)) == 3


def test_the_days_a_pass_looks_at():
    assert ms.days_to_check(D3) == [DAY, D1, D2]
    watched = [d for d in ms.days_to_check(D4) if ms.watched(d, started_on=D1, ends_on=D2,
               today=D4)]  # fmt: skip
    assert watched == [D2]  # not the start day D1, not D3 after the end, not today
    assert ms.request_id("R-1", D1) == ms.request_id("R-1", D1) != ms.request_id("R-1", D2)
