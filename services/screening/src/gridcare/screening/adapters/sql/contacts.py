"""Close contacts: the proposals a grid worker confirms or rejects."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.shared.localtime import as_utc
from gridcare.shared.store import upsert_row

from ...domain.contacts import Proposal, ProposalStatus
from .. import tables as T


def _proposal(row) -> Proposal:
    return Proposal(
        case_person_id=row.case_person_id,
        candidate_id=row.candidate_id,
        household_id=row.household_id,
        grid_id=row.grid_id,
        kind=row.kind,
        reason=row.reason,
        gate_id=row.gate_id,
        passed_at=as_utc(row.passed_at),
        proposed_at=as_utc(row.proposed_at),
        status=ProposalStatus(row.status),
        decided_by=row.decided_by,
        decided_at=as_utc(row.decided_at),
        decision_reason=row.decision_reason,
    )


class ContactProposals:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, case_person_id: str, candidate_id: str) -> Proposal | None:
        c = T.contact_proposals.c
        row = (
            await self.session.execute(
                sa.select(T.contact_proposals).where(
                    c.case_person_id == case_person_id, c.candidate_id == candidate_id
                )
            )
        ).first()
        return None if row is None else _proposal(row)

    async def save(self, p: Proposal) -> None:
        values = dataclasses.asdict(p)
        values["status"] = p.status.value
        await upsert_row(self.session, T.contact_proposals, values)

    async def find(
        self,
        *,
        grid_id: str | None = None,
        case_person_id: str | None = None,
        status: str | None = None,
        limit: int = 1000,
    ) -> list[Proposal]:
        c = T.contact_proposals.c
        q = sa.select(T.contact_proposals)
        if grid_id is not None:
            q = q.where(c.grid_id == grid_id)
        if case_person_id is not None:
            q = q.where(c.case_person_id == case_person_id)
        if status is not None:
            q = q.where(c.status == status)
        q = q.order_by(c.proposed_at, c.case_person_id, c.candidate_id).limit(limit)
        return [_proposal(r) for r in await self.session.execute(q)]
