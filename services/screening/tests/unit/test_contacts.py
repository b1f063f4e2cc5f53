"""Close contacts of a confirmed case and compound levels, on the in-memory unit of work and
the register's in-memory twin: no broker, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridcare.contracts.notify import NotificationRequested
from gridcare.contracts.refdata import (
    Building,
    Community,
    CommunityPolicy,
    Compound,
    ControlLevel,
    Grid,
    Household,
    Resident,
)
from gridcare.contracts.screening import CompoundLevelChanged, PersonStatusChanged
from gridcare.screening.adapters.register import MemoryRegister, RegisterUnavailable
from gridcare.screening.domain import compounds as compound_rules
from gridcare.screening.domain import contacts as contact_rules
from gridcare.screening.domain.contacts import ProposalStatus
from gridcare.screening.domain.status import HealthStatus, Role
from gridcare.screening.handlers import compounds, contacts
from gridcare.screening.handlers import refdata as refdata_handlers
from gridcare.screening.handlers.status import change_status
from gridcare.screening.unit_of_work import FakeUnitOfWork
from gridcare.shared.errors import ApiError
from gridcare.shared.uow import AlreadyHandled, Inbound

T0 = datetime(2026, 3, 11, 23, 31, 5, tzinfo=UTC)  # 07:31:05 in Shanghai, the 12th


async def community(uow: FakeUnitOfWork, *policy: CommunityPolicy) -> FakeUnitOfWork:
    """Two compounds: C-01 (B-01 in grid G-01: H-0101 of three, H-0102 of one; B-02 in
    grid G-02: H-0201) and C-02 (B-03 in grid G-03: H-0301)."""
    entities = [
        Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
        Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
        Compound(
            compound_id="C-02",
            community_id="CM-1",
            name="Lakeside",
            control_level=ControlLevel.CONTROLLED,
        ),
    ]
    for grid, worker in (("G-01", "W-01"), ("G-02", "W-02"), ("G-03", "W-03")):
        entities.append(
            Grid(
                grid_id=grid,
                community_id="CM-1",
                name=grid,
                worker_id=worker,
                worker_name=worker,
                worker_phone="+86 138 0000 0001",
            )
        )
    entities += [
        Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
        Building(building_id="B-02", compound_id="C-01", grid_id="G-02", name="2"),
        Building(building_id="B-03", compound_id="C-02", grid_id="G-03", name="3"),
        Household(household_id="H-0101", building_id="B-01", unit="1-101"),
        Household(household_id="H-0102", building_id="B-01", unit="1-102"),
        Household(household_id="H-0201", building_id="B-02", unit="2-101"),
        Household(household_id="H-0301", building_id="B-03", unit="3-101"),
    ]
    for rid, hh in (
        ("R-1001", "H-0101"),
        ("R-1002", "H-0101"),
        ("R-1003", "H-0101"),
        ("R-1101", "H-0102"),
        ("R-2001", "H-0201"),
        ("R-3001", "H-0301"),
    ):
        entities.append(Resident(resident_id=rid, household_id=hh, name=rid))
    for entity in (*entities, *policy):
        await refdata_handlers.reference_data_changed(entity, uow)
    return uow


def confirmed(person_id: str = "R-1001", at: datetime = T0, household: str = "H-0101"):
    return PersonStatusChanged(
        person_id=person_id,
        status="confirmed",
        holds_at_gate=True,
        household_id=household,
        decided_at=at,
    )


def register_with_neighbours() -> MemoryRegister:
    """R-1001 (the case) at g1 two days before; R-2001 there 10 min later, R-3001 20 min
    later (outside 15), R-1101 at g2 at the same time (another gate), a visitor V-9 at g1;
    and R-1101 at g1 with the case six days before (outside the 4-day lookback)."""
    reg = MemoryRegister()
    at = T0 - timedelta(days=2)
    reg.add("g1", "R-1001", at)
    reg.add("g1", "R-2001", at + timedelta(minutes=10))
    reg.add("g1", "R-3001", at + timedelta(minutes=20))
    reg.add("g2", "R-1101", at)
    reg.add("g1", "V-9", at - timedelta(minutes=3))
    reg.add("g1", "R-1001", T0 - timedelta(days=6))
    reg.add("g1", "R-1101", T0 - timedelta(days=6, minutes=-1))
    return reg


# --- the domain -----------------------------------------------------------------------------
def test_candidates_are_the_household_then_the_same_gate_within_the_window():
    P = contact_rules.Passage
    own = P("g1", "s1", "R-1", T0)
    near = {
        own: [
            own,
            P("g1", "s2", "R-2", T0 + timedelta(minutes=15)),  # the edge of the window: in
            P("g1", "s3", "R-3", T0 + timedelta(minutes=15, seconds=1)),  # out
            P("g2", "s4", "R-4", T0),  # another gate
            P("g1", "s5", "R-5", T0 - timedelta(minutes=1)),
            P("g1", "s6", None, T0),  # nobody known (a bad read)
        ]
    }
    found = contact_rules.candidates("R-1", ["R-1", "R-5", "R-6"], near, 15)
    assert [(c.person_id, c.kind) for c in found] == [
        ("R-5", "household"),  # the household first, once
        ("R-6", "household"),
        ("R-2", "gate"),
    ]
    assert found[2].reason("Asia/Shanghai") == "gate g1 at 2026-03-12 07:31"


def test_a_decision_is_made_once():
    p = contact_rules.Proposal("R-1", "R-2", "H", "G", "household", "household", None, None, T0)
    confirmed_p, changed = contact_rules.decide(
        p, ProposalStatus.CONFIRMED, by="W-01", reason="", now=T0
    )
    assert changed and confirmed_p.status is ProposalStatus.CONFIRMED
    again, changed = contact_rules.decide(
        confirmed_p, ProposalStatus.CONFIRMED, by="W-01", reason="", now=T0
    )
    assert not changed and again == confirmed_p
    with pytest.raises(ApiError) as err:
        contact_rules.decide(confirmed_p, ProposalStatus.REJECTED, by="W-01", reason="no", now=T0)
    assert err.value.code == "already_decided"
    with pytest.raises(ApiError) as err:
        contact_rules.decide(p, ProposalStatus.REJECTED, by="W-01", reason=" ", now=T0)
    assert err.value.code == "reason_required"


def test_compound_rules():
    s = compound_rules.initial("C-01", None, T0)
    assert s.level is ControlLevel.PRECAUTION and s.days_without_case(T0) is None
    s, changed = compound_rules.confirmed_case(s, "R-1", T0, ControlLevel.SEALED)
    assert changed and s.level is ControlLevel.SEALED and s.last_case_at == T0
    s2, changed = compound_rules.confirmed_case(s, "R-0", T0 - timedelta(days=1), None)
    assert not changed and s2.last_case_at == T0  # a late, older case moves nothing back
    day13 = T0 + timedelta(days=13, hours=23)
    assert compound_rules.check_epidemic_free(s, day13, 14, ControlLevel.PRECAUTION)[1:] == (
        False,
        False,
    )
    assert s.days_without_case(day13) == 13
    freed, free, relaxed = compound_rules.check_epidemic_free(
        s, T0 + timedelta(days=14), 14, ControlLevel.PRECAUTION
    )
    assert free and relaxed and freed.level is ControlLevel.PRECAUTION
    assert freed.epidemic_free_since == T0 + timedelta(days=14)
    # the same case announced again changes nothing (not a new case)
    assert compound_rules.confirmed_case(freed, "R-1", T0, ControlLevel.SEALED) == (freed, False)
    # a compound held less strictly than the level it would be relaxed to keeps its level
    mild = compound_rules.initial("C-02", ControlLevel.PRECAUTION, T0)
    mild, _ = compound_rules.confirmed_case(mild, "R-1", T0, None)
    _, free, relaxed = compound_rules.check_epidemic_free(
        mild, T0 + timedelta(days=15), 14, ControlLevel.CONTROLLED
    )
    assert free and not relaxed


# --- proposals ------------------------------------------------------------------------------
async def test_a_confirmed_case_proposes_household_and_gate_neighbours():
    uow = await community(FakeUnitOfWork())
    reg = register_with_neighbours()
    new = await contacts.person_status_changed(confirmed(), uow, reg, T0)
    assert sorted((p.candidate_id, p.kind) for p in new) == [
        ("R-1002", "household"),
        ("R-1003", "household"),
        ("R-2001", "gate"),
    ]  # not R-3001 (20 min), R-1101 (another gate; 6 days ago), V-9 (not a resident)
    listed = await contacts.proposals(uow, case_person_id="R-1001")
    gate = next(p for p in listed if p["candidate_id"] == "R-2001")
    assert gate["reason"] == "gate g1 at 2026-03-10 07:31" and gate["grid_id"] == "G-02"
    assert gate["status"] == "proposed" and gate["proposed_at"].endswith("+08:00")
    # each grid worker told how many to review, never the candidates applied
    asks = {e["recipient"]["place_id"]: e for e in uow.events(NotificationRequested)}
    assert set(asks) == {"G-01", "G-02"}
    assert asks["G-01"]["template"] == "task.close_contacts"
    assert asks["G-01"]["params"]["count"] == 2 and asks["G-02"]["params"]["count"] == 1
    assert asks["G-01"]["recipient"]["role"] == "grid_worker"
    assert "gridcare contacts proposed" in asks["G-01"]["params"]["command"]
    assert uow.events(PersonStatusChanged) == []  # nobody's status changed


async def test_the_window_and_lookback_are_policy():
    policy = CommunityPolicy(
        community_id="CM-1", contact_window_minutes=30, contact_lookback_days=7
    )
    uow = await community(FakeUnitOfWork(), policy)
    new = await contacts.person_status_changed(confirmed(), uow, register_with_neighbours(), T0)
    assert {p.candidate_id for p in new} == {"R-1002", "R-1003", "R-2001", "R-3001", "R-1101"}


async def test_a_redelivered_confirmation_proposes_nobody_twice():
    uow = await community(FakeUnitOfWork())
    reg = register_with_neighbours()
    msg = Inbound("screening-contacts", "e-1", "e-1")
    await contacts.person_status_changed(confirmed(), uow.handling(msg), reg, T0)
    with pytest.raises(AlreadyHandled):
        await contacts.person_status_changed(confirmed(), uow.handling(msg), reg, T0)
    # the same case confirmed again later (another event): only new candidates
    uow.handling(Inbound("screening-contacts", "e-2", "e-2"))
    reg.add("g1", "R-1001", T0 + timedelta(hours=1))
    reg.add("g1", "R-3001", T0 + timedelta(hours=1, minutes=2))
    new = await contacts.person_status_changed(
        confirmed(at=T0 + timedelta(hours=2)), uow, reg, T0 + timedelta(hours=2)
    )
    assert [p.candidate_id for p in new] == ["R-3001"]
    assert len(uow.contacts.rows) == 4
    assert len(uow.events(NotificationRequested)) == 3  # G-01, G-02, then G-03 for R-3001


async def test_a_register_that_does_not_answer_is_retried_not_empty():
    uow = await community(FakeUnitOfWork())
    reg = register_with_neighbours()
    reg.down = True
    msg = Inbound("screening-contacts", "e-1", "e-1")
    with pytest.raises(RegisterUnavailable):
        await contacts.person_status_changed(confirmed(), uow.handling(msg), reg, T0)
    assert uow.contacts.rows == {} and uow.outbox == [] and uow.inbox == set()
    reg.down = False  # the retry
    new = await contacts.person_status_changed(confirmed(), uow.handling(msg), reg, T0)
    assert len(new) == 3


async def test_other_statuses_and_cases_are_not_proposed():
    uow = await community(FakeUnitOfWork())
    not_a_case = confirmed().model_copy(update={"status": "suspected"})
    assert await contacts.person_status_changed(not_a_case, uow, MemoryRegister(), T0) == []
    async with uow:  # R-1002 is a case already
        await change_status(
            uow,
            "R-1002",
            HealthStatus.CONFIRMED,
            by="lab-1",
            role=Role.LAB,
            reason="PCR+",
            now=T0 - timedelta(hours=1),
        )
        await uow.commit()
    new = await contacts.person_status_changed(confirmed(), uow, MemoryRegister(), T0)
    assert [p.candidate_id for p in new] == ["R-1003"]


async def test_a_case_whose_household_is_not_known_yet_is_retried():
    uow = await community(FakeUnitOfWork())
    case = confirmed("R-9999", household="H-9999")
    with pytest.raises(LookupError):
        await contacts.person_status_changed(case, uow, MemoryRegister(), T0)
    with pytest.raises(LookupError):
        await compounds.person_status_changed(case, uow, T0)
    assert uow.outbox == [] and uow.inbox == set()


# --- decisions ------------------------------------------------------------------------------
async def proposed() -> FakeUnitOfWork:
    uow = await community(FakeUnitOfWork())
    await contacts.person_status_changed(confirmed(), uow, register_with_neighbours(), T0)
    return uow


async def test_confirming_makes_a_close_contact_held_at_the_gate():
    uow = await proposed()
    t = T0 + timedelta(hours=1)
    row = await contacts.decide(
        "R-1001", "R-2001", ProposalStatus.CONFIRMED, by="W-02", reason="", now=t, uow=uow
    )
    assert row["status"] == "confirmed" and row["decided_by"] == "W-02"
    [changed] = uow.events(PersonStatusChanged)
    assert changed["person_id"] == "R-2001" and changed["status"] == "close_contact"
    assert changed["holds_at_gate"] is True and changed["role"] == "grid_worker"
    assert (await uow.statuses.get("R-2001")).status is HealthStatus.CLOSE_CONTACT
    # the same decision again: nothing more
    await contacts.decide(
        "R-1001", "R-2001", ProposalStatus.CONFIRMED, by="W-02", reason="", now=t, uow=uow
    )
    assert len(uow.events(PersonStatusChanged)) == 1
    with pytest.raises(ApiError) as err:
        await contacts.decide(
            "R-1001",
            "R-2001",
            ProposalStatus.REJECTED,
            by="W-02",
            reason="wrong",
            now=t,
            uow=uow,
        )
    assert err.value.code == "already_decided"
    assert await contacts.proposals(uow, grid_id="G-02") == []  # nothing left to decide


async def test_rejecting_keeps_the_reason_and_changes_no_status():
    uow = await proposed()
    row = await contacts.decide(
        "R-1001",
        "R-1002",
        ProposalStatus.REJECTED,
        by="W-01",
        reason="abroad since January",
        now=T0,
        uow=uow,
    )
    assert row["status"] == "rejected" and row["decision_reason"] == "abroad since January"
    assert uow.events(PersonStatusChanged) == []
    [left] = await contacts.proposals(uow, grid_id="G-01")
    assert left["candidate_id"] == "R-1003"
    [rejected] = await contacts.proposals(uow, grid_id="G-01", status="rejected")
    assert rejected["decided_by"] == "W-01"


@pytest.mark.parametrize(
    ("case", "candidate", "by", "code"),
    [
        ("R-1001", "R-3001", "W-01", "unknown_proposal"),
        ("R-1001", "R-1002", "nobody", "unknown_staff"),
    ],
)
async def test_bad_decisions_are_refused_clearly(case, candidate, by, code):
    uow = await proposed()
    with pytest.raises(ApiError) as err:
        await contacts.decide(
            case, candidate, ProposalStatus.CONFIRMED, by=by, reason="", now=T0, uow=uow
        )
    assert err.value.code == code
    assert uow.events(PersonStatusChanged) == []


async def test_a_candidate_held_already_keeps_their_status():
    uow = await proposed()
    async with uow:
        await change_status(
            uow,
            "R-1003",
            HealthStatus.HOME_QUARANTINE,
            by="W-01",
            role=Role.GRID_WORKER,
            reason="returnee",
            now=T0,
        )
        await uow.commit()
    before = len(uow.events(PersonStatusChanged))
    row = await contacts.decide(
        "R-1001", "R-1003", ProposalStatus.CONFIRMED, by="W-01", reason="", now=T0, uow=uow
    )
    assert row["status"] == "confirmed"
    assert (await uow.statuses.get("R-1003")).status is HealthStatus.HOME_QUARANTINE
    assert len(uow.events(PersonStatusChanged)) == before


# --- compounds ------------------------------------------------------------------------------
async def test_a_confirmed_case_seals_its_compound_and_14_days_free_it():
    uow = await community(FakeUnitOfWork())
    await compounds.person_status_changed(confirmed(), uow, T0)
    [sealed] = uow.events(CompoundLevelChanged)
    assert sealed["compound_id"] == "C-01" and sealed["level"] == "sealed"
    assert "R-1001" in sealed["reason"]
    [shown] = await compounds.show(uow, T0 + timedelta(days=3), "C-01")
    assert shown["level"] == "sealed" and shown["days_without_case"] == 3
    assert shown["last_case_person_id"] == "R-1001" and shown["epidemic_free"] is False
    assert shown["epidemic_free_on"] == "2026-03-26T07:31:05+08:00"
    # a second case in the compound: sealed already (no event), the count starts again
    await compounds.person_status_changed(
        confirmed("R-2001", T0 + timedelta(days=5), "H-0201"), uow, T0 + timedelta(days=5)
    )
    assert len(uow.events(CompoundLevelChanged)) == 1
    assert await compounds.tick(uow, T0 + timedelta(days=14, hours=1)) == []  # 9 days
    assert await compounds.tick(uow, T0 + timedelta(days=19)) == ["C-01"]
    relaxed = uow.events(CompoundLevelChanged)[-1]
    assert relaxed["level"] == "precaution" and "epidemic-free" in relaxed["reason"]
    [shown] = await compounds.show(uow, T0 + timedelta(days=20), "C-01")
    assert shown["epidemic_free"] is True and shown["epidemic_free_since"].startswith("2026-03-31")
    assert await compounds.tick(uow, T0 + timedelta(days=21)) == []  # once
    assert len(uow.events(CompoundLevelChanged)) == 2


async def test_sealing_and_relaxing_are_policy():
    policy = CommunityPolicy(
        community_id="CM-1",
        seal_on_confirmed="controlled",
        epidemic_free_days=7,
        epidemic_free_level="controlled",
    )
    uow = await community(FakeUnitOfWork(), policy)
    await compounds.person_status_changed(confirmed("R-3001", T0, "H-0301"), uow, T0)
    assert uow.events(CompoundLevelChanged) == []  # C-02 is controlled already
    await compounds.person_status_changed(confirmed(), uow, T0)
    [raised] = uow.events(CompoundLevelChanged)
    assert raised["compound_id"] == "C-01" and raised["level"] == "controlled"
    assert sorted(await compounds.tick(uow, T0 + timedelta(days=7))) == ["C-01", "C-02"]
    assert len(uow.events(CompoundLevelChanged)) == 1  # free, the level as the policy says


async def test_the_office_sets_a_level_with_a_reason():
    uow = await community(FakeUnitOfWork())
    row = await compounds.set_level(
        "C-02",
        ControlLevel.SEALED,
        by="Secretary Wang",
        reason="case next door",
        now=T0,
        uow=uow,
    )
    assert row["level"] == "sealed" and row["set_by"] == "Secretary Wang"
    [changed] = uow.events(CompoundLevelChanged)
    assert changed["reason"] == "case next door"
    with pytest.raises(ApiError) as err:
        await compounds.set_level(
            "C-99", ControlLevel.SEALED, by="Wang", reason="typo", now=T0, uow=uow
        )
    assert err.value.code == "unknown_compound"
    everything = await compounds.show(uow, T0)
    assert [(c["compound_id"], c["level"]) for c in everything] == [
        ("C-01", "precaution"),
        ("C-02", "sealed"),
    ]


async def test_with_the_policy_a_confirmed_contact_s_household_is_quarantined():
    policy = CommunityPolicy(community_id="CM-1", contacts_quarantine=True)
    uow = await community(FakeUnitOfWork(), policy)
    await contacts.person_status_changed(confirmed(), uow, register_with_neighbours(), T0)
    await contacts.decide(
        "R-1001", "R-2001", ProposalStatus.CONFIRMED, by="W-02", reason="", now=T0, uow=uow
    )
    assert (await uow.statuses.get("R-2001")).status is HealthStatus.HOME_QUARANTINE
    steps = [(e["previous_status"], e["status"]) for e in uow.events(PersonStatusChanged)]
    assert steps == [("normal", "close_contact"), ("close_contact", "home_quarantine")]
    assert await uow.household_quarantines.active_of("H-0201") is not None


async def test_what_screening_asks_notify_renders_with_notify_s_templates():
    from gridcare.notify.domain.templates import Templates

    uow = await community(FakeUnitOfWork())
    await contacts.person_status_changed(confirmed(), uow, register_with_neighbours(), T0)
    templates = Templates()
    for ask in uow.events(NotificationRequested):
        assert templates.required_params(ask["template"]) <= set(ask["params"])
        for language in ("zh", "en"):
            r = templates.render(ask["template"], language, ask["params"], zone="Asia/Shanghai")
            assert ask["params"]["case_person_id"] in r.body and "None" not in r.body
