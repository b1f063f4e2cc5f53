"""Close contacts of a confirmed case: proposed from the household and the checkpoint's
register, told to the grid workers, confirmed or rejected by them (``domain/contacts.py``).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from gridcare.contracts.notify import NotificationRequested, ToRole
from gridcare.contracts.refdata import CommunityPolicy
from gridcare.contracts.screening import PersonStatusChanged
from gridcare.shared.envelope import stable_id
from gridcare.shared.errors import ApiError
from gridcare.shared.localtime import iso

from ..adapters.register import Register
from ..domain import contacts
from ..domain.contacts import NOT_PROPOSED, Proposal, ProposalStatus
from ..domain.policy import ScreeningPolicy
from ..domain.status import HOLDS_AT_GATE, HealthStatus, Role
from ..unit_of_work import ScreeningUnitOfWork
from .quarantine import quarantine_household
from .status import change_status, staff_role

#: The template a grid worker is told with (notify's templates/task.close_contacts).
TEMPLATE = "task.close_contacts"
#: The role the close-contact step is taken in: the grid worker (``by``, checked to be
#: one) who confirms screening's proposal.
CONFIRMED_AS = Role.GRID_WORKER


async def policy_of(uow: ScreeningUnitOfWork, community_id: str | None) -> ScreeningPolicy:
    """Screening's policy for a community (its defaults where the policy says nothing)."""
    refdata = uow.places.refdata
    if not community_id or CommunityPolicy.TYPE not in refdata.tables:
        return ScreeningPolicy()
    return ScreeningPolicy.of(await refdata.get(CommunityPolicy.TYPE, community_id))


async def person_status_changed(
    ev: PersonStatusChanged, uow: ScreeningUnitOfWork, register: Register, now: datetime
) -> list[Proposal]:
    """A person became confirmed: propose their close-contact candidates, each once, and
    tell each candidate's grid worker how many to review. The register is asked outside
    any transaction; if it does not answer, :class:`RegisterUnavailable` goes up and the
    message is retried (nothing is committed). Any other status: nothing to do."""
    if ev.status != HealthStatus.CONFIRMED.value:
        return []
    case = ev.person_id
    async with uow:  # what is known of the case (a message already handled stops here)
        household = ev.household_id or await uow.places.household_of(case)
        home = household and await uow.places.home_of(household)
        if not home:
            # screening's own reference data not there yet (a new instance replaying):
            # retried, as the consumer retries any error, until it is
            raise LookupError(f"{case}: no household known for the confirmed person yet")
        members = await uow.places.members_of(household)
        policy = await policy_of(uow, home["community_id"])
        zone = await uow.places.zone_of_household(household)

    since = contacts.lookback_start(ev.decided_at, policy.contact_lookback_days)
    own = await register.passages_of(case, since)
    near = {p: await register.around(p, policy.contact_window_minutes) for p in own}
    found = contacts.candidates(case, members, near, policy.contact_window_minutes)

    async with uow:
        new: list[Proposal] = []
        for c in found:
            if await uow.contacts.get(case, c.person_id) is not None:
                continue  # proposed already (a redelivery, the same case confirmed again)
            their_household = await uow.places.household_of(c.person_id)
            if their_household is None:
                continue  # not a resident of the community (a visitor): not screening's
            current = await uow.statuses.get(c.person_id)
            if current is not None and current.status in NOT_PROPOSED:
                continue  # a case themselves
            their_home = await uow.places.home_of(their_household)
            proposal = Proposal(
                case_person_id=case,
                candidate_id=c.person_id,
                household_id=their_household,
                grid_id=their_home["grid_id"] if their_home else None,
                kind=c.kind,
                reason=c.reason(zone),
                gate_id=c.gate_id,
                passed_at=c.passed_at,
                proposed_at=now,
            )
            await uow.contacts.save(proposal)
            new.append(proposal)
        _tell_grid_workers(uow, case, new, home["community_id"], ev.decided_at)
        await uow.commit()
    return new


