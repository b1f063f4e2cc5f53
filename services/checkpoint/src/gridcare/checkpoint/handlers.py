"""The checkpoint's service layer: one function per command, event or query (all but the
gate scan, which is ``entrypoints/scans.py``).

Each loads through the unit of work, calls the domain, commits (events to the outbox, the
message to the inbox, in the same transaction), and then brings the gate path's in-memory
state (``domain.state.GateState``) up to date: a change reaches the gates once committed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from gridcare.contracts.checkpoint import (
    ControlLevelSet,
    GateCameOnline,
    GateSendingBadInput,
    GateWentOffline,
    OverrideRecorded,
    PermitIssued,
    PermitOverdue,
)
from gridcare.contracts.edge import DoorOpened
from gridcare.contracts.notify import NotificationRequested, ToRole
from gridcare.contracts.refdata import CommunityPolicy, ControlLevel
from gridcare.contracts.screening import CompoundLevelChanged, PersonStatusChanged
from gridcare.shared import projection
from gridcare.shared.envelope import new_id, stable_id, utcnow
from gridcare.shared.errors import ApiError, Permanent
from gridcare.shared.localtime import as_utc, iso

from .domain import holds, permits
from .domain.health import GateHealth
from .domain.holds import Hold
from .domain.permits import Permit, PermitRefused
from .domain.policy import Policy, set_by
from .domain.state import GateState
from .unit_of_work import CheckpointUnitOfWork as UoW

log = logging.getLogger(__name__)


# --- reference data and policies ------------------------------------------------------------
async def reference_data_changed(entity: Any, uow: UoW, state: GateState) -> None:
    """Keep the checkpoint's copy of a row of reference data; the gates know it at once."""
    await projection.keep(entity, uow, after=lambda: state.apply(entity))


async def policy_set(p: CommunityPolicy, uow: UoW, state: GateState) -> None:
    """A community's gate policy, in force at every gate at once."""
    async with uow:
        await uow.policies.put(p)
        uow.after_commit(lambda: state.set_policy(p))
        await uow.commit()


# --- control levels -------------------------------------------------------------------------
async def set_level(
    compound_id: str,
    level: ControlLevel,
    by: str,
    reason: str,
    at: datetime,
    uow: UoW,
    state: GateState,
) -> bool:
    """The newest decision on a compound's level is in force; one arriving late is not.
    Returns whether it took effect (announced as ``ControlLevelSet``)."""
    async with uow:
        current = await uow.controls.get(compound_id)
        if not holds.newer(current["set_at"] if current else None, at):
            await uow.commit()  # handled: an older decision changes nothing
            return False
        await uow.controls.put(compound_id, level, by, reason, at)
        uow.emit(
            ControlLevelSet(
                compound_id=compound_id, level=level, set_by=by, reason=reason, set_at=at
            ),
            event_id=stable_id(ControlLevelSet.TYPE, compound_id, at.isoformat()),
        )
        uow.after_commit(lambda: state.set_control(compound_id, level, at))
        await uow.commit()
    return True


async def office_sets_level(
    compound_id: str, level: ControlLevel, by: str, reason: str, uow: UoW, state: GateState
) -> dict[str, Any]:
    """The office sets a compound's level (``gridcare level set``)."""
    if compound_id not in state.compound_community:
        raise ApiError("unknown_compound", f"no compound {compound_id!r}", "compound_id")
    at = utcnow()
    await set_level(compound_id, level, by, reason, at, uow, state)
    return _level_row(compound_id, state, {"set_by": by, "reason": reason, "set_at": at})


async def compound_level_changed(ev: CompoundLevelChanged, uow: UoW, state: GateState) -> None:
    """Screening raised or lowered a compound's level."""
    await set_level(ev.compound_id, ev.level, "screening", ev.reason, ev.decided_at, uow, state)


