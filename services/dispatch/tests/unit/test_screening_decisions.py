"""Dispatch acting on screening's decisions, on the in-memory unit of work: door visits
(DoorVisitRequested), quarantine support for a household held at home and a transfer for
a confirmed case (PersonStatusChanged); duplicates and late decisions change nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gridcare.contracts.dispatch import TaskClosed, TaskCreated
from gridcare.contracts.notify import NotificationRequested
from gridcare.contracts.refdata import Building, Community, Grid, Household, Resident
from gridcare.contracts.screening import DoorVisitRequested, PersonStatusChanged
from gridcare.dispatch import handlers
from gridcare.dispatch.domain.tasks import WITHIN
from gridcare.dispatch.unit_of_work import FakeUnitOfWork
from gridcare.shared.uow import AlreadyHandled, Inbound

T0 = datetime(2026, 3, 11, 23, 31, 5, tzinfo=UTC)  # 07:31 on 12 March in Shanghai
HELD = {"home_quarantine", "confirmed", "close_contact", "suspected", "fever_unexcluded"}
AWAY = {"in_hospital", "central_quarantine"}


async def community() -> FakeUnitOfWork:
    """Two households of grid G-01 (worker W-01): H-0101 with three people, H-0102 one."""
    uow = FakeUnitOfWork()
    for entity in (
        Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
        Grid(
            grid_id="G-01",
            community_id="CM-1",
            name="Grid 1",
            worker_id="W-01",
            worker_name="Li Mei",
            worker_phone="+86 138 0000 0001",
        ),
        Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
        Household(household_id="H-0101", building_id="B-01", unit="1-101"),
        Household(household_id="H-0102", building_id="B-01", unit="1-102"),
        Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
        Resident(resident_id="R-1002", household_id="H-0101", name="Wang Lei"),
        Resident(resident_id="R-1003", household_id="H-0101", name="Wang Min"),
        Resident(resident_id="R-2001", household_id="H-0102", name="Zhao Min"),
    ):
        await handlers.reference_data_changed(entity, uow)
    return uow


def decided(
    person: str, status: str, minutes: int, household: str | None = "H-0101", **extra
) -> PersonStatusChanged:
    fields = {
        "person_id": person,
        "status": status,
        "holds_at_gate": status in HELD | AWAY,
        "holds_at_home": status in HELD,
        "household_id": household,
        "decided_at": T0 + timedelta(minutes=minutes),
        "role": "community_doctor",
        "reason": "",
    }
    return PersonStatusChanged(**(fields | extra))


def visit(request_id: str = "v-1", person: str = "R-1001") -> DoorVisitRequested:
    return DoorVisitRequested(
        request_id=request_id,
        person_id=person,
        household_id="H-0101",
        grid_id="G-01",
        missed_days=2,
        day=date(2026, 3, 14),
        last_checkin_day=date(2026, 3, 11),
        requested_at=T0,
    )


def of_kind(uow: FakeUnitOfWork, kind: str) -> list:
    return sorted(
        (t for t in uow.tasks.rows.values() if t.kind == kind), key=lambda t: t.created_at
    )


def told(uow: FakeUnitOfWork, template: str) -> list[dict]:
    return [n for n in uow.events(NotificationRequested) if n["template"] == template]


# --- door visits ---------------------------------------------------------------------------


async def test_a_door_visit_request_is_a_task_for_the_grid_worker_without_a_second_message():
    uow = await community()
    await handlers.door_visit_requested(visit(), uow)
    [task] = uow.tasks.rows.values()
    assert (task.kind, task.person_id, task.household_id) == ("door_visit", "R-1001", "H-0101")
    assert task.assignee_id == "W-01" and not task.urgent and task.status == "open"
    assert task.due_by - task.created_at == WITHIN["door_visit"]
    [created] = uow.events(TaskCreated)
    assert "2 天未打卡" in created["summary"]["zh"] and "2026-03-11" in created["summary"]["zh"]
    assert "2 days" in created["summary"]["en"]
    # screening alerted the worker about the same missed days: dispatch sends nothing
    assert uow.events(NotificationRequested) == []


async def test_a_door_visit_request_delivered_twice_is_one_task_and_another_request_another():
    uow = await community()
    await handlers.door_visit_requested(visit(), uow)
    await handlers.door_visit_requested(visit(), uow)  # re-emitted with the same request_id
    assert len(uow.tasks.rows) == 1 and len(uow.events(TaskCreated)) == 1
    await handlers.door_visit_requested(visit("v-2"), uow)  # a later run of missed days
    assert len(of_kind(uow, "door_visit")) == 2


async def test_a_door_visit_redelivered_by_the_broker_is_a_duplicate():
    uow = await community()
    msg = Inbound("dispatch-visits", "e-1", "e-1")
    await handlers.door_visit_requested(visit(), uow.handling(msg))
    with pytest.raises(AlreadyHandled):
        await handlers.door_visit_requested(visit(), uow.handling(msg))
    assert len(uow.tasks.rows) == 1


async def test_a_door_visit_for_someone_not_yet_known_is_retried():
    uow = await community()
    with pytest.raises(LookupError, match="R-9999"):
        await handlers.door_visit_requested(visit(person="R-9999"), uow)
    assert uow.tasks.rows == {}


# --- quarantine support --------------------------------------------------------------------


async def test_a_household_entering_home_quarantine_gets_one_support_task():
    uow = await community()
    await handlers.person_status_changed(decided("R-1001", "home_quarantine", 0), uow)
    [task] = of_kind(uow, "quarantine_support")
    assert (task.household_id, task.person_id, task.assignee_id) == ("H-0101", None, "W-01")
    assert task.due_by - task.created_at == WITHIN["quarantine_support"]
    [created] = uow.events(TaskCreated)
    assert created["person_id"] == "" and "07:31" in created["summary"]["zh"]
    assert "门磁" in created["summary"]["zh"] and "rubbish" in created["summary"]["en"]
    [note] = told(uow, "task.quarantine_support")
    assert note["recipient"] == {"kind": "role", "role": "grid_worker", "place_id": "G-01"}
    assert note["priority"] == "normal" and not note["needs_ack"]
    assert note["params"] == {
        "household_id": "H-0101",
        "person_id": "R-1001",
        "since": T0.isoformat(),
        "until": None,
        "hours": 6,
    }
    # the household's other members following: still one task, one message
    await handlers.person_status_changed(decided("R-1002", "home_quarantine", 1), uow)
    await handlers.person_status_changed(decided("R-1003", "home_quarantine", 2), uow)
    assert len(of_kind(uow, "quarantine_support")) == 1
    assert len(told(uow, "task.quarantine_support")) == 1
    assert uow.holds.locked == ["H-0101"] * 3  # each decision taken under its household's lock


async def test_the_support_task_ends_when_nobody_of_the_household_is_held_at_home():
    uow = await community()
    await handlers.person_status_changed(decided("R-1001", "home_quarantine", 0), uow)
    await handlers.person_status_changed(decided("R-1002", "home_quarantine", 1), uow)
    await handlers.person_status_changed(decided("R-1001", "released", 10), uow)
    [task] = of_kind(uow, "quarantine_support")
    assert task.status == "open"  # R-1002 is still at home
    assert uow.events(TaskClosed) == []
    await handlers.person_status_changed(decided("R-1002", "released", 11), uow)
    [task] = of_kind(uow, "quarantine_support")
    assert task.status == "done" and task.closed_at is not None
    [closed] = uow.events(TaskClosed)
    assert closed["task_id"] == task.task_id and closed["status"] == "done"
    assert closed["household_id"] == "H-0101" and closed["reason"] == "released"
    # quarantined again later: a new task
    await handlers.person_status_changed(decided("R-1003", "home_quarantine", 60), uow)
    first, second = of_kind(uow, "quarantine_support")
    assert (first.status, second.status) == ("done", "open")


async def test_another_household_s_release_leaves_the_task_open():
    uow = await community()
    await handlers.person_status_changed(decided("R-1001", "home_quarantine", 0), uow)
    await handlers.person_status_changed(decided("R-2001", "normal", 5, household="H-0102"), uow)
    [task] = of_kind(uow, "quarantine_support")
    assert task.status == "open" and uow.events(TaskClosed) == []


async def test_a_member_taken_to_central_quarantine_is_no_longer_at_home():
    uow = await community()
    await handlers.person_status_changed(decided("R-1001", "home_quarantine", 0), uow)
    await handlers.person_status_changed(decided("R-1001", "central_quarantine", 30), uow)
    [task] = of_kind(uow, "quarantine_support")
    assert task.status == "done"  # held at the gate, but not at home: no door to watch


async def test_a_decision_from_an_older_producer_reads_holds_at_home_as_at_the_gate():
    uow = await community()
    ev = decided("R-1001", "home_quarantine", 0, holds_at_home=None)
    await handlers.person_status_changed(ev, uow)
    await handlers.person_status_changed(decided("R-1002", "close_contact", 1), uow)
    await handlers.person_status_changed(decided("R-1001", "released", 2, holds_at_home=None), uow)
    assert of_kind(uow, "quarantine_support")[0].status == "open"  # R-1002 is held at home
    await handlers.person_status_changed(decided("R-1002", "normal", 3), uow)
    assert of_kind(uow, "quarantine_support")[0].status == "done"


async def test_a_decision_delivered_twice_or_late_changes_nothing():
    uow = await community()
    first = decided("R-1001", "home_quarantine", 0)
    await handlers.person_status_changed(first, uow)
    await handlers.person_status_changed(first, uow)  # the same decision again
    assert len(uow.tasks.rows) == 1 and len(uow.outbox) == 2  # TaskCreated + its message
    # R-1002: the release (later) arrives before the quarantine (earlier)
    await handlers.person_status_changed(decided("R-1001", "released", 20), uow)
    await handlers.person_status_changed(decided("R-1002", "released", 20), uow)
    await handlers.person_status_changed(decided("R-1002", "home_quarantine", 5), uow)
    [task] = of_kind(uow, "quarantine_support")
    assert task.status == "done"  # nobody held at home: the late decision reopened nothing
    assert (await uow.holds.get("R-1002")).status == "released"


async def test_the_household_comes_from_the_reference_data_when_the_event_has_none():
    uow = await community()
    await handlers.person_status_changed(decided("R-2001", "home_quarantine", 0, None), uow)
    [task] = of_kind(uow, "quarantine_support")
    assert task.household_id == "H-0102"


async def test_quarantine_of_someone_without_a_known_household_is_retried():
    uow = await community()
    with pytest.raises(LookupError, match="R-9999"):
        await handlers.person_status_changed(decided("R-9999", "home_quarantine", 0, None), uow)
    assert uow.tasks.rows == {} and uow.holds.rows == {}
    # a release of an unknown person opens nothing and needs no retry
    await handlers.person_status_changed(decided("R-9998", "normal", 0, None), uow)
    assert uow.tasks.rows == {}


# --- transfers -----------------------------------------------------------------------------


async def test_a_confirmed_person_gets_one_urgent_transfer_task_per_decision():
    uow = await community()
    ev = decided("R-1001", "confirmed", 0, role="lab", reason="positive")
    await handlers.person_status_changed(ev, uow)
    await handlers.person_status_changed(ev, uow)
    [task] = of_kind(uow, "transfer")
    assert (task.person_id, task.household_id, task.assignee_id) == ("R-1001", "H-0101", "W-01")
    assert task.urgent and task.due_by - task.created_at == WITHIN["transfer"]
    [created] = [c for c in uow.events(TaskCreated) if c["kind"] == "transfer"]
    assert "定点医院" in created["summary"]["zh"] and "07:31" in created["summary"]["en"]
    [note] = told(uow, "task.transfer")
    assert note["priority"] == "urgent" and note["needs_ack"]
    assert note["alert_kind"] == "transfer"
    assert note["params"] == {
        "person_id": "R-1001",
        "household_id": "H-0101",
        "at": T0.isoformat(),
        "hours": 2,
    }
    # confirmed and at home: not a home quarantine, so no support task of its own
    assert of_kind(uow, "quarantine_support") == []


async def test_the_transfer_is_done_in_hospital_and_the_household_s_support_ends_with_it():
    uow = await community()
    await handlers.person_status_changed(decided("R-1002", "home_quarantine", 0), uow)
    await handlers.person_status_changed(decided("R-1001", "confirmed", 1), uow)
    await handlers.person_status_changed(decided("R-1002", "released", 2), uow)
    assert of_kind(uow, "quarantine_support")[0].status == "open"  # R-1001 waits at home
    await handlers.person_status_changed(decided("R-1001", "in_hospital", 90), uow)
    [transfer] = of_kind(uow, "transfer")
    [support] = of_kind(uow, "quarantine_support")
    assert (transfer.status, support.status) == ("done", "done")
    assert {(c["kind"], c["status"]) for c in uow.events(TaskClosed)} == {
        ("transfer", "done"),
        ("quarantine_support", "done"),
    }


async def test_a_confirmation_withdrawn_cancels_the_transfer_and_a_new_one_is_a_new_task():
    uow = await community()
    await handlers.person_status_changed(decided("R-1001", "confirmed", 0), uow)
    await handlers.person_status_changed(decided("R-1001", "suspected", 5), uow)
    [task] = of_kind(uow, "transfer")
    assert task.status == "cancelled"
    await handlers.person_status_changed(decided("R-1001", "confirmed", 30), uow)
    first, second = of_kind(uow, "transfer")
    assert (first.status, second.status) == ("cancelled", "open")
    assert len(told(uow, "task.transfer")) == 2


async def test_a_late_confirmation_after_the_hospital_opens_no_transfer():
    uow = await community()
    await handlers.person_status_changed(decided("R-1001", "in_hospital", 60), uow)
    await handlers.person_status_changed(decided("R-1001", "confirmed", 0), uow)
    assert of_kind(uow, "transfer") == []


async def test_the_task_list_shows_each_task_s_state():
    uow = await community()
    await handlers.person_status_changed(decided("R-1001", "home_quarantine", 0), uow)
    await handlers.person_status_changed(decided("R-1001", "normal", 5), uow)
    [row] = await handlers.newest_tasks(10, "W-01", uow)
    assert row["kind"] == "quarantine_support" and row["status"] == "done"
    assert row["closed_at"].endswith("+08:00") and row["person_id"] is None
