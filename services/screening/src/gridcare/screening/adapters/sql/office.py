"""The office's queries (handlers/office.py): set-based reads over the parts' tables."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.shared.localtime import as_utc

from ...domain import campaigns as camp
from ...domain.contacts import Proposal
from ...domain.quarantine import HouseholdQuarantine
from .. import tables as T
from .campaigns import _test_result
from .checkins import _where_people
from .contacts import _proposal
from .quarantine import _household_quarantine


class Office:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def status_counts(
        self, community_id: str, at: datetime | None = None
    ) -> list[tuple[str, str, int]]:
        """(compound, status, residents) of the community's residents: their status in
        force (``at``: the last step before then, from the history), ``normal`` for none.
        One GROUP BY over residents, households, buildings, compounds and the statuses."""
        r, h, b, c = T.residents.c, T.households.c, T.buildings.c, T.compounds.c
        if at is None:
            st = T.person_status
            on = st.c.person_id == r.resident_id
        else:
            hist = T.status_history.c
            rank = sa.func.row_number().over(
                partition_by=hist.person_id, order_by=(hist.at.desc(), hist.id.desc())
            )
            st = (
                sa.select(hist.person_id, hist.status, rank.label("n"))
                .where(hist.at < at)
                .subquery("st")
            )
            on = sa.and_(st.c.person_id == r.resident_id, st.c.n == 1)
        # the literal inline: PostgreSQL must see the same expression in GROUP BY
        status = sa.func.coalesce(st.c.status, sa.literal_column("'normal'"))
        q = (
            sa.select(b.compound_id, status.label("status"), sa.func.count())
            .select_from(
                T.residents.join(T.households, h.household_id == r.household_id)
                .join(T.buildings, b.building_id == h.building_id)
                .join(T.compounds, c.compound_id == b.compound_id)
                .outerjoin(st, on)
            )
            .where(c.community_id == community_id)
            .group_by(b.compound_id, status)
        )
        return [(row[0], row[1], row[2]) for row in await self.session.execute(q)]

    async def step_counts(
        self, community_id: str, start: datetime, end: datetime, statuses: list[str]
    ) -> list[tuple[str, str, int]]:
        """(compound, status, people) of the community's residents who took a step to one
        of ``statuses`` in [start, end)."""
        r, h, b, c = T.residents.c, T.households.c, T.buildings.c, T.compounds.c
        hist = T.status_history.c
        q = (
            sa.select(b.compound_id, hist.status, sa.func.count(sa.distinct(hist.person_id)))
            .select_from(
                T.status_history.join(T.residents, r.resident_id == hist.person_id)
                .join(T.households, h.household_id == r.household_id)
                .join(T.buildings, b.building_id == h.building_id)
                .join(T.compounds, c.compound_id == b.compound_id)
            )
            .where(
                c.community_id == community_id,
                hist.status.in_(statuses),
                hist.at >= start,
                hist.at < end,
            )
            .group_by(b.compound_id, hist.status)
        )
        return [(row[0], row[1], row[2]) for row in await self.session.execute(q)]

    async def not_checked_in(
        self,
        community_id: str,
        today: date,
        cutoff: date,
        *,
        compound_id: str | None = None,
        grid_id: str | None = None,
        limit: int = 1000,
    ) -> list[dict]:
        """The community's residents whose last check-in up to ``today`` is on or before
        ``cutoff`` (or who never checked in), by compound, grid and id: where they live,
        their grid's worker, their status, their last check-in day, whether they were
        reminded today and whether a door visit was asked for since their last check-in.
        One query."""
        r, b, c, k = T.residents, T.buildings, T.compounds, T.checkins
        g, st, rem, dv = T.grids, T.person_status, T.checkin_reminders, T.door_visit_requests
        last = (
            sa.select(sa.func.max(k.c.day))
            .where(k.c.person_id == r.c.resident_id, k.c.day <= today)
            .scalar_subquery()
        )
        q = (
            sa.select(
                r.c.resident_id.label("person_id"),
                r.c.name,
                r.c.household_id,
                b.c.building_id,
                b.c.compound_id,
                b.c.grid_id,
                g.c.worker_id.label("grid_worker"),
                st.c.status,
                last.label("last_checkin_day"),
                sa.exists()
                .where(rem.c.person_id == r.c.resident_id, rem.c.day == today)
                .label("reminded_today"),
                sa.exists()
                .where(
                    dv.c.person_id == r.c.resident_id,
                    sa.or_(last.is_(None), dv.c.day > last),
                )
                .label("door_visit_requested"),
            )
            .select_from(
                _where_people()
                .outerjoin(g, g.c.grid_id == b.c.grid_id)
                .outerjoin(st, st.c.person_id == r.c.resident_id)
            )
            .where(c.c.community_id == community_id, sa.or_(last.is_(None), last <= cutoff))
            .order_by(b.c.compound_id, b.c.grid_id, r.c.resident_id)
            .limit(limit)
        )
        if compound_id is not None:
            q = q.where(b.c.compound_id == compound_id)
        if grid_id is not None:
            q = q.where(b.c.grid_id == grid_id)
        return [
            {
                **row._mapping,
                "reminded_today": bool(row.reminded_today),
                "door_visit_requested": bool(row.door_visit_requested),
            }
            for row in await self.session.execute(q)
        ]

    async def test_results_of(self, person_id: str) -> list[camp.TestResult]:
        c = T.campaign_results.c
        q = (
            sa.select(T.campaign_results)
            .where(c.person_id == person_id)
            .order_by(c.tested_at, c.sample_id)
        )
        return [_test_result(r) for r in await self.session.execute(q)]

    async def household_quarantines_of(self, household_id: str) -> list[HouseholdQuarantine]:
        q = T.household_quarantines.c
        rows = await self.session.execute(
            sa.select(T.household_quarantines)
            .where(q.household_id == household_id)
            .order_by(q.started_at)
        )
        return [_household_quarantine(r) for r in rows]

    async def stays_of_person(self, person_id: str) -> list[dict]:
        s = T.quarantine_stays.c
        q = sa.select(T.quarantine_stays).where(s.person_id == person_id).order_by(s.id)
        return [
            {**r._mapping, "started_at": as_utc(r.started_at), "ended_at": as_utc(r.ended_at)}
            for r in await self.session.execute(q)
        ]

    async def visits_to(self, household_id: str) -> list[dict]:
        v = T.door_visits.c
        q = sa.select(T.door_visits).where(v.household_id == household_id).order_by(v.visited_at)
        return [
            {**r._mapping, "visited_at": as_utc(r.visited_at)}
            for r in await self.session.execute(q)
        ]

    async def proposals_about(self, person_id: str) -> list[Proposal]:
        """Close-contact proposals with the person as the candidate or as the case."""
        c = T.contact_proposals.c
        q = (
            sa.select(T.contact_proposals)
            .where(sa.or_(c.candidate_id == person_id, c.case_person_id == person_id))
            .order_by(c.proposed_at, c.case_person_id, c.candidate_id)
        )
        return [_proposal(r) for r in await self.session.execute(q)]