# --- screening's holds, door sensors --------------------------------------------------------
async def person_status_changed(ev: PersonStatusChanged, uow: UoW, state: GateState) -> None:
    """Screening's newest decision about a person, enforced at once (``holds_at_gate``)."""
    async with uow:
        current = await uow.holds.get(ev.person_id)
        if not holds.newer(current.decided_at if current else None, ev.decided_at):
            await uow.commit()  # handled: an older decision changes nothing
            return
        hold = Hold(
            person_id=ev.person_id,
            status=ev.status,
            holds_at_gate=ev.holds_at_gate,
            holds_at_home=ev.holds_at_home,  # None (an older producer): as holds_at_gate
            household_id=ev.household_id,
            decided_at=ev.decided_at,
            label=ev.status_label,
            until=ev.until,
        )
        await uow.holds.put(hold)
        uow.after_commit(lambda: state.set_hold(hold))
        await uow.commit()


async def door_opened(ev: DoorOpened, subject_household: str, uow: UoW, state: GateState) -> None:
    """A quarantined household's door (a member confined at home) alerts its grid worker;
    any other is recorded."""
    if subject_household != ev.household_id:
        raise Permanent(f"household_id {ev.household_id!r} does not match the subject")
    holders = state.holders_of(ev.household_id)
    building = state.household_building.get(ev.household_id, "")
    compound = state.building_compound.get(building, "")
    breach = holds.door_opened(ev.event_id, ev.household_id, ev.opened_at, compound, holders)
    async with uow:
        await uow.register.add_door_event(
            {
                "event_id": ev.event_id,
                "household_id": ev.household_id,
                "opened_at": ev.opened_at,
                "quarantined": breach is not None,
                "received_at": utcnow(),
            }
        )
        if breach is not None:
            uow.emit(breach)
        await uow.commit()


async def door_repeated(ev: DoorOpened, uow: UoW) -> bool:
    """A door event whose ``event_id`` was handled before (on its household's subject):
    whether it says something else than the one recorded (a reused id: it changes nothing,
    the first one stands). False when the first is no longer in the register."""
    async with uow:
        first = await uow.register.door_event(ev.household_id, ev.event_id)
    return first is not None and not holds.same_door_event(
        first["household_id"], first["opened_at"], ev
    )


# --- gate health ------------------------------------------------------------------------------
async def gate_came_back(gate_id: str, health: GateHealth, uow: UoW, state: GateState) -> None:
    await _report(gate_id, True, 0.0, health, uow, state)


async def check_gates(health: GateHealth, uow: UoW, state: GateState) -> int:
    """Report every gate that has gone silent (and was not reported yet)."""
    now, reported = utcnow(), 0
    for gate in list(state.gate_compound):
        interval = state.policy(state.gate_compound[gate]).heartbeat_interval_s
        if health.gone_silent(gate, now, interval):
            await _report(gate, False, health.silent_for(gate, now), health, uow, state)
            reported += 1
    return reported


async def _report(
    gate: str, online: bool, silent_s: float, health: GateHealth, uow: UoW, state: GateState
) -> None:
    compound = state.gate_compound.get(gate, "")
    now = utcnow()
    ev: GateCameOnline | GateWentOffline
    if online:
        ev = GateCameOnline(gate_id=gate, compound_id=compound, at=now)
    else:
        ev = GateWentOffline(
            gate_id=gate,
            compound_id=compound,
            last_seen_at=health.last_seen.get(gate),
            silent_s=silent_s,
        )
    if online:
        params: dict[str, Any] = {"at": now.isoformat()}
    else:
        seen = health.last_seen.get(gate)
        params = {"last_seen_at": seen.isoformat() if seen else None, "silent_s": silent_s}
    async with uow:
        await uow.gate_health.put(
            gate, health.last_seen.get(gate), health.firmware.get(gate), online
        )
        eid = stable_id(ev.TYPE, gate, now.isoformat())
        uow.emit(ev, event_id=eid)
        _tell_duty_staff(
            uow,
            state,
            gate,
            "gate.online" if online else "gate.offline",
            params,
            request_id=eid,
            urgent=not online,
        )
        await uow.commit()
    health.online[gate] = online


