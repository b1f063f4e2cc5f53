"""What services ask notify for renders with notify's templates: every NotificationRequested
that dispatch, the checkpoint and screening make (run through their own handlers, on their
fake units of work) names a template notify has and gives every parameter it uses, and
renders in Chinese and English."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from gridcare.checkpoint import handlers as checkpoint
from gridcare.checkpoint.domain.health import GateHealth
from gridcare.checkpoint.domain.state import GateState
from gridcare.checkpoint.unit_of_work import FakeUnitOfWork as CheckpointUoW
from gridcare.contracts.checkpoint import PermitOverdue, QuarantineBreachAttempted
from gridcare.contracts.notify import NotificationRequested
from gridcare.contracts.refdata import (
    Building,
    Community,
    CommunityPolicy,
    Compound,
    Gate,
    Grid,
    Household,
    Resident,
    Staff,
)
from gridcare.contracts.screening import CaseOpened, PersonStatusChanged
from gridcare.dispatch import handlers as dispatch
from gridcare.dispatch.unit_of_work import FakeUnitOfWork as DispatchUoW
from gridcare.notify.domain.templates import Templates
from gridcare.screening.handlers import campaigns as screening_campaigns
from gridcare.screening.handlers import checkins as screening_checkins
from gridcare.screening.handlers import followup as screening_followup
from gridcare.screening.handlers import missed as screening_missed
from gridcare.screening.handlers import questionnaires as screening_questionnaires
from gridcare.screening.handlers import refdata as screening_refdata
from gridcare.screening.unit_of_work import FakeUnitOfWork as ScreeningUoW

T0 = datetime(2026, 3, 11, 23, 31, tzinfo=UTC)
PLACES = (
    Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
    Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
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
    Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
    Gate(gate_id="g1", compound_id="C-01", name="North gate"),
)


async def from_dispatch() -> list[dict]:
    uow = DispatchUoW()
    for entity in PLACES:
        await dispatch.reference_data_changed(entity, uow)
    await dispatch.case_opened(
        CaseOpened(
            case_id="c-1",
            kind="fever",
            person_id="R-1001",
            opened_at=T0,
            reason="38.2",
            source_ref="scan:g1:g1-1",
            temperature_c=38.2,
            gate_id="g1",
            observed_at=T0,
        ),
        uow,
    )
    for via in ("gate", "door"):
        await dispatch.quarantine_breach(
            QuarantineBreachAttempted(
                via=via,
                compound_id="C-01",
                person_id="R-1001" if via == "gate" else None,
                household_id=None if via == "gate" else "H-0101",  # as a gate reports it
                status="home_quarantine",
                status_label={"zh": "居家隔离", "en": "home quarantine"},
                gate_id="g1" if via == "gate" else None,
                ref=f"{via}:1",
                at=T0,
            ),
            uow,
        )
    await dispatch.permit_overdue(
        PermitOverdue(
            permit_id="p-1",
            holder_id="R-1001",
            household_id="H-0101",
            compound_id="C-01",
            exited_at=T0,
            return_by=T0 + timedelta(hours=3),
        ),
        uow,
    )
    # screening's decisions: a household into home quarantine, then the person confirmed
    for status, later in (("home_quarantine", 0), ("confirmed", 1)):
        await dispatch.person_status_changed(
            PersonStatusChanged(
                person_id="R-1001", status=status, holds_at_gate=True, holds_at_home=True,
                household_id="H-0101", decided_at=T0 + timedelta(hours=later),
                role="lab", reason="positive",
            ),
            uow,
        )  # fmt: skip
    return uow.events(NotificationRequested)


async def from_checkpoint() -> list[dict]:
    uow, state = CheckpointUoW(), GateState()
    for entity in PLACES:
        await checkpoint.reference_data_changed(entity, uow, state)
    await checkpoint.policy_set(
        CommunityPolicy(community_id="CM-1", heartbeat_interval_s=10), uow, state
    )
    health = GateHealth(started_at=T0 - timedelta(minutes=5))
    await checkpoint.check_gates(health, uow, state)
    health.seen("g1", T0, "1.0")
    await checkpoint.gate_came_back("g1", health, uow, state)
    await checkpoint.gate_sends_bad_input("g1", "heartbeat", "invalid", 10, uow, state)
    return uow.events(NotificationRequested)


async def from_screening_questionnaires() -> list[dict]:
    """A resident's questionnaire asking for an urgent and a normal call-back."""
    uow = ScreeningUoW()
    doctor = Staff(staff_id="D-01", community_id="CM-1", name="Dr Chen", roles=["community_doctor"])
    for entity in (*PLACES, doctor):
        await screening_refdata.reference_data_changed(entity, uow)
    for sid, instrument, answers in (("q-1", "phq9", [0] * 8 + [1]), ("q-2", "gad7", [2] * 7)):
        body = {
            "submission_id": sid,
            "person_id": "R-1001",
            "instrument": instrument,
            "answers": answers,
            "submitted_at": T0.isoformat(),
        }
        req = screening_questionnaires.read_request(json.dumps(body).encode(), "R-1001", T0)
        await screening_questionnaires.submit(req, uow, T0)
    return uow.events(NotificationRequested)


