"""Questionnaires (the edge contract §4.3): PHQ-9 and GAD-7 scored by their published rules
at every boundary, the reply, a call-back asked of the community doctor, a repeat that
changes nothing, every bad field named; on the in-memory unit of work."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridcare.contracts.notify import NotificationRequested
from gridcare.contracts.refdata import (
    Building,
    Community,
    CommunityPolicy,
    Compound,
    Household,
    Resident,
    Staff,
)
from gridcare.screening.domain import questionnaires as qn
from gridcare.screening.domain.questionnaires import FollowUp, Instrument, Severity
from gridcare.screening.handlers import questionnaires as handlers
from gridcare.screening.handlers import refdata as refdata_handlers
from gridcare.screening.unit_of_work import FakeUnitOfWork
from gridcare.shared.errors import ApiError

NOW = datetime(2026, 3, 12, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
ORDER = list(Severity)  # minimal ... severe


def phq9(total: int, item9: int = 0) -> list[int]:
    """Nine answers adding up to ``total`` with item 9 as given."""
    answers = [0] * 8 + [item9]
    left = total - item9
    for i in range(8):
        answers[i] = min(3, left)
        left -= answers[i]
    assert left == 0 and sum(answers) == total
    return answers


def gad7(total: int) -> list[int]:
    answers, left = [0] * 7, total
    for i in range(7):
        answers[i] = min(3, left)
        left -= answers[i]
    assert left == 0
    return answers


# --- the rules ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("total", "severity", "follow_up"),
    [
        (0, "minimal", "none"),
        (4, "minimal", "none"),
        (5, "mild", "none"),
        (9, "mild", "none"),
        (10, "moderate", "call_back"),
        (14, "moderate", "call_back"),
        (15, "moderately_severe", "call_back"),
        (19, "moderately_severe", "call_back"),
        (20, "severe", "call_back"),
        (24, "severe", "call_back"),
    ],
)
def test_phq9_bands_and_call_back_at_every_boundary(total, severity, follow_up):
    result = qn.score("phq9", phq9(total))
    assert (result.score, result.severity, result.follow_up) == (total, severity, follow_up)


@pytest.mark.parametrize(
    ("total", "severity", "follow_up"),
    [
        (0, "minimal", "none"),
        (4, "minimal", "none"),
        (5, "mild", "none"),
        (9, "mild", "none"),
        (10, "moderate", "call_back"),
        (14, "moderate", "call_back"),
        (15, "severe", "call_back"),
        (21, "severe", "call_back"),
    ],
)
def test_gad7_bands_and_call_back_at_every_boundary(total, severity, follow_up):
    result = qn.score("gad7", gad7(total))
    assert (result.score, result.severity, result.follow_up) == (total, severity, follow_up)


@pytest.mark.parametrize(("total", "item9"), [(1, 1), (3, 3), (9, 2), (10, 1), (27, 3)])
def test_any_answer_above_0_on_phq9_item_9_is_an_urgent_call_back(total, item9):
    result = qn.score("phq9", phq9(total, item9))
    assert result.follow_up == "urgent_call_back" and result.score == total


def test_the_last_item_of_gad7_is_not_phq9s_item_9():
    assert qn.score("gad7", [0, 0, 0, 0, 0, 0, 3]).follow_up == "none"
    assert qn.score("phq9", [0, 0, 0, 0, 0, 0, 3, 0, 0]).follow_up == "none"  # item 7


def test_the_extremes():
    assert qn.score("phq9", [3] * 9) == qn.Result(27, Severity.SEVERE, FollowUp.URGENT_CALL_BACK)
    assert qn.score("gad7", [3] * 7) == qn.Result(21, Severity.SEVERE, FollowUp.CALL_BACK)
    assert qn.score("gad7", [0] * 7) == qn.Result(0, Severity.MINIMAL, FollowUp.NONE)


answers_of = st.sampled_from(list(Instrument)).flatmap(
    lambda i: st.tuples(
        st.just(i), st.lists(st.integers(0, 3), min_size=qn.ITEMS[i], max_size=qn.ITEMS[i])
    )
)


@given(answers_of, answers_of)
def test_score_is_the_sum_and_severity_never_falls_as_the_score_rises(a, b):
    (ia, xa), (ib, xb) = a, b
    ra = qn.score(ia, xa)
    assert ra.score == sum(xa)
    if ia == ib:
        rb = qn.score(ib, xb)
        if ra.score <= rb.score:
            assert ORDER.index(ra.severity) <= ORDER.index(rb.severity)
    urgent = ia is Instrument.PHQ9 and xa[8] > 0
    assert (ra.follow_up == "urgent_call_back") == urgent
    assert (ra.follow_up == "call_back") == (not urgent and ra.score >= 10)


@given(st.sampled_from(list(Instrument)), st.integers(0, 27))
def test_severity_is_monotone_over_every_possible_score(instrument, total):
    top = 3 * qn.ITEMS[instrument]
    if total < top:
        lower, higher = qn.severity(instrument, total), qn.severity(instrument, total + 1)
        assert ORDER.index(lower) <= ORDER.index(higher)


@pytest.mark.parametrize(
    ("instrument", "answers", "fields"),
    [
        ("phq9", [0] * 8, ["answers"]),
        ("phq9", [0] * 10, ["answers"]),
        ("gad7", [0] * 9, ["answers"]),
        ("phq9", [0, 1, 2, 3, 4, 0, 0, 0, -1], ["answers.4", "answers.8"]),
        (
            "gad7",
            [0, True, 1.0, "2", None, 0, 0],
            ["answers.1", "answers.2", "answers.3", "answers.4"],
        ),
        ("bdi", [0] * 9, ["instrument"]),
        (None, [], ["instrument", "answers"]),
        ("phq9", "000000000", ["answers"]),
        ("phq9", [9] * 500, ["answers"]),  # only the count for a list that is no questionnaire
        ("gad7", [0, 0, 5], ["answers", "answers.2"]),
    ],
)
def test_problems_name_every_bad_field(instrument, answers, fields):
    assert [f for f, _ in qn.problems(instrument, answers)] == fields
    with pytest.raises(ValueError):
        qn.score(instrument or "phq9", answers)


def test_the_messages_are_kind_and_say_what_happens_next():
    for follow in FollowUp:
        for sev in Severity:
            text = qn.message(qn.Result(10, sev, follow))
            assert set(text) == {"zh", "en"} and all(len(t) > 30 for t in text.values())
            assert sev.value not in text["en"]  # never the severity label alone
    urgent = qn.message(qn.Result(1, Severity.MINIMAL, FollowUp.URGENT_CALL_BACK))
    assert "社区工作人员将尽快与您联系" in urgent["zh"] and "12356" in urgent["zh"]
    assert "120" in urgent["en"] and "12356" in urgent["en"] and "as soon as" in urgent["en"]
    call = qn.message(qn.Result(12, Severity.MODERATE, FollowUp.CALL_BACK))
    assert "call you" in call["en"] and "电话" in call["zh"]


# --- the edge: reading a request --------------------------------------------------------------
def body(**changes) -> bytes:
    doc = {
        "submission_id": "q-1",
        "person_id": "R-1001",
        "instrument": "phq9",
        "answers": [1, 1, 1, 1, 1, 1, 1, 1, 1],
        "submitted_at": "2026-03-12T08:59:00+08:00",
        "app_version": "2.3",  # unknown fields are ignored
    }
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def fields_of(data: bytes, person: str = "R-1001") -> list[str]:
    with pytest.raises(handlers.InvalidQuestionnaire) as err:
        handlers.read_request(data, person, NOW)
    reply = err.value.reply()
    assert reply["error"]["code"] == "invalid_questionnaire"
    assert all(d["error"] for d in reply["error"]["detail"])
    return [d["field"] for d in reply["error"]["detail"]]


def test_a_valid_request_is_read():
    req = handlers.read_request(body(), "R-1001", NOW)
    assert req.instrument == "phq9" and req.answers == [1] * 9
    assert req.submitted_at == datetime(2026, 3, 12, 0, 59, tzinfo=UTC)


def test_every_bad_field_is_named_at_once():
    bad = body(
        submission_id="q 1!",
        person_id="R-1002",
        answers=[0, 1, 4, "x"],
        submitted_at="yesterday",
    )
    assert sorted(fields_of(bad)) == sorted(
        ["submission_id", "person_id", "answers", "answers.2", "answers.3", "submitted_at"]
    )


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        (body(instrument="PHQ9"), ["instrument"]),
        (body(instrument="gad7"), ["answers"]),  # nine answers for a seven-item one
        (body(answers=[0] * 8 + [7]), ["answers.8"]),
        (body(answers=None), ["answers"]),
        (body(submitted_at="2026-03-12T08:59:00"), ["submitted_at"]),  # no offset
        (body(submitted_at="2026-03-12T09:06:00+08:00"), ["submitted_at"]),  # 6 min ahead
        (body(submission_id=...), ["submission_id"]),
        (body(person_id=...), ["person_id"]),
        (b"not json", ["(body)"]),
        (b"\xff\xfe", ["(body)"]),
        (b"[1, 2]", ["(body)"]),
        (b"{}", ["submission_id", "person_id", "submitted_at", "instrument", "answers"]),
    ],
)
def test_bad_requests(data, fields):
    assert sorted(fields_of(data)) == sorted(fields)


def test_the_body_must_be_for_the_subjects_person():
    assert fields_of(body(), person="R-2002") == ["person_id"]


# --- the service layer ------------------------------------------------------------------------
async def community(uow: FakeUnitOfWork, *, doctor: bool = True, secretary: bool = True):
    entities = [
        Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
        Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
        Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
        Household(household_id="H-0101", building_id="B-01", unit="1-101"),
        Resident(
            resident_id="R-1001", household_id="H-0101", name="Wang Fang", phone="13800000001"
        ),
        Resident(resident_id="R-1002", household_id="H-0101", name=""),
    ]
    if doctor:
        entities.append(
            Staff(staff_id="D-01", community_id="CM-1", name="Dr Chen", roles=["community_doctor"])
        )
    if secretary:
        entities.append(
            Staff(staff_id="S-01", community_id="CM-1", name="Secretary Wang", roles=["secretary"])
        )
    for entity in entities:
        await refdata_handlers.reference_data_changed(entity, uow)
    return uow


async def answer(uow, data: bytes | None = None, now: datetime = NOW, **changes):
    req = handlers.read_request(
        data or body(**changes), json.loads(data or body(**changes))["person_id"], now
    )
    return await handlers.submit(req, uow, now)


async def test_an_answer_above_0_on_item_9_is_kept_and_an_urgent_call_back_asked():
    uow = await community(FakeUnitOfWork())
    reply = await answer(uow, answers=[0, 0, 0, 0, 0, 0, 0, 0, 1])
    assert reply == {
        "submission_id": "q-1",
        "score": 1,
        "severity": "minimal",
        "follow_up": "urgent_call_back",
        "message": {
            "zh": "感谢您如实作答。请保持电话畅通，社区工作人员将尽快与您联系。"
            "如有紧急情况请拨打 120 或心理援助热线 12356.",
            "en": "Thank you for answering honestly. Please keep your phone on: community "
            "staff will contact you as soon as possible. In an emergency, call 120 or the "
            "psychological support hotline 12356.",
        },
    }
    [kept] = uow.questionnaires.rows.values()
    assert kept.answers == (0, 0, 0, 0, 0, 0, 0, 0, 1) and kept.received_at == NOW
    assert kept.submitted_at == datetime(2026, 3, 12, 0, 59, tzinfo=UTC)
    [request] = uow.events(NotificationRequested)
    assert request["recipient"] == {"kind": "role", "role": "community_doctor", "place_id": "CM-1"}
    assert request["template"] == "task.mental_health_call_back"
    assert request["priority"] == "urgent" and request["needs_ack"] is True
    assert request["alert_kind"] == "mental_health_urgent"
    assert request["places"] == {"community_id": "CM-1", "grid_id": "G-01"}
    assert request["params"] == {
        "person_id": "R-1001",
        "name": "Wang Fang",
        "phone": "13800000001",
        "urgent": True,
        "at": NOW.isoformat(),
    }  # who to call and how urgent: never the answers or the score


async def test_a_score_of_10_asks_a_normal_call_back():
    uow = await community(FakeUnitOfWork())
    reply = await answer(uow, instrument="gad7", answers=[2, 2, 2, 2, 1, 1, 0])
    assert (reply["score"], reply["severity"], reply["follow_up"]) == (10, "moderate", "call_back")
    assert reply["message"] == qn.message(qn.Result(10, Severity.MODERATE, FollowUp.CALL_BACK))
    [request] = uow.events(NotificationRequested)
    assert request["priority"] == "normal" and request["needs_ack"] is False
    assert request["alert_kind"] is None and request["params"]["urgent"] is False


async def test_a_low_score_asks_nobody():
    uow = await community(FakeUnitOfWork())
    reply = await answer(uow, answers=[1, 1, 1, 1, 1, 1, 1, 1, 0])
    assert (reply["score"], reply["severity"], reply["follow_up"]) == (8, "mild", "none")
    assert uow.events(NotificationRequested) == [] and len(uow.questionnaires.rows) == 1


async def test_a_repeat_gets_the_same_reply_and_changes_nothing():
    uow = await community(FakeUnitOfWork())
    first = await answer(uow, answers=[3] * 9)
    again = await answer(uow, answers=[3] * 9)
    other = await answer(uow, answers=[0] * 9)  # the same id with other answers: the kept one
    assert first == again == other and first["score"] == 27
    assert len(uow.questionnaires.rows) == 1 and len(uow.events(NotificationRequested)) == 1


async def test_the_same_id_from_another_person_is_their_own():
    uow = await community(FakeUnitOfWork())
    await answer(uow, answers=[3] * 9)
    theirs = await answer(uow, person_id="R-1002", answers=[0] * 9)
    assert theirs["score"] == 0 and len(uow.questionnaires.rows) == 2


async def test_a_repeat_committed_meanwhile_is_answered_from_the_store():
    """Two instances take the same submission at once: the second insert is refused by the
    key and its reply is the kept one (no second request to notify)."""
    uow = await community(FakeUnitOfWork())
    await answer(uow, answers=[3] * 9)
    real_get, calls = uow.questionnaires.get, []

    async def not_yet(person_id, submission_id):
        calls.append(1)
        return None if len(calls) == 1 else await real_get(person_id, submission_id)

    uow.questionnaires.get = not_yet  # type: ignore[method-assign]
    reply = await answer(uow, answers=[3] * 9)
    assert reply["score"] == 27 and len(calls) == 2
    assert len(uow.events(NotificationRequested)) == 1


async def test_an_unknown_resident_is_refused_and_nothing_kept():
    uow = await community(FakeUnitOfWork())
    with pytest.raises(ApiError) as err:
        await answer(uow, person_id="R-9999")
    assert err.value.code == "unknown_person" and err.value.field == "person_id"
    assert uow.questionnaires.rows == {} and uow.outbox == []


async def test_without_a_community_doctor_the_secretary_then_the_grid_worker_is_asked():
    uow = await community(FakeUnitOfWork(), doctor=False)
    await answer(uow, answers=[3] * 9)
    uow2 = await community(FakeUnitOfWork(), doctor=False, secretary=False)
    await answer(uow2, answers=[3] * 9)
    assert [
        r["recipient"]
        for r in uow.events(NotificationRequested) + uow2.events(NotificationRequested)
    ] == [
        {"kind": "role", "role": "secretary", "place_id": "CM-1"},
        {"kind": "role", "role": "grid_worker", "place_id": "G-01"},
    ]


async def test_a_resident_without_a_name_or_phone_is_still_called_back():
    uow = await community(FakeUnitOfWork())
    await answer(uow, person_id="R-1002", answers=[3] * 9)
    [request] = uow.events(NotificationRequested)
    assert request["params"]["name"] is None and request["params"]["phone"] is None


async def test_the_office_lists_the_newest_on_the_local_clock():
    uow = await community(FakeUnitOfWork())
    await answer(uow, submission_id="q-1", answers=[0] * 9)
    await answer(uow, submission_id="q-2", answers=[3] * 9, now=NOW + timedelta(minutes=1))
    await answer(
        uow, submission_id="q-3", instrument="gad7", answers=[2] * 7, now=NOW + timedelta(minutes=2)
    )
    listed = await handlers.newest(uow, limit=10)
    assert [s["submission_id"] for s in listed] == ["q-3", "q-2", "q-1"]
    assert listed[0]["received_at"] == "2026-03-12T09:02:00+08:00"
    assert listed[0]["submitted_at"] == "2026-03-12T08:59:00+08:00"
    assert listed[0]["answers"] == [2] * 7 and listed[0]["follow_up"] == "call_back"
    urgent = await handlers.newest(uow, limit=10, follow_up="urgent_call_back")
    assert [s["submission_id"] for s in urgent] == ["q-2"]
    assert await handlers.newest(uow, limit=10, person_id="R-1002") == []
    assert len(await handlers.newest(uow, limit=2)) == 2


async def test_the_numbers_a_reply_names_are_the_communitys_and_a_repeat_keeps_its_own():
    uow = await community(FakeUnitOfWork())
    policy = CommunityPolicy(community_id="CM-1", emergency_number="112", crisis_hotline="116 123")
    await refdata_handlers.reference_data_changed(policy, uow)
    first = await answer(uow, answers=[3] * 9)
    assert "112" in first["message"]["en"] and "116 123" in first["message"]["zh"]
    assert "120" not in first["message"]["en"] and "12356" not in first["message"]["zh"]
    changed = CommunityPolicy(community_id="CM-1", emergency_number="999")
    await refdata_handlers.reference_data_changed(changed, uow)
    assert await answer(uow, answers=[3] * 9) == first  # as first sent
    later = await answer(uow, submission_id="q-2", instrument="gad7", answers=[3] * 7)
    assert "999" in later["message"]["en"] and "12356" in later["message"]["en"]