def _tell_duty_staff(
    uow: UoW,
    state: GateState,
    gate: str,
    template: str,
    params: dict[str, Any],
    *,
    request_id: str,
    urgent: bool = False,
) -> None:
    """Ask notify to tell a gate's duty staff (whoever is on duty there, else its duty
    chat): in their language, through their channels; an urgent one (a gate gone offline)
    must be acknowledged, or it escalates."""
    compound = state.gate_compound.get(gate, "")
    places = {"gate_id": gate}
    if community := state.compound_community.get(compound):
        places["community_id"] = community
    uow.emit(
        NotificationRequested(
            request_id=request_id,
            recipient=ToRole(role="duty_staff", place_id=gate),
            template=template,
            params={
                "gate_id": gate,
                "gate_name": state.gate_name.get(gate) or gate,
                "compound_id": compound,
                **params,
            },
            priority="urgent" if urgent else "normal",
            needs_ack=urgent,
            alert_kind="gate_offline" if urgent else None,
            places=places,
            requested_by="checkpoint",
        ),
        event_id=stable_id("NotificationRequested", request_id),
    )


async def gate_sends_bad_input(
    gate_id: str, kind: str, reason: str, per_minute: int, uow: UoW, state: GateState
) -> None:
    """A gate sends more bad messages than its bound records: its duty staff are told
    (``GateSendingBadInput``; the caller bounds how often, ``domain/badinput.py``)."""
    now = utcnow()
    ev = GateSendingBadInput(
        gate_id=gate_id,
        compound_id=state.gate_compound.get(gate_id, ""),
        kind=kind,
        reason=reason[:500],
        recorded_per_minute=per_minute,
        at=now,
    )
    log.warning(
        "gate %s is sending bad %s messages faster than %d a minute are kept: %s",
        gate_id,
        kind,
        per_minute,
        ev.reason,
    )
    async with uow:
        eid = stable_id(ev.TYPE, gate_id, kind, now.isoformat())
        uow.emit(ev, event_id=eid)
        _tell_duty_staff(
            uow,
            state,
            gate_id,
            "gate.bad_input",
            {"kind": kind, "count": per_minute, "since": now.isoformat()},
            request_id=eid,
        )
        await uow.commit()


async def save_gate_health(gates: set[str], health: GateHealth, uow: UoW) -> None:
    """Last-seen times of these gates to the store (so a restart remembers a silent gate)."""
    if not gates:
        return
    async with uow:
        for gate in gates:
            await uow.gate_health.put(
                gate,
                health.last_seen.get(gate),
                health.firmware.get(gate),
                health.online.get(gate, True),
            )
        await uow.commit()


async def load_gate_health(health: GateHealth, uow: UoW) -> None:
    async with uow:
        rows = await uow.gate_health.all()
    for r in rows:
        if r["last_seen_at"] is not None:
            health.last_seen[r["gate_id"]] = r["last_seen_at"]
        health.firmware[r["gate_id"]] = r["firmware"] or ""
        health.online[r["gate_id"]] = r["online"]


# --- permits ----------------------------------------------------------------------------------
async def issue_permit(
    holder_id: str,
    kind: permits.Kind,
    valid_from: datetime | None,
    valid_until: datetime,
    uses: int,
    return_within_h: float | None,
    issued_by: str,
    uow: UoW,
    state: GateState,
) -> dict[str, Any]:
    """The office issues a permit; an outing counts against the household's quota."""
    household = state.resident_household.get(holder_id)
    compound = state.home_compound(holder_id)
    if household is None or compound is None:
        raise ApiError("unknown_person", f"{holder_id} is not a known resident", "holder_id")
    policy, zone = state.policy(compound), state.zone_of(compound)
    now = utcnow()
    valid_from = valid_from or now
    async with uow:
        since = permits.quota_window_start(valid_from, policy, zone)
        try:
            permits.check_issue(
                kind,
                valid_from,
                valid_until,
                await uow.permits.outings_since(household, since),
                policy,
                household,
            )
        except PermitRefused as exc:
            raise ApiError(exc.code, str(exc)) from None
        permit = Permit(
            permit_id=new_id(),
            kind=kind,
            valid_from=valid_from,
            valid_until=valid_until,
            uses_left=uses,
            state="issued",
            return_within_h=return_within_h,
        )
        ev = PermitIssued(
            permit_id=permit.permit_id,
            kind=kind,
            holder_id=holder_id,
            household_id=household,
            compound_id=compound,
            valid_from=valid_from,
            valid_until=valid_until,
            uses=uses,
            return_within_h=return_within_h,
            issued_by=issued_by,
        )
        row = ev.model_dump(exclude={"uses"})  # the row holds what is announced, and more
        await uow.permits.add({**row, "uses_left": uses, "issued_at": now, "state": "issued"})
        uow.emit(ev)
        uow.after_commit(lambda: state.put_permit(holder_id, permit))
        await uow.commit()
    out = ev.model_dump(mode="json")
    out["valid_from"], out["valid_until"] = iso(valid_from, zone), iso(valid_until, zone)
    return out


