"""Dispatch's handlers on the in-memory unit of work: no broker, no database."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from gridcare.contracts import refdata
from gridcare.contracts.checkpoint import PermitOverdue, QuarantineBreachAttempted
from gridcare.contracts.dispatch import TaskCreated
from gridcare.contracts.notify import NotificationRequested
from gridcare.contracts.refdata import (
    Building,
    Channel,
    ChatGroup,
    Community,
    Grid,
    Household,
    Resident,
    Staff,
)
from gridcare.contracts.screening import CaseOpened
from gridcare.dispatch import handlers
from gridcare.dispatch.domain.tasks import WITHIN
from gridcare.dispatch.unit_of_work import FakeUnitOfWork
from gridcare.shared.envelope import Envelope
from gridcare.shared.errors import Permanent
from gridcare.shared.uow import AlreadyHandled, Inbound

# Kinds of reference data that only notify keeps (it reaches people through them).
NOTIFY_ONLY = (
    Staff(
        staff_id="DS-01",
        community_id="CM-1",
        name="Zhou Peng",
        phone="+86 136 0000 0003",
        roles=["duty_staff"],
        gates=["g1", "g2"],
        channels=["chat", "sms"],
        chat_url="http://127.0.0.1:8099/hooks/staff-DS-01",
    ),
    ChatGroup(
        group_id="CG-C01",
        community_id="CM-1",
        place="compound",
        place_id="C-01",
        name="Donghu Garden",
        url="http://127.0.0.1:8099/hooks/compound-C-01",
    ),
    Channel(
        channel_id="SMS-1",
        community_id="CM-1",
        kind="sms",
        url="https://sms.example.cn/send?to={phone}",
        rate_per_s=20,
        max_segments=3,
    ),
)


def as_delivered(entity):
    """The entity as a consumer gets it: the envelope's JSON read back through TYPES."""
    env = Envelope.from_bytes(Envelope.wrap(entity, source="gridcare-import").to_bytes())
    return refdata.TYPES[env.type].model_validate(env.data)


T0 = datetime(2026, 3, 11, 23, 31, 5, tzinfo=UTC)  # 07:31 on 12 March in Shanghai
QUARANTINE = {"zh": "居家隔离", "en": "home quarantine"}


async def community(worker: str = "W-01") -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    for entity in (
        Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
        Grid.model_construct(  # as a store may hold it: not validated (a worker may be "")
            grid_id="G-01",
            community_id="CM-1",
            name="Grid 1",
            worker_id=worker,
            worker_name="Li Mei",
            worker_phone="+86 138 0000 0001",
        ),
        Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
        Household(household_id="H-0101", building_id="B-01", unit="1-101"),
        Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
    ):
        await handlers.reference_data_changed(entity, uow)
    return uow


def case(case_id: str = "c-1", person: str = "R-1001") -> CaseOpened:
    return CaseOpened(
        case_id=case_id,
        kind="fever",
        person_id=person,
        opened_at=T0,
        reason="38.2",
        source_ref="scan:g1:g1-1",
        temperature_c=38.2,
        gate_id="g1",
        observed_at=T0,
    )


def breach(via: str = "gate", ref: str = "scan:g1:g1-9") -> QuarantineBreachAttempted:
    return QuarantineBreachAttempted(
        via=via,
        compound_id="C-01",
        person_id="R-1001" if via == "gate" else None,
        household_id="H-0101",
        status="home_quarantine",
        status_label=QUARANTINE,
        gate_id="g1" if via == "gate" else None,
        ref=ref,
        at=T0,
    )


async def test_a_fever_case_becomes_a_follow_up_for_the_grid_worker():
    uow = await community()
    await handlers.case_opened(case(), uow)
    [task] = uow.tasks.rows.values()
    assert (task.kind, task.assignee_id, task.household_id) == ("fever_follow_up", "W-01", "H-0101")
    assert task.due_by - task.created_at == WITHIN["fever_follow_up"]
    [created] = uow.events(TaskCreated)
    assert created["assignee_id"] == "W-01" and not created["urgent"]
    assert "2026-03-12 07:31" in created["summary"]["zh"]  # local time, never UTC
    assert "07:31" in created["summary"]["en"] and "UTC" not in created["summary"]["en"]
    # the grid worker is told through notify: a fever must be acknowledged, or it escalates
    [told] = uow.events(NotificationRequested)
    assert told["recipient"] == {"kind": "role", "role": "grid_worker", "place_id": "G-01"}
    assert (told["template"], told["priority"]) == ("task.fever_follow_up", "normal")
    assert told["needs_ack"] and told["alert_kind"] == "fever"
    assert told["places"] == {"grid_id": "G-01", "community_id": "CM-1", "gate_id": "g1"}
    assert told["params"]["temperature_c"] == 38.2 and told["params"]["hours"] == 2