async def from_screening_campaigns() -> list[dict]:
    """A test campaign's reminder to a resident, then the door call to the grid worker."""
    uow = ScreeningUoW()
    for entity in PLACES:
        await screening_refdata.reference_data_changed(entity, uow)
    await screening_campaigns.start_campaign(
        uow,
        place_kind="compound",
        place_id="C-01",
        starts_at=T0,
        ends_at=T0 + timedelta(hours=10),
        site="the square by the north gate",
        by="Secretary Wang",
        now=T0,
        place_name="Donghu Garden",
    )
    for later in (1, 4):
        await screening_campaigns.remind(uow, "C-01-20260312-0731", now=T0 + timedelta(hours=later))
    return uow.events(NotificationRequested)


async def from_screening_checkins() -> list[dict]:
    """A resident reminded to check in three mornings running, then their grid worker told
    of the two days missed."""
    uow = ScreeningUoW()
    for entity in PLACES:
        await screening_refdata.reference_data_changed(entity, uow)
    for day in range(3):
        await screening_checkins.remind(lambda: uow, T0 + timedelta(days=day, hours=3))
    return uow.events(NotificationRequested)


async def from_screening_missed() -> list[dict]:
    """A close contact under follow-up not heard from for a day: their grid worker told."""
    uow = ScreeningUoW()
    for entity in PLACES:
        await screening_refdata.reference_data_changed(entity, uow)
    named = PersonStatusChanged(
        person_id="R-1001", status="close_contact", holds_at_gate=True, decided_at=T0,
        role="community_doctor", reason="CDC list",
    )  # fmt: skip
    await screening_followup.status_changed(named, uow)
    await screening_missed.escalate(lambda: uow, T0 + timedelta(days=2, hours=3))
    return uow.events(NotificationRequested)


@pytest.mark.parametrize(
    "producer",
    [
        from_dispatch,
        from_checkpoint,
        from_screening_questionnaires,
        from_screening_campaigns,
        from_screening_checkins,
        from_screening_missed,
    ],
)
async def test_every_request_renders_in_every_language(producer):
    templates = Templates()
    requests = [NotificationRequested.model_validate(r) for r in await producer()]
    assert requests
    for req in requests:
        assert templates.required_params(req.template) <= set(req.params), req.template
        for language in ("zh", "en"):
            text = templates.render(
                req.template, language, req.params, zone="Asia/Shanghai", alert_id="AB12CD34"
            )
            assert text.title and text.body and text.sms and not text.sms_cut
            assert "None" not in text.body, (req.template, language, text.body)