async def alert_overdue(uow: UoW, state: GateState) -> int:
    """One ``PermitOverdue`` per outing whose holder is not back by the return time."""
    now = utcnow()
    async with uow:
        rows = await uow.permits.overdue(now)
        for r in rows:
            ev = PermitOverdue(
                permit_id=r["permit_id"],
                holder_id=r["holder_id"],
                household_id=r["household_id"],
                compound_id=r["compound_id"],
                exited_at=r["exited_at"],
                return_by=r["return_by"],
            )
            uow.emit(ev, event_id=stable_id(ev.TYPE, r["permit_id"], str(r["exited_at"])))
            await uow.permits.alerted(r["permit_id"], now)
        await uow.commit()
    state.forget_permits_before(now - timedelta(days=1))
    return len(rows)


# --- overrides and the register ---------------------------------------------------------------
async def override(
    gate_id: str, scan_id: str, staff_id: str, reason: str, uow: UoW, state: GateState
) -> dict[str, Any]:
    """Duty staff let a denied person through, with who and why."""
    async with uow:
        passage = await uow.register.passage(gate_id, scan_id)
        if passage is None:
            raise ApiError("not_found", f"no scan {scan_id} at gate {gate_id}")
        if passage["verdict"] == "allow":
            raise ApiError("not_denied", "that scan was allowed; nothing to override")
        if await uow.register.overridden(gate_id, scan_id):
            raise ApiError("already_overridden", "that scan was overridden already")
        now = utcnow()
        row = {
            "gate_id": gate_id,
            "scan_id": scan_id,
            "person_id": passage["person_id"],
            "staff_id": staff_id,
            "reason": reason,
            "at": now,
        }
        await uow.register.add_override(row)
        ev = OverrideRecorded(**row, original_verdict=passage["verdict"])
        uow.emit(ev)
        uow.after_commit(lambda: state.let_through(passage))
        await uow.commit()
    out = ev.model_dump(mode="json")
    out["at"] = iso(now, state.zone_of(passage["compound_id"]))
    return out


async def purge_register(retention_days: float, uow: UoW, state: GateState) -> datetime:
    """Nothing the checkpoint received longer ago than the retention period stays in the
    register (our clock: a device's wrong clock neither keeps a row for ever nor purges it
    at once). Returns the cutoff."""
    cutoff = utcnow() - timedelta(days=retention_days)
    async with uow:
        await uow.register.purge_before(cutoff)
        await uow.permits.purge_closed_before(cutoff)
        uow.after_commit(lambda: state.forget_passages_before(cutoff))
        await uow.commit()
    return cutoff


# --- queries ----------------------------------------------------------------------------------
def who_is_out(compound_id: str, state: GateState) -> dict[str, Any]:
    """Residents of the compound whose last passage through its gates was an exit that was
    let through (allowed, or overridden by duty staff): from memory."""
    if compound_id not in state.compound_community:
        raise ApiError("unknown_compound", f"no compound {compound_id!r}", "compound_id")
    zone = state.zone_of(compound_id)
    out = state.out_of(compound_id)
    return {
        "compound_id": compound_id,
        "count": len(out),
        "out": [
            {"person_id": person, "gate_id": gate, "since": iso(at, zone)}
            for person, gate, at in out
        ],
    }