async def test_a_case_reported_twice_is_one_task():
    uow = await community()
    await handlers.case_opened(case(), uow)
    await handlers.case_opened(case(), uow)
    assert len(uow.tasks.rows) == 1 and len(uow.events(TaskCreated)) == 1


async def test_a_redelivery_is_a_duplicate():
    uow = await community()
    msg = Inbound("dispatch-cases", "e-1", "e-1")
    await handlers.case_opened(case(), uow.handling(msg))
    with pytest.raises(AlreadyHandled):
        await handlers.case_opened(case("c-2"), uow.handling(msg))
    assert len(uow.tasks.rows) == 1


async def test_a_breach_at_the_gate_is_urgent_and_says_what_holds_them():
    uow = await community()
    await handlers.quarantine_breach(breach(), uow)
    [task] = uow.tasks.rows.values()
    assert task.urgent and task.due_by - task.created_at == timedelta(minutes=15)
    [created] = uow.events(TaskCreated)
    assert "居家隔离" in created["summary"]["zh"] and "home quarantine" in created["summary"]["en"]
    assert "07:31" in created["summary"]["zh"] and created["person_id"] == "R-1001"
    [told] = uow.events(NotificationRequested)
    assert told["priority"] == "urgent" and told["alert_kind"] == "quarantine_breach"


async def test_a_quarantined_door_is_a_task_about_the_household():
    uow = await community()
    await handlers.quarantine_breach(breach("door", "door:d-7"), uow)
    [created] = uow.events(TaskCreated)
    assert created["person_id"] == "" and created["household_id"] == "H-0101"
    assert "门磁" in created["summary"]["zh"]


async def test_an_overdue_return_is_one_task_per_outing():
    uow = await community()
    ev = PermitOverdue(
        permit_id="p-1",
        holder_id="R-1001",
        household_id="H-0101",
        compound_id="C-01",
        exited_at=T0,
        return_by=T0 + timedelta(hours=3),
    )
    await handlers.permit_overdue(ev, uow)
    await handlers.permit_overdue(ev, uow)
    later = ev.model_copy(update={"exited_at": T0 + timedelta(days=1)})
    await handlers.permit_overdue(later, uow)
    assert len(uow.tasks.rows) == 2
    assert "10:31" in uow.events(TaskCreated)[0]["summary"]["zh"]  # due back, local
    told = uow.events(NotificationRequested)
    assert len(told) == 2 and not told[0]["needs_ack"]  # overdue: no acknowledgement asked


async def test_an_unknown_person_is_retried_not_dropped():
    uow = await community()
    with pytest.raises(LookupError, match="R-9999"):
        await handlers.case_opened(case(person="R-9999"), uow)
    assert uow.tasks.rows == {}


async def test_a_grid_without_a_worker_is_a_permanent_error():
    uow = await community(worker="")
    with pytest.raises(Permanent, match="no worker"):
        await handlers.case_opened(case(), uow)


async def test_tasks_list_on_the_local_clock():
    uow = await community()
    await handlers.case_opened(case(), uow)
    [row] = await handlers.newest_tasks(10, "W-01", uow)
    assert row["kind"] == "fever_follow_up" and row["due_by"].endswith("+08:00")
    assert await handlers.newest_tasks(10, "W-02", uow) == []


@pytest.mark.parametrize("entity", NOTIFY_ONLY, ids=lambda e: e.KIND)
async def test_reference_data_dispatch_does_not_keep_is_skipped(entity):
    """Staff, chat groups and channel providers are notify's: handled without an error
    (so the message is acked, never retried or dead-lettered) and nothing is kept."""
    uow = await community()
    rows, commits = copy.deepcopy(uow.state()), uow.commits
    msg = Inbound("dispatch-refdata", "e-staff", "e-staff", type=entity.TYPE)
    await handlers.reference_data_changed(as_delivered(entity), uow.handling(msg))
    assert uow.state() == rows and uow.commits == commits and uow.outbox == []
    assert entity.TYPE not in uow.refdata.rows


async def test_a_grid_with_the_worker_s_email_and_channels_is_kept():
    uow = await community()
    grid = Grid(
        grid_id="G-02",
        community_id="CM-1",
        name="Grid 2",
        worker_id="W-02",
        worker_name="Tom Baker",
        worker_phone="+86 138 0000 0002",
        worker_email="tom.baker@example.com",
        worker_channels=["email", "sms"],
    )
    await handlers.reference_data_changed(as_delivered(grid), uow)
    assert (await uow.refdata.get(Grid.TYPE, "G-02"))["worker_id"] == "W-02"
