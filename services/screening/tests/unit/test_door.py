"""Whether a status confines a person at home (their household's door alerts): screening's
rule, carried on every ``PersonStatusChanged`` as ``holds_at_home`` beside ``holds_at_gate``.
A person at a central quarantine site or in hospital is held at the gate but not at home."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridcare.contracts.refdata import (
    Building,
    Community,
    Compound,
    Household,
    Resident,
    Staff,
)
from gridcare.contracts.screening import PersonStatusChanged
from gridcare.screening.domain import status as machine
from gridcare.screening.domain.status import HOLDS_AT_GATE, HOLDS_AT_HOME, HealthStatus, Role
from gridcare.screening.handlers import refdata as refdata_handlers
from gridcare.screening.handlers import status as handlers
from gridcare.screening.unit_of_work import FakeUnitOfWork

S, R = HealthStatus, Role
T0 = datetime(2026, 3, 11, 1, 0, tzinfo=UTC)

COMMUNITY = (
    Community(community_id="CM-1", name="Sunrise", time_zone="Asia/Shanghai"),
    Compound(compound_id="C-01", community_id="CM-1", name="North"),
    Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
    Household(household_id="H-0101", building_id="B-01", unit="1-101"),
    Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
    Staff(staff_id="D-01", community_id="CM-1", name="Chen Jing", roles=["community_doctor"]),
)


def test_home_is_every_held_status_but_a_site_and_a_hospital():
    assert HOLDS_AT_HOME == {
        S.FEVER_UNEXCLUDED,
        S.SUSPECTED,
        S.CONFIRMED,  # awaiting transfer, at home
        S.CLOSE_CONTACT,
        S.HOME_QUARANTINE,
    }
    assert HOLDS_AT_HOME < HOLDS_AT_GATE  # nobody is confined at home and free at the gate
    assert HOLDS_AT_GATE - HOLDS_AT_HOME == {S.CENTRAL_QUARANTINE, S.IN_HOSPITAL}


def test_the_statuses_query_says_who_is_confined_at_home():
    shown = {s["status"]: (s["holds_at_gate"], s["holds_at_home"]) for s in handlers.statuses()}
    assert shown["central_quarantine"] == (True, False)
    assert shown["home_quarantine"] == (True, True)
    assert shown["normal"] == (False, False)
    assert all(shown[s.value][1] == machine.holds_at_home(s) for s in HealthStatus)


@pytest.fixture
async def uow() -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    for entity in COMMUNITY:
        await refdata_handlers.reference_data_changed(entity, uow)
    return uow


async def test_every_status_change_says_whether_it_confines_at_home(uow):
    """A close contact at home, home quarantine, taken to a site, to hospital, back home
    after discharge, released: each event carries both rules."""
    walk = [
        S.CLOSE_CONTACT,
        S.HOME_QUARANTINE,
        S.CENTRAL_QUARANTINE,
        S.IN_HOSPITAL,
        S.HOME_QUARANTINE,
        S.RELEASED,
    ]
    for i, to in enumerate(walk):
        async with uow:
            await handlers.change_status(
                uow,
                "R-1001",
                to,
                by="D-01",
                role=R.COMMUNITY_DOCTOR,
                reason="seen",
                now=T0 + timedelta(hours=i),
            )
            await uow.commit()
    events = uow.events(PersonStatusChanged)
    assert [(e["status"], e["holds_at_gate"], e["holds_at_home"]) for e in events] == [
        ("close_contact", True, True),
        ("home_quarantine", True, True),
        ("central_quarantine", True, False),
        ("in_hospital", True, False),
        ("home_quarantine", True, True),
        ("released", False, False),
    ]
    # what the checkpoint reads back: the field is on the wire
    assert PersonStatusChanged.model_validate(events[2]).holds_at_home is False
