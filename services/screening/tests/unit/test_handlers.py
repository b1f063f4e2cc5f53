"""Screening's handlers on the in-memory unit of work: no broker, no database."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from gridcare.contracts import refdata
from gridcare.contracts.checkpoint import FeverDetected
from gridcare.contracts.refdata import (
    Building,
    Channel,
    ChatGroup,
    Community,
    Compound,
    Gate,
    Household,
    Resident,
    Staff,
)
from gridcare.contracts.screening import CaseOpened, PersonStatusChanged
from gridcare.screening.domain.status import HOLDS_AT_GATE, TRANSITIONS, HealthStatus, Role
from gridcare.screening.handlers import cases as case_handlers
from gridcare.screening.handlers import refdata as refdata_handlers
from gridcare.screening.handlers import status as status_handlers
from gridcare.screening.unit_of_work import FakeUnitOfWork
from gridcare.shared.envelope import Envelope
from gridcare.shared.errors import ApiError
from gridcare.shared.uow import AlreadyHandled, Inbound

# A community doctor (staff, which screening keeps: who may decide a status, in which role).
DOCTOR = Staff(
    staff_id="D-01",
    community_id="CM-1",
    name="Chen Jing",
    phone="+86 136 0000 0002",
    roles=["community_doctor"],
    channels=["sms"],
)


def path_from_normal(status: HealthStatus):
    """The machine's shortest way from normal to ``status`` (its transitions)."""
    paths = {HealthStatus.NORMAL: []}
    while status not in paths:
        for t in TRANSITIONS:
            if t.from_ in paths and t.to not in paths:
                paths[t.to] = [*paths[t.from_], t]
    return paths[status]


