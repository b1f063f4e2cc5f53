"""What the gate path needs to know, in memory: the verdict never waits on a database.

Loaded from the checkpoint's store at start (``adapters/sql.load_state``) and kept current
by the handlers (after each commit), so a change reaches every gate of this instance as
soon as its event is handled. Permit uses are applied here at decision time (and written
with the passage), so two quick exits cannot both use a permit's last use. Who is out of
each compound is kept here too (each person's last passage let through its gates), so the
register needs no index by compound and person, which every gate commit would update.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gridcare.contracts.refdata import (
    Building,
    Community,
    CommunityPolicy,
    Compound,
    ControlLevel,
    Gate,
    Household,
    Resident,
)
from gridcare.shared.localtime import as_utc

from .holds import Hold
from .permits import Permit
from .policy import Policy


@dataclass
class GateState:
    gate_compound: dict[str, str] = field(default_factory=dict)
    gate_name: dict[str, str] = field(default_factory=dict)  # what duty staff read
    compound_level: dict[str, ControlLevel] = field(default_factory=dict)
    compound_community: dict[str, str] = field(default_factory=dict)
    building_compound: dict[str, str] = field(default_factory=dict)
    household_building: dict[str, str] = field(default_factory=dict)
    resident_household: dict[str, str] = field(default_factory=dict)
    community_zone: dict[str, str] = field(default_factory=dict)
    policies: dict[str, Policy] = field(default_factory=dict)  # community -> policy
    community_policy: dict[str, CommunityPolicy] = field(default_factory=dict)
    controls: dict[str, tuple[ControlLevel, datetime]] = field(default_factory=dict)
    held: dict[str, Hold] = field(default_factory=dict)  # only the people screening holds
    quarantined_households: Counter = field(default_factory=Counter)
    permits: dict[str, Permit] = field(default_factory=dict)
    permit_holder: dict[str, str] = field(default_factory=dict)
    holder_permits: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    default_policy: Policy = field(default_factory=Policy)
    # compound -> person -> (gate, direction, scanned_at, received_at) of their last
    # passage let through the compound's gates (allowed, or overridden by duty staff): who
    # is out. Which passage is the last goes by the device's time (when it happened); how
    # long it is kept goes by ours (when the checkpoint received it, as the register).
    last_passed: defaultdict[str, dict[str, tuple[str, str, datetime, datetime]]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    # --- updates from the consumers (after commit) ---------------------------------------
    def apply(self, entity: object) -> None:
        match entity:
            case Gate():
                self.gate_compound[entity.gate_id] = entity.compound_id
                self.gate_name[entity.gate_id] = entity.name
            case Compound():
                self.compound_level[entity.compound_id] = ControlLevel(entity.control_level)
                self.compound_community[entity.compound_id] = entity.community_id
            case Building():
                self.building_compound[entity.building_id] = entity.compound_id
            case Household():
                self.household_building[entity.household_id] = entity.building_id
            case Resident():
                self.resident_household[entity.resident_id] = entity.household_id
            case Community():
                self.community_zone[entity.community_id] = entity.time_zone
            case CommunityPolicy():
                self.set_policy(entity)

    def set_policy(self, p: CommunityPolicy) -> None:
        self.community_policy[p.community_id] = p
        self.policies[p.community_id] = Policy.of(p)

    def set_control(self, compound_id: str, level: ControlLevel, at: datetime) -> None:
        self.controls[compound_id] = (level, at)

    def set_hold(self, hold: Hold) -> None:
        """Screening's decision in force for a person: held at the gate or not, and, if
        held, confined at home (their household's door alerts) or not (a central quarantine
        site, a hospital). A household is quarantined while a member is confined at home."""
        old = self.held.pop(hold.person_id, None)
        if old and old.household_id and old.holds_at_home:
            self.quarantined_households[old.household_id] -= 1
            if self.quarantined_households[old.household_id] <= 0:
                del self.quarantined_households[old.household_id]
        if hold.holds_at_gate:
            household = hold.household_id or self.resident_household.get(hold.person_id)
            if household != hold.household_id:
                hold = dataclasses.replace(hold, household_id=household)
            self.held[hold.person_id] = hold
            if household and hold.holds_at_home:
                self.quarantined_households[household] += 1

    def holders_of(self, household_id: str) -> list[Hold]:
        """The members of the household confined at home (those its door alerts for)."""
        return [h for h in self.held.values() if h.household_id == household_id and h.holds_at_home]

    def put_permit(self, holder: str, permit: Permit) -> None:
        # A closed permit stays in view until its window ends: an exit on it is then
        # `permit_expired` (used up), not `permit_required` (never had one).
        self.permits[permit.permit_id] = permit
        self.permit_holder[permit.permit_id] = holder
        self.holder_permits[holder].add(permit.permit_id)

    def forget_permits_before(self, t: datetime) -> None:
        """Drop permits whose window ended before ``t`` (housekeeping)."""
        for pid, p in list(self.permits.items()):
            if p.valid_until < t:
                del self.permits[pid]
                self.holder_permits[self.permit_holder.pop(pid)].discard(pid)

    def passed(
        self,
        compound: str,
        person: str,
        gate: str,
        direction: str,
        at: datetime,
        received_at: datetime,
    ) -> None:
        """A passage of ``person`` let through a gate of ``compound`` is in the register
        (written, or overridden); the latest by scan time (``at``, the device's) counts.
        ``received_at`` (the passage's ``decided_at``, our clock) is when it is forgotten."""
        # as UTC: a device's own offset (+08:00) is kept out; SQLite gives naive UTC
        at = as_utc(at).astimezone(UTC)
        people = self.last_passed[compound]
        known = people.get(person)
        if known is None or at >= known[2]:
            people[person] = (gate, direction, at, as_utc(received_at))

    def let_through(self, passage: Mapping[str, Any]) -> None:
        """:meth:`passed`, for a row of the register."""
        p = passage
        self.passed(
            p["compound_id"],
            p["person_id"],
            p["gate_id"],
            p["direction"],
            p["scanned_at"],
            p["decided_at"],
        )

    def forget_passages_before(self, t: datetime) -> None:
        """The register forgets passages received before ``t`` (retention, on our clock):
        so does this."""
        for people in self.last_passed.values():
            for person in [p for p, last in people.items() if last[3] < t]:
                del people[person]

    def out_of(self, compound: str) -> list[tuple[str, str, datetime]]:
        """(person, gate, since) of the residents of ``compound`` whose last passage let
        through its gates was an exit, the earliest first."""
        return sorted(
            (
                (person, gate, at)
                for person, (gate, direction, at, _) in self.last_passed.get(compound, {}).items()
                if direction == "out" and self.home_compound(person) == compound
            ),
            key=lambda r: r[2],
        )

    def use_permit(self, permit: Permit, at: datetime) -> Permit:
        """An exit on ``permit`` (``Permit.used_at``), in force at once."""
        used = permit.used_at(at)
        self.put_permit(self.permit_holder[permit.permit_id], used)
        return used

    def close_permit(self, permit: Permit) -> Permit:
        """A return on ``permit`` (``Permit.returned``), in force at once."""
        back = permit.returned()
        self.put_permit(self.permit_holder[permit.permit_id], back)
        return back

    # --- queries of the gate path ---------------------------------------------------------
    def home_compound(self, person_id: str) -> str | None:
        household = self.resident_household.get(person_id)
        building = self.household_building.get(household) if household else None
        return self.building_compound.get(building) if building else None

    def level(self, compound_id: str) -> ControlLevel:
        if compound_id in self.controls:
            return self.controls[compound_id][0]
        return self.compound_level.get(compound_id, ControlLevel.PRECAUTION)

    def policy(self, compound_id: str) -> Policy:
        return self.policies.get(self.compound_community.get(compound_id, ""), self.default_policy)

    def zone_of(self, compound_id: str) -> str | None:
        """The time zone of the compound's community (None: not known yet)."""
        return self.community_zone.get(self.compound_community.get(compound_id, ""))

    def permits_of(self, person_id: str) -> tuple[Permit, ...]:
        held = self.holder_permits.get(person_id)
        return tuple(self.permits[p] for p in held) if held else ()