def _passage(p: dict[str, Any], zone: str | None) -> dict[str, Any]:
    return {
        "gate_id": p["gate_id"],
        "scan_id": p["scan_id"],
        "compound_id": p["compound_id"],
        "person_id": p["person_id"],
        "direction": p["direction"],
        "verdict": p["verdict"],
        "reasons": p["reasons"],
        "temperature_c": p["temperature_c"],
        "scanned_at": iso(p["scanned_at"], zone),
    }


async def trace(
    gate_id: str | None,
    scan_id: str | None,
    compound_id: str | None,
    at: datetime | None,
    minutes: float,
    whole_compound: bool,
    uow: UoW,
    state: GateState,
    *,
    limit: int = 1000,
    after: str | None = None,
) -> dict[str, Any]:
    """Who passed a gate (or any gate of a compound) within ±minutes of a scan or a time:
    one page of at most ``limit`` passages, in time order; ``next`` is the cursor of the
    following page (``after``), or None on the last one. A busy gate's hour is thousands
    of passages: more than one reply can carry."""
    cursor = _cursor(after)
    async with uow:
        if scan_id:
            anchor = await uow.register.passage(gate_id or "", scan_id)
            if anchor is None:
                raise ApiError("not_found", f"no scan {scan_id} at gate {gate_id}")
            at = anchor["scanned_at"]
            if whole_compound:
                gate_id, compound_id = None, anchor["compound_id"]
        assert at is not None
        window = timedelta(minutes=minutes)
        rows = await uow.register.between(
            at - window, at + window, gate_id, compound_id, limit=limit + 1, after=cursor
        )
    zone = state.zone_of(compound_id or state.gate_compound.get(gate_id or "", ""))
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if page else None
    return {
        "from": iso(at - window, zone),
        "to": iso(at + window, zone),
        "passages": [_passage(r, zone) for r in page],
        "next": f"{as_utc(last['scanned_at']).isoformat()}/{last['id']}" if more and last else None,
    }


def _cursor(after: str | None) -> tuple[datetime, int] | None:
    """A page cursor (``<scanned_at>/<id>`` of the last passage of the page before)."""
    if after is None:
        return None
    try:
        at, _, last = after.rpartition("/")
        return as_utc(datetime.fromisoformat(at)), int(last)
    except ValueError:
        raise ApiError("invalid_request", "not a cursor this API gave", "after") from None


async def newest_passages(
    limit: int, gate_id: str | None, person_id: str | None, uow: UoW, state: GateState
) -> list[dict[str, Any]]:
    async with uow:
        rows = await uow.register.newest(limit, gate_id, person_id)
    return [_passage(r, state.zone_of(r["compound_id"])) for r in rows]


def _level_row(compound_id: str, state: GateState, control: dict | None) -> dict[str, Any]:
    zone = state.zone_of(compound_id)
    return {
        "compound_id": compound_id,
        "level": state.level(compound_id).value,
        "set_by": control["set_by"] if control else "compounds.csv",
        "reason": control["reason"] if control else "",
        "set_at": iso(control["set_at"], zone) if control else None,
    }


async def levels(compound_id: str | None, uow: UoW, state: GateState) -> list[dict[str, Any]]:
    """The level in force at each compound (or one), who set it and when."""
    if compound_id is not None and compound_id not in state.compound_community:
        raise ApiError("unknown_compound", f"no compound {compound_id!r}", "compound_id")
    async with uow:
        controls = {c["compound_id"]: c for c in await uow.controls.all()}
    wanted = [compound_id] if compound_id else sorted(state.compound_community)
    return [_level_row(c, state, controls.get(c)) for c in wanted]


def policy_of(community_id: str, state: GateState) -> dict[str, Any]:
    """The policy in force for a community, and which settings it sets itself."""
    if community_id not in set(state.compound_community.values()) | set(state.community_zone):
        raise ApiError("unknown_community", f"no community {community_id!r}", "community_id")
    own = state.community_policy.get(community_id)
    policy = state.policies.get(community_id, Policy())
    return {
        "community_id": community_id,
        "time_zone": state.community_zone.get(community_id),
        "policy": {"community_id": community_id, **policy.as_dict()},
        "set": set_by(own),
    }
