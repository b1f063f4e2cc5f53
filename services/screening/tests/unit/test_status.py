"""The health status machine: its table (invariants over every step), and the handlers that
take a step (change_status inside a caller's unit of work, set_status for the office)."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridcare.contracts.refdata import (
    Building,
    Community,
    Compound,
    Grid,
    Household,
    Resident,
    Staff,
)
from gridcare.contracts.screening import PersonStatusChanged
from gridcare.screening.domain import status as machine
from gridcare.screening.domain.status import (
    ALLOWED,
    HOLDS_AT_GATE,
    TRANSITIONS,
    HealthStatus,
    Role,
    TransitionRefused,
)
from gridcare.screening.handlers import refdata as refdata_handlers
from gridcare.screening.handlers import status as handlers
from gridcare.screening.unit_of_work import FakeUnitOfWork
from gridcare.shared.errors import ApiError

S, R = HealthStatus, Role
T0 = datetime(2026, 3, 11, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
BACK_TOWARDS = {S.NORMAL, S.RECOVERED, S.RELEASED}


def reachable(start: HealthStatus) -> dict[HealthStatus, list[HealthStatus]]:
    """Every status reachable from ``start`` by the table, with the shortest way there."""
    paths = {start: [start]}
    todo = deque([start])
    while todo:
        here = todo.popleft()
        for t in machine.transitions_from(here):
            if t.to not in paths:
                paths[t.to] = [*paths[here], t.to]
                todo.append(t.to)
    return paths


# --- the table ----------------------------------------------------------------------------
def test_every_status_is_reachable_from_normal():
    assert set(reachable(S.NORMAL)) == set(HealthStatus)


@pytest.mark.parametrize("held", sorted(HOLDS_AT_GATE))
def test_every_held_status_has_a_way_out_back_to_normal(held):
    ways = reachable(held)
    assert S.NORMAL in ways and S.RELEASED in ways, f"{held} is a dead end"
    assert all(not machine.holds_at_gate(s) for s in (S.NORMAL, S.RELEASED))


def test_every_status_has_a_step_out():
    assert all(machine.transitions_from(s) for s in HealthStatus)


def test_every_step_towards_normal_recovered_or_released_is_a_step_back():
    for t in TRANSITIONS:
        if t.to in BACK_TOWARDS:
            assert t.back, t
        if machine.holds_at_gate(t.from_) and not machine.holds_at_gate(t.to):
            assert t.back, f"{t.from_} -> {t.to} frees a held person: it must be a step back"


def test_no_step_to_itself_no_step_twice_every_step_someone_may_take():
    assert all(t.from_ != t.to for t in TRANSITIONS)
    assert len(ALLOWED) == len(TRANSITIONS)
    assert all(t.roles and t.means for t in TRANSITIONS)
    assert {r for t in TRANSITIONS for r in t.roles} == set(Role)


def test_released_only_from_quarantine_or_recovered():
    assert {t.from_ for t in TRANSITIONS if t.to == S.RELEASED} == {
        S.HOME_QUARANTINE,
        S.CENTRAL_QUARANTINE,
        S.RECOVERED,
    }


def test_only_a_lab_confirms_and_it_may_confirm_anyone_not_yet_a_case():
    into = [t for t in TRANSITIONS if t.to == S.CONFIRMED]
    assert all(t.roles == {R.LAB} for t in into)
    not_a_case = set(HealthStatus) - {S.CONFIRMED, S.IN_HOSPITAL}
    assert {t.from_ for t in into} == not_a_case


def test_only_a_doctor_excludes_a_fever_or_a_suspicion():
    for t in TRANSITIONS:
        if t.from_ in (S.FEVER_UNEXCLUDED, S.SUSPECTED) and not machine.holds_at_gate(t.to):
            assert t.roles == {R.COMMUNITY_DOCTOR}, t


def test_a_confirmed_case_goes_to_hospital_and_comes_back_recovered_then_released():
    assert machine.check(S.CONFIRMED, S.IN_HOSPITAL, R.COMMUNITY_DOCTOR, "")
    assert machine.check(S.IN_HOSPITAL, S.RECOVERED, R.COMMUNITY_DOCTOR, "discharged")
    assert machine.check(S.RECOVERED, S.RELEASED, R.SECRETARY, "14 days monitored")


def test_a_grid_worker_puts_a_close_contact_into_home_quarantine_but_may_not_release():
    assert machine.check(S.CLOSE_CONTACT, S.HOME_QUARANTINE, R.GRID_WORKER, "")
    with pytest.raises(TransitionRefused) as err:
        machine.check(S.HOME_QUARANTINE, S.RELEASED, R.GRID_WORKER, "14 days")
    assert err.value.code == "role_not_allowed"
    assert "home_quarantine -> released" in err.value.detail
    assert "community_doctor, screening, secretary" in err.value.detail
    assert "not by grid_worker" in err.value.detail


def test_a_forbidden_step_names_from_to_role_and_what_is_allowed():
    with pytest.raises(TransitionRefused) as err:
        machine.check(S.HOME_QUARANTINE, S.NORMAL, R.COMMUNITY_DOCTOR, "fine")
    e = err.value
    assert (e.code, e.field, e.from_, e.to, e.role) == (
        "transition_not_allowed",
        "status",
        S.HOME_QUARANTINE,
        S.NORMAL,
        R.COMMUNITY_DOCTOR,
    )
    assert "home_quarantine -> normal is not allowed" in e.detail
    assert "released (by community_doctor, screening, secretary)" in e.detail
    assert isinstance(e, ApiError) and e.reply()["error"]["code"] == "transition_not_allowed"


statuses, roles = st.sampled_from(list(HealthStatus)), st.sampled_from(list(Role))
reasons = st.sampled_from(["", "   ", "lab PCR negative"])


@given(statuses, statuses, roles, reasons)
def test_check_allows_exactly_the_table(was, to, role, reason):
    step = ALLOWED.get((was, to))
    try:
        got = machine.check(was, to, role, reason)
    except TransitionRefused as e:
        assert (e.from_, e.to, e.role) == (was, to, role)
        assert f"{was} -> {to}" in e.detail
        if step is None:
            assert e.code == "transition_not_allowed"
        elif role not in step.roles:
            assert e.code == "role_not_allowed"
        else:
            assert e.code == "reason_required" and step.back and not reason.strip()
    else:
        assert got is step and role in step.roles and (not step.back or reason.strip())


@given(st.lists(st.integers(min_value=0, max_value=100), max_size=40))
def test_a_walk_by_the_table_never_gets_stuck_and_always_can_go_home(choices):
    here = S.NORMAL
    for n in choices:
        ways = machine.transitions_from(here)
        assert ways
        here = ways[n % len(ways)].to
        assert S.NORMAL in reachable(here)


def test_the_machine_as_data_is_the_table():
    data = machine.as_data()
    assert len(data) == len(TRANSITIONS)
    assert {(d["from"], d["to"]) for d in data} == {(f.value, t.value) for f, t in ALLOWED}
    assert all(d["reason_required"] == d["back"] for d in data)


# --- the handlers -------------------------------------------------------------------------
COMMUNITY = (
    Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
    Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
    Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
    Household(household_id="H-0101", building_id="B-01", unit="1-101"),
    Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
    Grid(
        grid_id="G-01",
        community_id="CM-1",
        name="Grid 1",
        worker_id="W-01",
        worker_name="Li Mei",
        worker_phone="+86 138 0000 0001",
    ),
    Staff(staff_id="D-01", community_id="CM-1", name="Chen Jing", roles=["community_doctor"]),
    Staff(staff_id="S-01", community_id="CM-1", name="Wang Hua", roles=["secretary"]),
    Staff(
        staff_id="X-01",
        community_id="CM-1",
        name="Two hats",
        roles=["secretary", "community_doctor"],
    ),
    Staff(staff_id="DS-01", community_id="CM-1", name="Zhou Peng", roles=["duty_staff"]),
    Staff(staff_id="D-99", community_id="CM-9", name="Elsewhere", roles=["community_doctor"]),
)


@pytest.fixture
async def uow() -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    for entity in COMMUNITY:
        await refdata_handlers.reference_data_changed(entity, uow)
    return uow


async def step(uow, to, by="D-01", role=R.COMMUNITY_DOCTOR, reason="seen", at=T0, **kw):
    async with uow:
        d = await handlers.change_status(
            uow, "R-1001", to, by=by, role=role, reason=reason, now=at, **kw
        )
        await uow.commit()
    return d


async def test_change_status_records_the_step_and_announces_it(uow):
    await step(uow, S.CLOSE_CONTACT, by="S-01", role=R.SECRETARY, reason="CDC list 12")
    d = await step(
        uow,
        S.HOME_QUARANTINE,
        by="W-01",
        role=R.GRID_WORKER,
        reason="",
        at=T0 + timedelta(hours=1),
        until=T0 + timedelta(days=14),
        source="household-quarantine-H-0101",
    )
    assert (d.previous, d.status, d.role, d.source) == (
        S.CLOSE_CONTACT,
        S.HOME_QUARANTINE,
        "grid_worker",
        "household-quarantine-H-0101",
    )
    first, second = uow.events(PersonStatusChanged)
    assert (first["previous_status"], first["status"], first["role"]) == (
        "normal",
        "close_contact",
        "secretary",
    )
    assert second["previous_status"] == "close_contact" and second["holds_at_gate"] is True
    assert second["household_id"] == "H-0101" and second["reason"] == ""
    assert second["source"] == "household-quarantine-H-0101"
    assert [(h.previous, h.status) for h in uow.statuses.log] == [
        (S.NORMAL, S.CLOSE_CONTACT),
        (S.CLOSE_CONTACT, S.HOME_QUARANTINE),
    ]


async def test_change_status_does_not_commit_the_callers_block_does(uow):
    async with uow:
        await handlers.change_status(
            uow, "R-1001", S.FEVER_UNEXCLUDED, by="screening", role=R.SCREENING, reason="", now=T0
        )
        # the caller decides not to commit: nothing stays
    assert uow.statuses.current == {} and uow.statuses.log == [] and uow.outbox == []


async def test_the_status_in_force_again_changes_nothing(uow):
    first = await step(uow, S.SYMPTOMATIC_FOLLOW_UP, by="screening", role=R.SCREENING)
    again = await step(
        uow, S.SYMPTOMATIC_FOLLOW_UP, by="W-01", role=R.GRID_WORKER, at=T0 + timedelta(hours=1)
    )
    assert again == first and len(uow.statuses.log) == 1
    assert len(uow.events(PersonStatusChanged)) == 1


async def test_normal_for_someone_never_recorded_changes_nothing(uow):
    d = await step(uow, S.NORMAL, by="screening", role=R.SCREENING, reason="")
    assert d.status == S.NORMAL and uow.statuses.log == [] and uow.outbox == []


@pytest.mark.parametrize(
    ("path", "to", "role", "reason", "code"),
    [
        ([], S.RELEASED, R.COMMUNITY_DOCTOR, "done", "transition_not_allowed"),
        ([], S.CONFIRMED, R.COMMUNITY_DOCTOR, "looks like it", "role_not_allowed"),
        ([(S.FEVER_UNEXCLUDED, R.SCREENING)], S.NORMAL, R.GRID_WORKER, "fine", "role_not_allowed"),
        ([(S.FEVER_UNEXCLUDED, R.SCREENING)], S.NORMAL, R.COMMUNITY_DOCTOR, " ", "reason_required"),
        ([(S.CONFIRMED, R.LAB)], S.HOME_QUARANTINE, R.SECRETARY, "x", "transition_not_allowed"),
    ],
)
async def test_a_refused_step_changes_nothing(uow, path, to, role, reason, code):
    for status, by_role in path:
        await step(uow, status, by="x", role=by_role)
    before = (dict(uow.statuses.current), list(uow.statuses.log), len(uow.outbox))
    with pytest.raises(TransitionRefused) as err:
        await step(uow, to, role=role, reason=reason, at=T0 + timedelta(hours=1))
    assert err.value.code == code and err.value.to == to and err.value.role == role
    assert (dict(uow.statuses.current), list(uow.statuses.log), len(uow.outbox)) == before


async def test_a_late_decision_is_refused(uow):
    await step(uow, S.FEVER_UNEXCLUDED, by="screening", role=R.SCREENING, at=T0)
    with pytest.raises(ApiError) as err:
        await step(uow, S.SUSPECTED, at=T0 - timedelta(minutes=1))
    assert err.value.code == "out_of_order" and len(uow.statuses.log) == 1


async def test_an_unknown_person_is_refused(uow):
    with pytest.raises(TransitionRefused) as err:
        async with uow:
            await handlers.change_status(
                uow, "R-9999", S.SUSPECTED, by="D-01", role=R.COMMUNITY_DOCTOR, reason="", now=T0
            )
    assert err.value.code == "unknown_person" and err.value.field == "person_id"


# --- the office's command: by a known member of staff, in one of their roles --------------
async def office(uow, to, by, role=None, reason="seen at home", at=T0):
    return await handlers.set_status(uow, "R-1001", to, by=by, role=role, reason=reason, now=at)


async def test_a_grid_worker_from_the_grids_sheet_acts_as_grid_worker(uow):
    d = await office(uow, S.HOME_QUARANTINE, "W-01")  # the README's call: no role given
    assert (d.role, d.set_by, d.source) == ("grid_worker", "W-01", "office")
    assert uow.events(PersonStatusChanged)[0]["role"] == "grid_worker"


async def test_the_role_defaults_to_a_member_of_staffs_one_role(uow):
    await office(uow, S.FEVER_UNEXCLUDED, "W-01")
    d = await office(uow, S.NORMAL, "D-01", reason="fever excluded: 36.8 twice")
    assert d.role == "community_doctor" and d.previous == S.FEVER_UNEXCLUDED


async def test_staff_with_several_roles_must_say_which(uow):
    with pytest.raises(ApiError) as err:
        await office(uow, S.CLOSE_CONTACT, "X-01")
    assert err.value.code == "role_required" and "community_doctor, secretary" in err.value.detail
    d = await office(uow, S.CLOSE_CONTACT, "X-01", role=R.SECRETARY)
    assert d.role == "secretary"


@pytest.mark.parametrize(
    ("by", "role", "code"),
    [
        ("NOBODY", None, "unknown_staff"),
        ("D-99", None, "unknown_staff"),  # staff of another community
        ("DS-01", None, "role_required"),  # duty staff decide nothing about health
        ("S-01", R.COMMUNITY_DOCTOR, "role_not_allowed"),  # not a role they hold
        ("S-01", R.SCREENING, "role_not_allowed"),  # the service's own rules, never the office
    ],
)
async def test_who_may_not_decide_from_the_office(uow, by, role, code):
    with pytest.raises(ApiError) as err:
        await office(uow, S.CLOSE_CONTACT, by, role)
    assert err.value.code == code and uow.outbox == [] and uow.statuses.log == []


async def test_a_lab_result_names_the_lab(uow):
    d = await office(uow, S.CONFIRMED, "Wuhan CDC lab", R.LAB, reason="PCR positive, sample 88")
    assert (d.status, d.role, d.set_by) == (S.CONFIRMED, "lab", "Wuhan CDC lab")


async def test_the_machine_applies_to_the_office_too(uow):
    with pytest.raises(TransitionRefused) as err:
        await office(uow, S.CONFIRMED, "D-01")
    assert err.value.code == "role_not_allowed" and "may be made by lab" in err.value.detail


async def test_the_history_reads_from_to_by_role_reason_on_the_local_clock(uow):
    await office(uow, S.CLOSE_CONTACT, "S-01", reason="CDC list 12")
    await office(uow, S.HOME_QUARANTINE, "W-01", reason="", at=T0 + timedelta(hours=2))
    shown = await handlers.status_of("R-1001", uow)
    assert shown["status"] == "home_quarantine" and shown["holds_at_gate"] is True
    assert [(h["from"], h["to"], h["by"], h["role"]) for h in shown["history"]] == [
        ("normal", "close_contact", "S-01", "secretary"),
        ("close_contact", "home_quarantine", "W-01", "grid_worker"),
    ]
    assert shown["history"][0]["at"] == "2026-03-11T09:00:00+08:00"


def test_the_transitions_query_is_the_machine():
    got = handlers.transitions()
    assert got["roles"] == [r.value for r in Role]
    assert got["transitions"] == machine.as_data()
    assert {s["status"] for s in got["statuses"]} == {s.value for s in HealthStatus}


def test_the_guide_shows_the_table_the_code_has():
    """docs/screening.md's table is the machine's (regenerate it with
    ``python -m gridcare.screening.domain.status``)."""
    doc = (Path(__file__).parents[4] / "docs" / "screening.md").read_text(encoding="utf-8")
    start = doc.index("<!-- status-table")
    begin, end = doc.index("-->", start) + len("-->"), doc.index("<!-- /status-table -->")
    assert doc[begin:end].strip() == machine.as_markdown()