# Kinds of reference data that only notify keeps (it reaches people through them).
NOTIFY_ONLY = (
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


T0 = datetime(2026, 3, 11, 23, 31, 5, tzinfo=UTC)  # 07:31:05 in Shanghai


def fever(scan_id: str = "g1-1", t: float = 38.2, at: datetime = T0) -> FeverDetected:
    return FeverDetected(
        scan_id=scan_id,
        gate_id="g1",
        compound_id="C-01",
        person_id="R-1001",
        is_resident=True,
        temperature_c=t,
        scanned_at=at,
    )


async def community(uow: FakeUnitOfWork) -> FakeUnitOfWork:
    for entity in (
        Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
        Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
        Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
        Household(household_id="H-0101", building_id="B-01", unit="1-101"),
        Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
    ):
        await refdata_handlers.reference_data_changed(entity, uow)
    return uow


async def test_a_fever_opens_a_case_and_announces_it():
    uow = FakeUnitOfWork()
    await case_handlers.fever_detected(fever(), uow)
    [case] = uow.cases.rows.values()
    assert case.person_id == "R-1001" and case.is_open
    assert [o.value for o in case.observations] == [38.2]
    [opened] = uow.events(CaseOpened)
    assert opened["case_id"] == case.case_id and opened["temperature_c"] == 38.2
    assert opened["observed_at"] == T0.isoformat().replace("+00:00", "Z")


async def test_a_second_fever_joins_the_open_case():
    uow = FakeUnitOfWork()
    await case_handlers.fever_detected(fever("g1-1"), uow)
    await case_handlers.fever_detected(fever("g1-2", 38.9, T0 + timedelta(hours=1)), uow)
    [case] = uow.cases.rows.values()
    assert [o.value for o in case.observations] == [38.2, 38.9]
    assert len(uow.events(CaseOpened)) == 1


async def test_a_redelivered_fever_changes_nothing():
    uow = FakeUnitOfWork()
    msg = Inbound("screening-fever", "e-1", "e-1")
    await case_handlers.fever_detected(fever(), uow.handling(msg))
    with pytest.raises(AlreadyHandled):
        await case_handlers.fever_detected(fever(), uow.handling(msg))
    [case] = uow.cases.rows.values()
    assert len(case.observations) == 1 and len(uow.outbox) == 1
    assert uow.outbox[0][1].causation_id == "e-1"  # the event says what caused it


async def test_a_failing_step_leaves_nothing_behind():
    uow = FakeUnitOfWork()

    async def broken_observe(case, reading):
        raise RuntimeError("disk full")

    uow.cases.observe = broken_observe  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await case_handlers.fever_detected(fever(), uow)
    assert uow.cases.rows == {} and uow.outbox == []


async def test_only_the_kinds_screening_keeps_are_kept():
    uow = await community(FakeUnitOfWork())
    await refdata_handlers.reference_data_changed(
        Gate(gate_id="g1", compound_id="C-01", name="North"), uow
    )
    assert await uow.places.household_of("R-1001") == "H-0101"
    assert await uow.places.zone_of_person("R-1001") == "Asia/Shanghai"
    assert "refdata.GateUpserted" not in uow.refdata.rows


@pytest.mark.parametrize("status", list(HealthStatus)[1:])
async def test_every_status_change_says_whether_it_holds_at_the_gate(status):
    uow = await community(FakeUnitOfWork())
    for step in path_from_normal(status):  # the machine's shortest way there
        async with uow:
            await status_handlers.change_status(
                uow, "R-1001", step.to, by="D-01", role=min(step.roles), reason="visit", now=T0
            )
            await uow.commit()
    changed = uow.events(PersonStatusChanged)[-1]
    assert changed["status"] == status.value
    assert changed["holds_at_gate"] is (status in HOLDS_AT_GATE)
    assert changed["household_id"] == "H-0101"
    assert changed["status_label"]["zh"] and changed["status_label"]["en"]


async def test_symptoms_alone_do_not_hold_but_the_four_categories_do():
    held = {s.value for s in HOLDS_AT_GATE}
    assert {"confirmed", "suspected", "fever_unexcluded", "close_contact"} <= held
    assert {"normal", "symptomatic_follow_up", "recovered", "released"}.isdisjoint(held)


async def test_a_status_for_an_unknown_person_is_refused():
    uow = await community(FakeUnitOfWork())
    with pytest.raises(ApiError) as err:
        await status_handlers.set_status(
            uow, "R-9999", HealthStatus.CONFIRMED, by="City lab", role=Role.LAB, reason="PCR",
            now=T0,
        )  # fmt: skip
    assert err.value.code == "unknown_person" and uow.outbox[-1:] == []


async def test_status_history_reads_on_the_local_clock():
    uow = await community(FakeUnitOfWork())
    await refdata_handlers.reference_data_changed(DOCTOR, uow)
    for to, by, reason, at in (
        (HealthStatus.HOME_QUARANTINE, "D-01", "returnee", T0),
        (HealthStatus.RELEASED, "D-01", "14 days done", T0 + timedelta(days=14)),
    ):
        await status_handlers.set_status(uow, "R-1001", to, by=by, reason=reason, now=at)
    shown = await status_handlers.status_of("R-1001", uow)
    assert shown["status"] == "released" and shown["holds_at_gate"] is False
    assert [h["status"] for h in shown["history"]] == ["home_quarantine", "released"]
    assert all(h["at"].endswith("+08:00") for h in shown["history"])


async def test_cases_list_on_the_local_clock():
    uow = await community(FakeUnitOfWork())
    await case_handlers.fever_detected(fever(), uow)
    [case] = await case_handlers.newest_cases(10, None, uow)
    assert case["person_id"] == "R-1001" and case["opened_at"].endswith("+08:00")


@pytest.mark.parametrize("entity", NOTIFY_ONLY, ids=lambda e: e.KIND)
async def test_reference_data_screening_does_not_keep_is_skipped(entity):
    """Chat groups and channel providers are notify's: handled without an error
    (so the message is acked, never retried or dead-lettered) and nothing is kept."""
    uow = await community(FakeUnitOfWork())
    rows, commits = copy.deepcopy(uow.state()), uow.commits
    msg = Inbound("screening-refdata", "e-staff", "e-staff", type=entity.TYPE)
    await refdata_handlers.reference_data_changed(as_delivered(entity), uow.handling(msg))
    assert uow.state() == rows and uow.commits == commits and uow.outbox == []
    assert entity.TYPE not in uow.refdata.rows
    assert await uow.places.household_of("R-1001") == "H-0101"
