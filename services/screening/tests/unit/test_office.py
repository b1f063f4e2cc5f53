"""The office's queries on the in-memory unit of work: the daily counts per compound (now
and for a past day), who is overdue for a check-in or a test (with their grid worker), and
one resident's timeline in order, with a register that answers and one that does not."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from gridcare.contracts.edge import CheckinRequest
from gridcare.contracts.refdata import (
    Building,
    Community,
    CommunityPolicy,
    Compound,
    Grid,
    Household,
    Resident,
)
from gridcare.contracts.screening import PersonStatusChanged
from gridcare.screening.adapters.register import MemoryRegister
from gridcare.screening.domain import office as o
from gridcare.screening.domain.campaigns import Result, ResultRow
from gridcare.screening.domain.checkins import MemberResult, Visit
from gridcare.screening.domain.status import HealthStatus, Role
from gridcare.screening.handlers import campaigns, checkins, contacts, office, questionnaires
from gridcare.screening.handlers import refdata as refdata_handlers
from gridcare.screening.handlers.status import change_status
from gridcare.screening.unit_of_work import FakeUnitOfWork
from gridcare.shared.errors import ApiError

DAY = date(2026, 3, 12)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    """``hh:mm`` of a local day in Shanghai (UTC+8), as UTC."""
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC) - timedelta(hours=8)


YESTERDAY = DAY - timedelta(days=1)


async def community(**policy) -> FakeUnitOfWork:
    """C-01 (B-01 in grid G-01, worker W-01): R-1001, R-1002 in H-0101, R-1003 in H-0102;
    C-02 (B-03 in grid G-02, worker W-02): R-3001 in H-0301; C-03 has nobody yet."""
    uow = FakeUnitOfWork()
    entities = [
        Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
        Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
        Compound(compound_id="C-02", community_id="CM-1", name="Riverside Court"),
        Compound(compound_id="C-03", community_id="CM-1", name="New Block"),
        Grid(
            grid_id="G-01",
            community_id="CM-1",
            name="1",
            worker_id="W-01",
            worker_name="Li",
            worker_phone="+86 138 0000 0001",
        ),
        Grid(
            grid_id="G-02",
            community_id="CM-1",
            name="2",
            worker_id="W-02",
            worker_name="Tom",
            worker_phone="+86 138 0000 0002",
        ),
        Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
        Building(building_id="B-03", compound_id="C-02", grid_id="G-02", name="3"),
        Household(household_id="H-0101", building_id="B-01", unit="1-101"),
        Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
        Resident(resident_id="R-1002", household_id="H-0101", name="Wang Lei"),
        Household(household_id="H-0102", building_id="B-01", unit="1-102"),
        Resident(resident_id="R-1003", household_id="H-0102", name="Zhao Min"),
        Household(household_id="H-0301", building_id="B-03", unit="3-301"),
        Resident(resident_id="R-3001", household_id="H-0301", name="James Hill"),
    ]
    if policy:
        entities.append(CommunityPolicy(community_id="CM-1", **policy))
    for entity in entities:
        await refdata_handlers.reference_data_changed(entity, uow)
    return uow


async def step(uow, person, to, role, now, reason="", by="office"):
    async with uow:
        await change_status(uow, person, to, by=by, role=role, reason=reason, now=now)
        await uow.commit()


async def check_in(uow, person, day, now, temp=36.6, symptoms=()):
    req = CheckinRequest(
        checkin_id=f"{person}-{day}",
        person_id=person,
        day=day,
        temperature_c=temp,
        symptoms=list(symptoms),
        submitted_at=now.isoformat(),
    )
    return await checkins.check_in(req, uow, now)


# --- counts ---------------------------------------------------------------------------------
async def outbreak() -> FakeUnitOfWork:
    """Yesterday: R-1002 into home quarantine, R-1003 a close contact. Today: R-1001
    confirmed by a lab, R-1002 released, R-1003 still a close contact."""
    uow = await community()
    await step(uow, "R-1002", HealthStatus.HOME_QUARANTINE, Role.GRID_WORKER, at(YESTERDAY, 9))
    await step(uow, "R-1003", HealthStatus.CLOSE_CONTACT, Role.GRID_WORKER, at(YESTERDAY, 10))
    await step(uow, "R-1001", HealthStatus.CONFIRMED, Role.LAB, at(DAY, 8), "PCR positive")
    await step(
        uow, "R-1002", HealthStatus.RELEASED, Role.COMMUNITY_DOCTOR, at(DAY, 9), "14 days over"
    )
    return uow


async def test_todays_counts_per_compound_and_totals():
    uow = await outbreak()
    got = await office.counts(uow, at(DAY, 12))
    rows = {r["compound_id"]: r for r in got["compounds"]}
    assert list(rows) == ["C-01", "C-02", "C-03"]  # a compound with nobody: zeros
    c01 = rows["C-01"]
    assert c01["day"] == "2026-03-12" and c01["as_of"] == "2026-03-12T12:00:00+08:00"
    assert c01["residents"] == 3
    assert (c01["confirmed"], c01["close_contact"], c01["suspected"]) == (1, 1, 0)
    assert c01["four_categories"] == 2
    assert c01["home_quarantine"] == 0 and c01["released_today"] == 1
    assert c01["recovered_today"] == 0
    assert rows["C-02"]["residents"] == 1 and rows["C-02"]["four_categories"] == 0
    assert rows["C-03"] == {**rows["C-03"], "residents": 0, "four_categories": 0}
    assert got["totals"]["residents"] == 4 and got["totals"]["four_categories"] == 2


async def test_a_past_days_counts_are_the_statuses_at_its_end():
    uow = await outbreak()
    got = await office.counts(uow, at(DAY, 12), community_id="CM-1", day=YESTERDAY)
    c01 = next(r for r in got["compounds"] if r["compound_id"] == "C-01")
    assert c01["as_of"] == "2026-03-12T00:00:00+08:00"  # the end of yesterday
    assert c01["confirmed"] == 0 and c01["close_contact"] == 1
    assert c01["home_quarantine"] == 1 and c01["released_today"] == 0
    # the day before anything happened: nobody counted in any category
    before = await office.counts(uow, at(DAY, 12), day=YESTERDAY - timedelta(days=1))
    assert before["totals"]["four_categories"] == 0 and before["totals"]["residents"] == 4


async def test_a_local_day_is_the_communitys_not_utcs():
    """A step at 07:00 Shanghai (23:00 UTC the day before) counts on the local day."""
    uow = await community()
    await step(uow, "R-1002", HealthStatus.HOME_QUARANTINE, Role.GRID_WORKER, at(YESTERDAY, 9))
    await step(uow, "R-1002", HealthStatus.RELEASED, Role.COMMUNITY_DOCTOR, at(DAY, 7), "done")
    today = await office.counts(uow, at(DAY, 12))
    assert today["totals"]["released_today"] == 1
    yesterday = await office.counts(uow, at(DAY, 12), day=YESTERDAY)
    assert yesterday["totals"]["released_today"] == 0


async def test_counts_refuse_a_future_day_and_an_unknown_community():
    uow = await community()
    with pytest.raises(ApiError) as err:
        await office.counts(uow, at(DAY, 12), day=DAY + timedelta(days=1))
    assert err.value.code == "invalid_day" and err.value.field == "day"
    with pytest.raises(ApiError) as err:
        await office.counts(uow, at(DAY, 12), community_id="CM-9")
    assert err.value.code == "unknown_community"


def test_count_rows_put_each_status_in_its_column():
    rows = o.count_rows(
        ["C-01"],
        [("C-01", "suspected", 2), ("C-01", "normal", 5), ("C-01", "in_hospital", 1)],
        [("C-01", "recovered", 1)],
    )
    assert rows["C-01"]["residents"] == 8 and rows["C-01"]["suspected"] == 2
    assert rows["C-01"]["four_categories"] == 2 and rows["C-01"]["in_hospital"] == 1
    assert rows["C-01"]["recovered_today"] == 1


# --- overdue --------------------------------------------------------------------------------
async def checked_in_world() -> FakeUnitOfWork:
    """R-1001 checked in yesterday, R-1002 two days ago, R-1003 never, R-3001 today."""
    uow = await community()
    await check_in(uow, "R-1001", YESTERDAY, at(YESTERDAY, 8))
    await check_in(uow, "R-1002", DAY - timedelta(days=2), at(DAY - timedelta(days=2), 8))
    await check_in(uow, "R-3001", DAY, at(DAY, 7))
    return uow


async def test_before_the_reminder_time_only_a_missed_day_is_overdue():
    uow = await checked_in_world()
    got = await office.overdue(uow, at(DAY, 9), kind="checkin")  # reminder at 10:00
    assert got["communities"] == [
        {"community_id": "CM-1", "day": "2026-03-12", "reminder_at": "10:00",
         "reminder_passed": False}
    ]  # fmt: skip
    people = {p["person_id"]: p for p in got["people"]}
    assert list(people) == ["R-1002", "R-1003"]
    assert people["R-1002"]["missed_days"] == 1
    assert people["R-1002"]["last_checkin_day"] == "2026-03-10"
    assert people["R-1003"]["missed_days"] is None and people["R-1003"]["last_checkin_day"] is None
    assert people["R-1002"]["grid_worker"] == "W-01" and people["R-1002"]["grid_id"] == "G-01"
    assert people["R-1002"]["compound_id"] == "C-01" and people["R-1002"]["status"] == "normal"


async def test_after_the_reminder_time_today_counts():
    uow = await checked_in_world()
    got = await office.overdue(uow, at(DAY, 11), kind="checkin")
    people = {p["person_id"]: p["missed_days"] for p in got["people"]}
    assert people == {"R-1001": 1, "R-1002": 2, "R-1003": None}  # R-3001 checked in today
    two = await office.overdue(uow, at(DAY, 11), kind="checkin", min_days=2)
    assert [p["person_id"] for p in two["people"]] == ["R-1002", "R-1003"]
    # the community's own reminder time
    late = await community(checkin_reminder_at="12:00")
    await check_in(late, "R-1001", YESTERDAY, at(YESTERDAY, 8))
    got = await office.overdue(late, at(DAY, 11), kind="checkin")
    assert "R-1001" not in {p["person_id"] for p in got["people"]}


async def test_overdue_by_grid_and_compound_and_unknown_places():
    uow = await checked_in_world()
    g2 = await office.overdue(uow, at(DAY, 11), kind="checkin", grid_id="G-02")
    assert g2["people"] == []  # R-3001 checked in
    c01 = await office.overdue(uow, at(DAY, 11), kind="checkin", compound_id="C-01", limit=2)
    assert [p["person_id"] for p in c01["people"]] == ["R-1001", "R-1002"]
    assert c01["truncated"] is True
    for kw, code in (
        ({"compound_id": "C-9"}, "unknown_compound"),
        ({"grid_id": "G-9"}, "unknown_grid"),
        ({"community_id": "CM-9"}, "unknown_community"),
    ):
        with pytest.raises(ApiError) as err:
            await office.overdue(uow, at(DAY, 11), kind="checkin", **kw)
        assert err.value.code == code


async def test_a_door_visit_asked_for_and_a_reminder_are_shown():
    uow = await checked_in_world()
    await checkins.remind(lambda: uow, at(DAY, 10, 30))
    got = await office.overdue(uow, at(DAY, 11), kind="checkin")
    people = {p["person_id"]: p for p in got["people"]}
    assert all(p["reminded_today"] for p in people.values())
    assert people["R-1002"]["door_visit_requested"] is False  # reminded on no missed day


async def test_overdue_for_a_test_lists_a_running_campaigns_untested():
    uow = await community()
    await campaigns.start_campaign(
        uow, place_kind="compound", place_id="C-01", starts_at=at(DAY, 8),
        ends_at=at(DAY, 18), site="the square", by="Wang", now=at(DAY, 7),
        campaign_id="C-01-T1",
    )  # fmt: skip
    row = ResultRow("results.0", "S-1", "R-1001", Result.NEGATIVE, at(DAY, 9), "City Lab")
    await campaigns.record_results(uow, "C-01-T1", [row], now=at(DAY, 10))
    got = await office.overdue(uow, at(DAY, 11), kind="test")
    assert [(p["person_id"], p["outcome"], p["grid_worker"]) for p in got["people"]] == [
        ("R-1002", "untested", "W-01"),
        ("R-1003", "untested", "W-01"),
    ]
    assert got["campaigns"][0]["campaign_id"] == "C-01-T1"
    assert got["campaigns"][0]["untested"] == 2
    assert (await office.overdue(uow, at(DAY, 11), kind="test", grid_id="G-02"))["people"] == []
    # the campaign over: nobody is overdue for it
    assert (await office.overdue(uow, at(DAY, 19), kind="test"))["people"] == []


# --- a resident's timeline -------------------------------------------------------------------
async def life_of_r1001() -> tuple[FakeUnitOfWork, MemoryRegister]:
    """Yesterday R-1001 went out by g1 (R-2001, a neighbour, a minute later), checked in,
    came back, answered a PHQ-9; this morning a door visit found a fever, then a positive
    test confirmed them: the household quarantined, the contacts proposed."""
    uow = await community()
    for entity in (
        Household(household_id="H-0103", building_id="B-01", unit="1-103"),
        Resident(resident_id="R-2001", household_id="H-0103", name="Chen Jie"),
    ):
        await refdata_handlers.reference_data_changed(entity, uow)
    reg = MemoryRegister()
    reg.add("g1", "R-1001", at(YESTERDAY, 7, 30), "s-1", direction="out", verdict="allow")
    reg.add("g1", "R-1001", at(YESTERDAY, 18), "s-2", direction="in", verdict="allow")
    reg.add("g1", "R-2001", at(YESTERDAY, 7, 31), "s-3", direction="out", verdict="allow")
    await check_in(uow, "R-1001", YESTERDAY, at(YESTERDAY, 8), temp=36.5)
    visit = Visit(
        "v-1", "H-0101", "W-01", at(DAY, 7), DAY,
        (MemberResult("R-1001", 37.9, ("cough",)), MemberResult("R-1002", not_at_home=True)),
    )  # fmt: skip
    await checkins.record_visit(visit, uow, at(DAY, 7, 5))
    body = {
        "submission_id": "q-1",
        "person_id": "R-1001",
        "instrument": "phq9",
        "answers": [2, 2, 2, 1, 1, 1, 1, 1, 0],
        "submitted_at": at(YESTERDAY, 20).isoformat(),
    }
    req = questionnaires.read_request(json.dumps(body).encode(), "R-1001", at(YESTERDAY, 20))
    await questionnaires.submit(req, uow, at(YESTERDAY, 20))
    await campaigns.start_campaign(
        uow, place_kind="compound", place_id="C-01", starts_at=at(DAY, 8),
        ends_at=at(DAY, 18), site="the square", by="Wang", now=at(DAY, 7),
        campaign_id="C-01-T1",
    )  # fmt: skip
    row = ResultRow("results.0", "S-9", "R-1001", Result.POSITIVE, at(DAY, 9), "City Lab")
    await campaigns.record_results(uow, "C-01-T1", [row], now=at(DAY, 10))
    ev = PersonStatusChanged(
        person_id="R-1001",
        status="confirmed",
        holds_at_gate=True,
        household_id="H-0101",
        decided_at=at(DAY, 10),
    )
    await contacts.person_status_changed(ev, uow, reg, at(DAY, 10, 1))
    return uow, reg


async def test_a_timeline_joins_everything_in_time_order():
    uow, reg = await life_of_r1001()
    got = await office.timeline(uow, reg, "R-1001")
    assert got["passages_unavailable"] is False
    assert got["status"] == "confirmed" and got["household_id"] == "H-0101"
    kinds = [e["kind"] for e in got["entries"]]
    assert kinds == [
        "passage",  # yesterday 07:30 out
        "checkin",  # 08:00
        "passage",  # 18:00 in
        "questionnaire",  # 20:00
        "door_visit",  # today 07:00: 37.9 and a cough
        "status",  # the visit's symptoms: symptomatic_follow_up, by screening (07:05)
        "follow_up",  # and a follow-up opened
        "test_result",  # 09:00 positive
        "status",  # confirmed by the lab at 10:00
        "household_quarantine",  # the household at 10:00
        "contact_proposal",  # R-1002 of the household, proposed at 10:01
        "contact_proposal",  # R-2001 near them at g1
    ], kinds
    e = got["entries"]
    assert [x["at"] for x in e] == sorted(x["at"] for x in e)
    assert e[0]["at"] == "2026-03-11T07:30:00+08:00" and e[0]["direction"] == "out"
    assert e[0]["summary"] == "gate g1 out: allow"
    assert e[1]["temperature_c"] == 36.5 and e[1]["follow_up"] is False
    assert e[3]["severity"] == "moderate" and e[3]["follow_up"] == "call_back"
    assert "answers" not in e[3] and "score" not in e[3]  # severity only
    assert e[4]["temperature_c"] == 37.9 and e[4]["worker_id"] == "W-01"
    assert (e[5]["to"], e[5]["role"]) == ("symptomatic_follow_up", "screening")
    assert e[6]["started_on"] == "2026-03-12" and e[6]["ends_on"] == "2026-03-26"
    assert e[6]["status"] == "open"
    assert e[7]["result"] == "positive" and e[7]["sample_id"] == "S-9"
    assert (e[8]["from"], e[8]["to"], e[8]["role"]) == ("symptomatic_follow_up", "confirmed", "lab")
    assert e[8]["by"] == "City Lab" and e[8]["reason"]
    assert e[9]["household_id"] == "H-0101" and e[9]["until"].startswith("2026-03-26")
    assert [(x["candidate_id"], x["as"]) for x in e[10:]] == [
        ("R-1002", "case"),
        ("R-2001", "case"),
    ]
    assert e[11]["reason"].startswith("gate g1 at 2026-03-11 07:30")


async def test_the_candidate_sees_their_proposal_and_since_cuts_the_past():
    uow, reg = await life_of_r1001()
    got = await office.timeline(uow, reg, "R-1002", since=at(DAY, 8))
    kinds = [e["kind"] for e in got["entries"]]
    assert kinds == ["status", "household_quarantine", "contact_proposal"]
    assert got["entries"][0]["to"] == "home_quarantine"
    assert got["entries"][2]["as"] == "candidate"
    assert got["entries"][2]["summary"].startswith("proposed as a close contact of R-1001")
    # this morning's door visit (before 08:00) found R-1002 not at home
    full = await office.timeline(uow, reg, "R-1002")
    [visit] = [e for e in full["entries"] if e["kind"] == "door_visit"]
    assert visit["not_at_home"] is True and visit["summary"].endswith("not at home")


async def test_a_register_that_does_not_answer_is_said_never_dropped_silently():
    uow, reg = await life_of_r1001()
    reg.down = True
    got = await office.timeline(uow, reg, "R-1001")
    assert got["passages_unavailable"] is True and got["passages_error"]
    assert "passage" not in {e["kind"] for e in got["entries"]}
    assert len(got["entries"]) == 10  # everything screening keeps is still there
    assert got["entries"][0]["kind"] == "checkin"


async def test_a_timeline_of_nobody_is_refused():
    uow = await community()
    with pytest.raises(ApiError) as err:
        await office.timeline(uow, MemoryRegister(), "R-9999")
    assert err.value.code == "unknown_person"