def _tell_grid_workers(
    uow: ScreeningUnitOfWork,
    case: str,
    new: list[Proposal],
    community_id: str | None,
    confirmed_at: datetime,
) -> None:
    """One request per grid: its worker is told how many candidates to review (a building
    naming no grid: the community's secretary)."""
    by_grid: dict[str | None, list[Proposal]] = {}
    for p in new:
        by_grid.setdefault(p.grid_id, []).append(p)
    for grid, proposals in sorted(by_grid.items(), key=lambda kv: kv[0] or ""):
        if grid is None and not community_id:
            continue
        recipient = (
            ToRole(role="grid_worker", place_id=grid)
            if grid
            else ToRole(role="secretary", place_id=community_id or "")
        )
        kinds = Counter(p.kind for p in proposals)
        key = stable_id("close_contacts", case, grid or "-", confirmed_at.isoformat())
        command = f"gridcare contacts proposed --case {case}" + (f" --grid {grid}" if grid else "")
        uow.emit(
            NotificationRequested(
                request_id=key,
                recipient=recipient,
                template=TEMPLATE,
                params={
                    "case_person_id": case,
                    "count": len(proposals),
                    "household": kinds[contacts.HOUSEHOLD],
                    "gate": kinds[contacts.GATE],
                    "grid_id": grid,
                    "command": command,
                },
                priority="urgent",
                places={"grid_id": grid} if grid else {"community_id": community_id or ""},
                requested_by="screening",
            ),
            event_id=stable_id("NotificationRequested", key),
        )


async def decide(
    case_person_id: str,
    candidate_id: str,
    to: ProposalStatus,
    *,
    by: str,
    reason: str,
    now: datetime,
    uow: ScreeningUnitOfWork,
) -> dict[str, Any]:
    """A grid worker (of the candidate's community) confirms or rejects a proposal.
    Confirmed: the candidate becomes a close contact (``change_status`` in the role
    :data:`CONFIRMED_AS`, by the worker; a candidate already held, e.g. in quarantine or a
    case, keeps that status), and with the policy's ``contacts_quarantine`` their
    household goes into home quarantine. The same decision again changes nothing; the
    other one after a decision is refused."""
    async with uow:
        proposal = await uow.contacts.get(case_person_id, candidate_id)
        if proposal is None:
            raise ApiError(
                "unknown_proposal",
                f"{candidate_id} is not proposed as a contact of {case_person_id}",
                "candidate_id",
            )
        await staff_role(uow, candidate_id, by, Role.GRID_WORKER)  # a grid worker decides
        decided, changed = contacts.decide(proposal, to, by=by, reason=reason, now=now)
        if changed:
            await uow.contacts.save(decided)
            if to is ProposalStatus.CONFIRMED:
                await _make_close_contact(uow, decided, by=by, now=now)
            await uow.commit()
        zone = await uow.places.zone_of_household(decided.household_id)
    return _row(decided, zone)


async def _make_close_contact(
    uow: ScreeningUnitOfWork, p: Proposal, *, by: str, now: datetime
) -> None:
    why = f"close contact of {p.case_person_id}: {p.reason}"
    source = f"contacts:{p.case_person_id}"
    current = await uow.statuses.get(p.candidate_id)
    if current is None or current.status not in HOLDS_AT_GATE:
        await change_status(
            uow,
            p.candidate_id,
            HealthStatus.CLOSE_CONTACT,
            by=by,
            role=CONFIRMED_AS,
            reason=why,
            now=now,
            source=source,
        )
    home = await uow.places.home_of(p.household_id)
    policy = await policy_of(uow, home["community_id"] if home else None)
    if policy.contacts_quarantine:
        await quarantine_household(
            uow,
            p.household_id,
            by=by,
            role=Role.GRID_WORKER,
            reason=why,
            now=now,
            source=source,
        )


# --- queries ------------------------------------------------------------------------------
def _row(p: Proposal, zone: str | None) -> dict[str, Any]:
    return {
        "case_person_id": p.case_person_id,
        "candidate_id": p.candidate_id,
        "household_id": p.household_id,
        "grid_id": p.grid_id,
        "kind": p.kind,
        "reason": p.reason,
        "gate_id": p.gate_id,
        "passed_at": iso(p.passed_at, zone),
        "status": p.status.value,
        "proposed_at": iso(p.proposed_at, zone),
        "decided_by": p.decided_by,
        "decided_at": iso(p.decided_at, zone),
        "decision_reason": p.decision_reason,
    }


async def proposals(
    uow: ScreeningUnitOfWork,
    *,
    grid_id: str | None = None,
    case_person_id: str | None = None,
    status: str | None = ProposalStatus.PROPOSED.value,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """The proposals (of a grid, of a case; by default those still to decide), oldest
    first, times on the community's clock."""
    async with uow:
        found = await uow.contacts.find(
            grid_id=grid_id, case_person_id=case_person_id, status=status, limit=limit
        )
        zones: dict[str, str | None] = {}
        for h in {p.household_id for p in found}:
            zones[h] = await uow.places.zone_of_household(h)
    return [_row(p, zones[p.household_id]) for p in found]
