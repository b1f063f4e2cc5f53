"""Check-ins, door visits, follow-up and reminders on the in-memory unit of work: the
rules of the edge contract §4.1 and issue 14, with a clock the tests move (days pass in
milliseconds)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

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
from gridcare.screening.domain import followup as fu
from gridcare.screening.domain.checkins import MemberResult, Visit
from gridcare.screening.domain.policy import ScreeningPolicy
from gridcare.screening.domain.status import HealthStatus, Role
from gridcare.screening.entrypoints.residents import problems
from gridcare.screening.handlers import checkins, followup
from gridcare.screening.handlers import refdata as refdata_handlers
from gridcare.screening.handlers.status import change_status
from gridcare.screening.unit_of_work import FakeUnitOfWork
from gridcare.shared.envelope import Envelope
from gridcare.shared.errors import ApiError
from gridcare.shared.uow import AlreadyHandled, Inbound

# 2026-03-12 08:00 in Shanghai (UTC+8)
MORNING = datetime(2026, 3, 12, 0, 0, tzinfo=UTC)
DAY = date(2026, 3, 12)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    """``hh:mm`` of a local day in Shanghai, as UTC."""
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC) - timedelta(hours=8)


async def community(uow: FakeUnitOfWork | None = None, **policy) -> FakeUnitOfWork:
    uow = uow or FakeUnitOfWork()
    entities = [
        Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
        Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
        Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
        Household(household_id="H-0101", building_id="B-01", unit="1-101"),
        Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
        Resident(resident_id="R-1002", household_id="H-0101", name="Wang Lei"),
        Household(household_id="H-0102", building_id="B-01", unit="1-102"),
        Resident(resident_id="R-1003", household_id="H-0102", name="Zhao Min"),
    ]
    if policy:
        entities.append(CommunityPolicy(community_id="CM-1", **policy))
    for entity in entities:
        await refdata_handlers.reference_data_changed(entity, uow)
    return uow


def req(checkin_id="c-1", person="R-1001", day=DAY, temp=36.6, symptoms=(), **kw):
    return CheckinRequest(
        checkin_id=checkin_id,
        person_id=person,
        day=day,
        temperature_c=temp,
        symptoms=list(symptoms),
        submitted_at=kw.pop("submitted_at", MORNING).isoformat(),
        **kw,
    )


# --- the check-in -------------------------------------------------------------------------
async def test_a_check_in_is_recorded_and_says_so_in_both_languages():
    uow = await community()
    reply = await checkins.check_in(req(), uow, MORNING)
    assert reply["checkin_id"] == "c-1" and reply["status"] == "recorded"
    assert reply["follow_up"] is False
    assert reply["message"]["zh"] and reply["message"]["en"]
    assert uow.checkins.rows[("R-1001", DAY)].temperature_c == 36.6
    assert uow.events() == []  # a healthy check-in announces nothing


async def test_a_repeat_gets_the_same_reply_and_changes_nothing():
    uow = await community()
    first = await checkins.check_in(req(symptoms=["cough"]), uow, MORNING)
    state, commits = repr(uow.state()), uow.commits
    again = await checkins.check_in(req(symptoms=["cough"]), uow, MORNING + timedelta(hours=1))
    assert again == first
    assert repr(uow.state()) == state and uow.commits == commits
    assert len(uow.events(PersonStatusChanged)) == 1


async def test_a_later_check_in_the_same_day_replaces_the_first():
    uow = await community()
    await checkins.check_in(req("c-1", temp=36.5), uow, MORNING)
    reply = await checkins.check_in(req("c-2", temp=36.9), uow, MORNING + timedelta(hours=2))
    assert reply["status"] == "replaced"
    kept = uow.checkins.rows[("R-1001", DAY)]
    assert kept.checkin_id == "c-2" and kept.temperature_c == 36.9
    assert len(uow.checkins.rows) == 1
    # the next day is a new one
    tomorrow = await checkins.check_in(
        req("c-3", day=DAY + timedelta(days=1)), uow, MORNING + timedelta(days=1)
    )
    assert tomorrow["status"] == "recorded"


async def test_someone_elses_checkin_id_is_refused():
    uow = await community()
    await checkins.check_in(req("c-1"), uow, MORNING)
    with pytest.raises(ApiError) as err:
        await checkins.check_in(req("c-1", person="R-1002"), uow, MORNING)
    assert err.value.code == "invalid_checkin" and err.value.field == "checkin_id"


async def test_symptoms_open_a_follow_up_and_a_status_change():
    uow = await community()
    reply = await checkins.check_in(req(symptoms=["cough", "fatigue"]), uow, MORNING)
    assert reply["follow_up"] is True and "grid worker" in reply["message"]["en"]
    [changed] = uow.events(PersonStatusChanged)
    assert changed["status"] == "symptomatic_follow_up" and changed["holds_at_gate"] is False
    assert changed["role"] == "screening" and changed["source"] == "checkin:c-1"
    f = await uow.follow_ups.open_of("R-1001")
    assert f.started_on == DAY and f.ends_on == DAY + timedelta(days=14)
    assert f.last_symptom_day == DAY
    assert ("R-1001", DAY) in uow.follow_ups.days


@pytest.mark.parametrize(
    ("temp", "fever_c", "followed"),
    [(37.3, None, True), (37.2, None, False), (37.1, 37.0, True), (37.5, 38.0, False)],
)
async def test_a_fever_is_the_communitys_threshold(temp, fever_c, followed):
    uow = await community(fever_c=fever_c) if fever_c else await community()
    reply = await checkins.check_in(req(temp=temp), uow, MORNING)
    assert reply["follow_up"] is followed
    assert (await uow.follow_ups.open_of("R-1001") is not None) is followed


async def test_a_stricter_status_is_kept_but_the_day_is_followed():
    uow = await community()
    async with uow:
        await change_status(
            uow, "R-1001", HealthStatus.HOME_QUARANTINE, by="W-01", role=Role.GRID_WORKER,
            reason="returned from a risk area", now=MORNING - timedelta(days=1),
        )  # fmt: skip
        await uow.commit()
    reply = await checkins.check_in(req(symptoms=["cough"]), uow, MORNING)
    assert reply["follow_up"] is True
    assert (await uow.statuses.get("R-1001")).status == HealthStatus.HOME_QUARANTINE
    assert [e["status"] for e in uow.events(PersonStatusChanged)] == ["home_quarantine"]
    assert ("R-1001", DAY) in uow.follow_ups.days


async def test_an_unknown_resident_and_a_future_day_are_refused():
    uow = await community()
    with pytest.raises(ApiError) as err:
        await checkins.check_in(req(person="R-9999"), uow, MORNING)
    assert err.value.code == "unknown_person"
    with pytest.raises(ApiError) as err:
        await checkins.check_in(req(day=DAY + timedelta(days=1)), uow, MORNING)
    assert err.value.code == "invalid_checkin" and err.value.field == "day"
    with pytest.raises(ApiError) as err:
        await checkins.check_in(req(day=DAY - timedelta(days=30)), uow, MORNING)
    assert err.value.field == "day"
    assert uow.checkins.rows == {}


def test_a_bad_request_names_every_bad_field():
    body = (
        b'{"checkin_id": "c 9", "person_id": "R-1002", "day": "12/03/2026", '
        b'"temperature_c": 61, "symptoms": ["cough", "sneezing"], "submitted_at": "today"}'
    )
    req_, bad = problems(body, "R-1001")
    assert req_ is None
    fields = {b["field"] for b in bad}
    assert {"checkin_id", "day", "temperature_c", "symptoms.1", "submitted_at"} <= fields
    assert "person_id" in fields  # not the subject's person
    assert problems(b"not json", "R-1001")[1][0]["field"] == "(body)"
    ok, none = problems(
        b'{"checkin_id": "c-9", "person_id": "R-1001", "day": "2026-03-12", '
        b'"symptoms": [], "submitted_at": "2026-03-12T08:00:00+08:00", "extra": 1}',
        "R-1001",
    )
    assert none == [] and ok.symptoms == [] and ok.temperature_c is None


# --- door visits ------------------------------------------------------------------------
def visit(visit_id="v-1", when=MORNING, members=None):
    return Visit(
        visit_id, "H-0101", "W-01", when, when.date(),
        tuple(members or (
            MemberResult("R-1001", 36.4),
            MemberResult("R-1002", 37.6, ("cough",)),
        )),
    )  # fmt: skip


async def test_a_door_visit_gives_each_member_at_home_the_days_check_in():
    uow = await community()
    done = await checkins.record_visit(
        visit(members=[MemberResult("R-1001", 36.4), MemberResult("R-1002", not_at_home=True)]),
        uow,
        MORNING,
    )
    assert done["day"] == "2026-03-12" and done["visited_at"].endswith("+08:00")
    kept = uow.checkins.rows[("R-1001", DAY)]
    assert kept.source == "visit" and kept.reported_by == "W-01"
    assert ("R-1002", DAY) not in uow.checkins.rows  # not at home: no check-in
    assert [m["not_at_home"] for m in done["members"]] == [False, True]


async def test_a_visit_with_a_fever_feeds_follow_up_and_is_idempotent():
    uow = await community()
    first = await checkins.record_visit(visit(), uow, MORNING)
    assert [m["follow_up"] for m in first["members"]] == [False, True]
    assert (await uow.statuses.get("R-1002")).status == HealthStatus.SYMPTOMATIC_FOLLOW_UP
    state = repr(uow.state())
    again = await checkins.record_visit(visit(), uow, MORNING + timedelta(hours=3))
    assert again == first and repr(uow.state()) == state
    assert len(uow.events(PersonStatusChanged)) == 1


async def test_a_visit_naming_someone_else_is_refused():
    uow = await community()
    with pytest.raises(ApiError) as err:
        await checkins.record_visit(visit(members=[MemberResult("R-1003", 36.5)]), uow, MORNING)
    assert err.value.code == "unknown_person" and "R-1003" in str(err.value)
    assert uow.checkins.visits == {} and uow.checkins.rows == {}


# --- follow-up from status changes, extension, release -----------------------------------
def status_event(person, status, when, role="community_doctor", reason="CDC list"):
    return PersonStatusChanged(
        person_id=person, status=status, holds_at_gate=True, decided_at=when, role=role,
        reason=reason,
    )  # fmt: skip


async def test_a_close_contact_is_followed_and_a_new_exposure_extends_it():
    uow = await community()
    await followup.status_changed(status_event("R-1003", "close_contact", MORNING), uow)
    f = await uow.follow_ups.open_of("R-1003")
    assert f.started_on == DAY and f.ends_on == date(2026, 3, 26)
    assert f.last_symptom_day is None
    # five days later, named a close contact again (e.g. of another case): extended
    later = MORNING + timedelta(days=5)
    await followup.status_changed(status_event("R-1003", "close_contact", later), uow)
    f2 = await uow.follow_ups.open_of("R-1003")
    assert f2.follow_up_id == f.follow_up_id and f2.ends_on == date(2026, 3, 31)
    assert len(uow.follow_ups.rows) == 1


async def test_a_redelivered_status_change_changes_nothing():
    uow = await community()
    msg = Inbound("screening-followup", "e-1", "e-1")
    ev = status_event("R-1003", "suspected", MORNING)
    await followup.status_changed(ev, uow.handling(msg))
    with pytest.raises(AlreadyHandled):
        await followup.status_changed(ev, uow.handling(msg))
    assert len(uow.follow_ups.rows) == 1


async def test_one_record_per_person_and_day_however_often_they_report():
    uow = await community()
    await checkins.check_in(req("c-1", symptoms=["cough"]), uow, MORNING)
    await checkins.check_in(req("c-2", symptoms=["cough"]), uow, MORNING + timedelta(hours=1))
    await checkins.record_visit(visit("v-9"), uow, MORNING + timedelta(hours=2))
    days = await uow.follow_ups.days_of("R-1001")
    assert [(d.day, d.source) for d in days] == [(DAY, "visit")]  # the newest report


async def test_release_needs_the_days_the_symptom_free_days_and_a_negative_test():
    uow = await community()
    await checkins.check_in(req("c-1", symptoms=["cough"]), uow, MORNING)
    # symptoms again on day 12: no release on day 14 (3 symptom-free days needed)
    d12 = DAY + timedelta(days=12)
    await checkins.check_in(req("c-12", day=d12, symptoms=["cough"]), uow, at(d12, 8))
    f = await uow.follow_ups.open_of("R-1001")
    assert f.ends_on == d12 + timedelta(days=14)  # the new symptoms extended it
    end = f.ends_on
    assert await followup.release_due(uow, at(end, 9)) == 0  # no test yet
    async with uow:  # a negative test (the campaigns' handler calls this in its uow)
        await followup.record_test_result(
            uow, "R-1001", negative=True, at=at(end - timedelta(days=1), 10)
        )
        await uow.commit()
    assert (await uow.follow_ups.open_of("R-1001")) is not None  # not due yet then
    assert await followup.release_due(uow, at(end - timedelta(days=1), 12)) == 0
    assert await followup.release_due(uow, at(end, 9)) == 1
    assert await uow.follow_ups.open_of("R-1001") is None
    assert (await uow.statuses.get("R-1001")).status == HealthStatus.NORMAL
    shown = await followup.follow_up_of("R-1001", uow)
    assert shown["periods"][0]["status"] == "released"
    assert "negative test" in shown["periods"][0]["release_reason"]


async def test_a_policy_without_a_test_releases_on_days_alone():
    uow = await community(follow_up_days=7, release_needs_negative_test=False)
    await checkins.check_in(req("c-1", symptoms=["cough"]), uow, MORNING)
    end = DAY + timedelta(days=7)
    assert await followup.release_due(uow, at(end - timedelta(days=1), 9)) == 0
    assert await followup.release_due(uow, at(end, 0, 30)) == 1


async def test_a_doctor_ending_the_follow_up_closes_the_period():
    uow = await community()
    await checkins.check_in(req("c-1", symptoms=["cough"]), uow, MORNING)
    ev = status_event("R-1001", "normal", MORNING + timedelta(days=2), reason="a cold")
    await followup.status_changed(ev, uow)
    assert await uow.follow_ups.open_of("R-1001") is None


# --- reminders and missed days ----------------------------------------------------------
def notices(uow, template):
    return [e for e in uow.events(NotificationRequested) if e["template"] == template]


async def test_reminders_go_after_the_reminder_time_once_per_resident_and_day():
    uow = await community(checkin_reminder_at="09:30")
    await checkins.check_in(req("c-1", person="R-1001"), uow, at(DAY, 8))
    assert await checkins.remind(lambda: uow, at(DAY, 9, 29)) == {
        "reminded": 0, "visits_requested": 0,
    }  # fmt: skip
    done = await checkins.remind(lambda: uow, at(DAY, 9, 30))
    assert done["reminded"] == 2
    sent = notices(uow, "checkin.reminder")
    assert sorted(n["recipient"]["person_id"] for n in sent) == ["R-1002", "R-1003"]
    assert sent[0]["params"]["day"] == "2026-03-12" and sent[0]["params"]["name"]
    assert await checkins.remind(lambda: uow, at(DAY, 15)) == {
        "reminded": 0, "visits_requested": 0,
    }  # fmt: skip
    # the request id is stable per person and day: notify takes a resend as the same one
    ids = {n["request_id"] for n in sent}
    assert ids == {checkins.reminder_id(p, DAY) for p in ("R-1002", "R-1003")}


async def test_the_pass_writes_a_slice_at_a_time_each_reminder_with_its_request(monkeypatch):
    monkeypatch.setattr(checkins, "WRITE_SLICE", 2)
    uow = await community(checkin_reminder_at="09:30")
    before = uow.commits
    done = await checkins.remind(lambda: uow, at(DAY, 9, 30), batch=10)
    assert done["reminded"] == 3
    assert uow.commits - before == 2  # one batch read, written as slices of 2 and 1
    assert len(notices(uow, "checkin.reminder")) == len(uow.checkins.reminders) == 3


async def test_two_missed_days_make_one_door_visit_request():
    uow = await community()
    d1, d2, d3, d4 = (DAY + timedelta(days=i) for i in range(4))
    for d in (d1, d2, d3, d4):
        # R-1001 checks in every day; R-1002 on none; R-1003 on the first day only
        await checkins.check_in(req(f"c-{d}", day=d), uow, at(d, 8))
    await checkins.check_in(req("c-r3", person="R-1003", day=d1), uow, at(d1, 8))
    await checkins.remind(lambda: uow, at(d1, 11))
    await checkins.remind(lambda: uow, at(d2, 11))
    assert uow.events(DoorVisitRequested) == []  # only one day missed so far
    done = await checkins.remind(lambda: uow, at(d3, 11))
    assert done["visits_requested"] == 1
    [asked] = uow.events(DoorVisitRequested)
    assert asked["person_id"] == "R-1002" and asked["grid_id"] == "G-01"
    assert asked["missed_days"] == 2 and asked["day"] == d3.isoformat()
    [alert] = notices(uow, "checkin.missed")
    assert alert["recipient"] == {"kind": "role", "role": "grid_worker", "place_id": "G-01"}
    assert alert["params"]["person_id"] == "R-1002" and alert["params"]["days"] == 2
    assert alert["needs_ack"] is True and alert["alert_kind"] == "missed_checkin"
    # the same day again, and the run going on the next day: no second request
    await checkins.remind(lambda: uow, at(d3, 18))
    done = await checkins.remind(lambda: uow, at(d4, 11))
    asked = uow.events(DoorVisitRequested)
    # R-1003 missed d2 and d3 after checking in on d1: their own run, their own request
    assert sorted(a["person_id"] for a in asked) == ["R-1002", "R-1003"]
    assert [a["last_checkin_day"] for a in asked if a["person_id"] == "R-1003"] == [d1.isoformat()]


async def test_a_new_run_after_checking_in_again_is_a_new_request():
    uow = await community()
    days = [DAY + timedelta(days=i) for i in range(7)]
    for d in days[:3]:
        await checkins.remind(lambda: uow, at(d, 11))
    assert [a["person_id"] for a in uow.events(DoorVisitRequested)].count("R-1002") == 1
    await checkins.check_in(req("c-back", person="R-1002", day=days[3]), uow, at(days[3], 8))
    for d in days[3:]:
        await checkins.remind(lambda: uow, at(d, 11))
    assert [a["person_id"] for a in uow.events(DoorVisitRequested)].count("R-1002") == 2


# --- policy -------------------------------------------------------------------------------
def test_the_policy_defaults_and_overrides():
    p = ScreeningPolicy.of(None)
    assert (p.checkin_reminder_at, p.missed_days_for_visit, p.follow_up_days) == ("10:00", 2, 14)
    assert p.release_symptom_free_days == 3 and p.release_needs_negative_test is True
    assert p.fever_c == 37.3
    q = ScreeningPolicy.of({"follow_up_days": 7, "fever_c": None, "quiet_hours": "22:00-07:00"})
    assert q.follow_up_days == 7 and q.fever_c == 37.3


async def test_the_policy_arrives_with_the_reference_data():
    policy = CommunityPolicy(community_id="CM-1", missed_days_for_visit=3, fever_c=37.5)
    env = Envelope.from_bytes(Envelope.wrap(policy, source="gridcare-policy").to_bytes())
    uow = await community()
    await refdata_handlers.reference_data_changed(CommunityPolicy.model_validate(env.data), uow)
    who = await uow.checkins.resident("R-1001")
    assert who.policy.missed_days_for_visit == 3 and who.policy.fever_c == 37.5
    assert who.grid_id == "G-01" and who.zone == "Asia/Shanghai" and who.name == "Wang Fang"


def test_policy_fields_are_checked():
    with pytest.raises(ValueError, match="HH:MM"):
        CommunityPolicy(community_id="CM-1", checkin_reminder_at="25:00")
    with pytest.raises(ValueError):
        CommunityPolicy(community_id="CM-1", follow_up_days=0)


def test_release_rule_alone():
    p = ScreeningPolicy()
    f = fu.FollowUp("f", "R", "x", DAY, DAY + timedelta(days=14), "open", MORNING, DAY)
    assert fu.release_check(f, today=DAY + timedelta(days=14), test_day=None, policy=p) is None
    t = fu.tested(f, negative=True, at=MORNING + timedelta(days=13))
    assert fu.release_check(
        t, today=DAY + timedelta(days=14), test_day=DAY + timedelta(days=13), policy=p
    )
    assert (
        fu.release_check(
            t, today=DAY + timedelta(days=14), test_day=DAY - timedelta(days=1), policy=p
        )
        is None
    )
