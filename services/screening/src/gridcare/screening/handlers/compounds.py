"""Compounds: a confirmed case seals its compound (policy), 14 days without a new case make
it epidemic-free and relax its level, the office sets a level (``domain/compounds.py``).
Each change of level is a ``CompoundLevelChanged``, which the gates enforce."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gridcare.contracts.refdata import ControlLevel
from gridcare.contracts.screening import CompoundLevelChanged, PersonStatusChanged
from gridcare.shared.envelope import stable_id
from gridcare.shared.errors import ApiError
from gridcare.shared.localtime import iso

from ..domain import compounds
from ..domain.compounds import CompoundState
from ..domain.policy import ScreeningPolicy
from ..domain.status import HealthStatus
from ..unit_of_work import ScreeningUnitOfWork
from .contacts import policy_of


def _seal_level(policy: ScreeningPolicy) -> ControlLevel | None:
    return None if policy.seal_on_confirmed == "none" else ControlLevel(policy.seal_on_confirmed)


async def _state(uow: ScreeningUnitOfWork, compound_id: str, now: datetime) -> CompoundState:
    state = await uow.compounds.get(compound_id)
    if state is not None:
        return state
    row = await uow.places.compound(compound_id)
    level = row.get("control_level") if row else None
    return compounds.initial(compound_id, ControlLevel(level) if level else None, now)


def _announce(uow: ScreeningUnitOfWork, state: CompoundState) -> None:
    uow.emit(
        CompoundLevelChanged(
            compound_id=state.compound_id,
            level=state.level,
            reason=state.reason,
            decided_at=state.set_at,
        ),
        event_id=stable_id(
            CompoundLevelChanged.TYPE, state.compound_id, state.set_at.isoformat(), state.level
        ),
    )


async def person_status_changed(
    ev: PersonStatusChanged, uow: ScreeningUnitOfWork, now: datetime
) -> None:
    """A person became confirmed: a new case in their compound (the count of days without
    one starts again), which the policy's ``seal_on_confirmed`` may seal."""
    if ev.status != HealthStatus.CONFIRMED.value:
        return
    async with uow:
        household = ev.household_id or await uow.places.household_of(ev.person_id)
        home = household and await uow.places.home_of(household)
        if not home:
            raise LookupError(f"{ev.person_id}: no household known yet")  # retried
        policy = await policy_of(uow, home["community_id"])
        state = await _state(uow, home["compound_id"], now)
        state, changed = compounds.confirmed_case(
            state, ev.person_id, ev.decided_at, _seal_level(policy)
        )
        await uow.compounds.save(state)
        if changed:
            _announce(uow, state)
        await uow.commit()


async def tick(uow: ScreeningUnitOfWork, now: datetime) -> list[str]:
    """Every compound with no new case for the policy's ``epidemic_free_days`` becomes
    epidemic-free, its level relaxed as the policy says. Returns the compounds that did."""
    freed: list[str] = []
    async with uow:
        for state in await uow.compounds.all():
            if state.last_case_at is None or state.epidemic_free_since is not None:
                continue
            row = await uow.places.compound(state.compound_id)
            policy = await policy_of(uow, row["community_id"] if row else None)
            state, free, changed = compounds.check_epidemic_free(
                state, now, policy.epidemic_free_days, ControlLevel(policy.epidemic_free_level)
            )
            if free:
                await uow.compounds.save(state)
                freed.append(state.compound_id)
            if changed:
                _announce(uow, state)
        if freed:
            await uow.commit()
    return freed


async def set_level(
    compound_id: str,
    level: ControlLevel,
    *,
    by: str,
    reason: str,
    now: datetime,
    uow: ScreeningUnitOfWork,
) -> dict[str, Any]:
    """The office sets a compound's level, with a reason: announced (the gates enforce it)
    even if screening had it so already, since the office may have set the gates'
    level directly."""
    async with uow:
        if await uow.places.compound(compound_id) is None:
            raise ApiError("unknown_compound", f"no compound {compound_id!r}", "compound_id")
        state = await _state(uow, compound_id, now)
        state, _ = compounds.office_sets(state, ControlLevel(level), by, reason, now)
        await uow.compounds.save(state)
        _announce(uow, state)
        await uow.commit()
    return (await show(uow, now, compound_id))[0]


async def show(
    uow: ScreeningUnitOfWork, now: datetime, compound_id: str | None = None
) -> list[dict[str, Any]]:
    """Each compound (or one): its level, who set it and why, the last new case, the days
    without one, whether (and since when) it is epidemic-free."""
    async with uow:
        if compound_id is not None:
            if await uow.places.compound(compound_id) is None:
                raise ApiError("unknown_compound", f"no compound {compound_id!r}", "compound_id")
            wanted = [compound_id]
        else:
            wanted = await uow.places.compound_ids()
        rows = []
        for cid in wanted:
            state = await _state(uow, cid, now)
            row = await uow.places.compound(cid)
            community = row["community_id"] if row else None
            policy = await policy_of(uow, community)
            zone = await uow.places.zone_of_community(community) if community else None
            free_on = compounds.epidemic_free_at(state, policy.epidemic_free_days)
            rows.append(
                {
                    "compound_id": cid,
                    "level": state.level.value,
                    "set_by": state.set_by,
                    "reason": state.reason,
                    "set_at": iso(state.set_at, zone) if state.set_by != "compounds.csv" else None,
                    "last_case_at": iso(state.last_case_at, zone),
                    "last_case_person_id": state.last_case_person_id,
                    "days_without_case": state.days_without_case(now),
                    "epidemic_free": state.epidemic_free_since is not None,
                    "epidemic_free_since": iso(state.epidemic_free_since, zone),
                    "epidemic_free_on": None if state.epidemic_free_since else iso(free_on, zone),
                }
            )
    return rows
