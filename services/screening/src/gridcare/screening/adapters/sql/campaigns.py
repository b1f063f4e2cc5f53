"""Nucleic-acid test campaigns: who is due, results, reminders, door calls."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.shared.localtime import as_utc
from gridcare.shared.store import upsert_row

from ...domain import campaigns as camp
from .. import tables as T
from .common import IN_CHUNK


def _campaign(row) -> camp.Campaign:
    return camp.Campaign(
        campaign_id=row.campaign_id,
        community_id=row.community_id,
        place_kind=row.place_kind,
        place_id=row.place_id,
        place_name=row.place_name,
        site=row.site,
        starts_at=as_utc(row.starts_at),
        ends_at=as_utc(row.ends_at),
        door_call_after_min=row.door_call_after_min,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
    )


def _test_result(row) -> camp.TestResult:
    return camp.TestResult(
        sample_id=row.sample_id,
        campaign_id=row.campaign_id,
        person_id=row.person_id,
        result=camp.Result(row.result),
        tested_at=as_utc(row.tested_at),
        lab=row.lab,
        recorded_at=as_utc(row.recorded_at),
    )


class Campaigns:
    """Campaigns, their people, results, reminder rounds and uploads; set-based writes (a
    lab's file of 20,000 results is one insert of many rows)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, campaign: camp.Campaign) -> None:
        await self.session.execute(
            sa.insert(T.test_campaigns).values(**dataclasses.asdict(campaign))
        )

    async def get(self, campaign_id: str) -> camp.Campaign | None:
        q = sa.select(T.test_campaigns).where(T.test_campaigns.c.campaign_id == campaign_id)
        row = (await self.session.execute(q)).first()
        return None if row is None else _campaign(row)

    async def newest(self, limit: int, open_at: datetime | None = None) -> list[camp.Campaign]:
        c = T.test_campaigns.c
        q = sa.select(T.test_campaigns).order_by(c.starts_at.desc(), c.campaign_id).limit(limit)
        if open_at is not None:
            q = q.where(c.ends_at > open_at, c.starts_at <= open_at)
        return [_campaign(r) for r in await self.session.execute(q)]

    async def residents_of(
        self, place_kind: str, place_id: str, person_ids: set[str] | None = None
    ) -> list[camp.Resident]:
        """The residents of a compound or building (of those of ``person_ids``, if given;
        None: every one), with their status in force and their building's grid."""
        r, h, b, s = T.residents.c, T.households.c, T.buildings.c, T.person_status.c
        q = (
            sa.select(r.resident_id, r.household_id, h.building_id, s.status, b.grid_id)
            .join(T.households, h.household_id == r.household_id)
            .join(T.buildings, b.building_id == h.building_id)
            .outerjoin(T.person_status, s.person_id == r.resident_id)
            .order_by(r.resident_id)
        )
        if place_kind == "compound":
            q = q.where(b.compound_id == place_id)
        else:
            q = q.where(b.building_id == place_id)
        if person_ids is None:
            return [camp.Resident(*row) for row in await self.session.execute(q)]
        out = []
        ids = sorted(person_ids)
        for i in range(0, len(ids), IN_CHUNK):
            part = q.where(r.resident_id.in_(ids[i : i + IN_CHUNK]))
            out.extend(camp.Resident(*row) for row in await self.session.execute(part))
        return out

    async def known(self, person_ids: set[str]) -> set[str]:
        """Which of these are residents anywhere."""
        ids, out = sorted(person_ids), set()
        for i in range(0, len(ids), IN_CHUNK):
            q = sa.select(T.residents.c.resident_id).where(
                T.residents.c.resident_id.in_(ids[i : i + IN_CHUNK])
            )
            out.update(await self.session.scalars(q))
        return out

    async def add_members(self, members: list[camp.Member]) -> None:
        if members:
            try:
                await self.session.execute(
                    sa.insert(T.campaign_people), [dataclasses.asdict(m) for m in members]
                )
            except IntegrityError:
                raise camp.RecordedMeanwhile("a person joined meanwhile") from None

    async def members(self, campaign_id: str) -> dict[str, camp.Member]:
        q = sa.select(T.campaign_people).where(T.campaign_people.c.campaign_id == campaign_id)
        return {row.person_id: camp.Member(**row._mapping) for row in await self.session.execute(q)}

    async def results_by_person(self, campaign_id: str) -> dict[str, list[camp.Result]]:
        c = T.campaign_results.c
        q = sa.select(c.person_id, c.result).where(c.campaign_id == campaign_id)
        out: dict[str, list[camp.Result]] = {}
        for person_id, result in await self.session.execute(q):
            out.setdefault(person_id, []).append(camp.Result(result))
        return out

    async def results_of(self, campaign_id: str, person_id: str) -> list[camp.TestResult]:
        c = T.campaign_results.c
        q = (
            sa.select(T.campaign_results)
            .where(c.campaign_id == campaign_id, c.person_id == person_id)
            .order_by(c.tested_at, c.sample_id)
        )
        return [_test_result(r) for r in await self.session.execute(q)]

    async def recorded(self, sample_ids: set[str]) -> dict[str, camp.TestResult]:
        """The samples of these recorded already (in any campaign)."""
        ids, out = sorted(sample_ids), {}
        c = T.campaign_results.c
        for i in range(0, len(ids), IN_CHUNK):
            q = sa.select(T.campaign_results).where(c.sample_id.in_(ids[i : i + IN_CHUNK]))
            for row in await self.session.execute(q):
                out[row.sample_id] = _test_result(row)
        return out

    async def add_results(self, results: list[camp.TestResult]) -> None:
        if results:
            rows = [{**dataclasses.asdict(r), "result": r.result.value} for r in results]
            try:
                await self.session.execute(sa.insert(T.campaign_results), rows)
            except IntegrityError:
                raise camp.RecordedMeanwhile("a sample was recorded meanwhile") from None

    async def rounds(self, campaign_id: str) -> dict[int, datetime]:
        c = T.campaign_rounds.c
        q = sa.select(c.round, c.at).where(c.campaign_id == campaign_id)
        return {n: as_utc(at) for n, at in await self.session.execute(q)}

    async def add_round(self, campaign_id: str, round_: int, at: datetime, people: int) -> None:
        try:
            await self.session.execute(
                sa.insert(T.campaign_rounds).values(
                    campaign_id=campaign_id, round=round_, at=at, people=people
                )
            )
        except IntegrityError:
            raise camp.RecordedMeanwhile(f"round {round_} done meanwhile") from None

    async def add_part(self, upload_id: str, part: int, text: str, at: datetime) -> None:
        row = {"upload_id": upload_id, "part": part, "text": text, "received_at": at}
        await upsert_row(self.session, T.campaign_uploads, row)

    async def parts(self, upload_id: str) -> list[tuple[int, str]]:
        c = T.campaign_uploads.c
        q = sa.select(c.part, c.text).where(c.upload_id == upload_id).order_by(c.part)
        return [(p, t) for p, t in await self.session.execute(q)]

    async def drop_upload(self, upload_id: str) -> None:
        await self.session.execute(
            sa.delete(T.campaign_uploads).where(T.campaign_uploads.c.upload_id == upload_id)
        )

    async def drop_uploads_before(self, t: datetime) -> int:
        q = sa.delete(T.campaign_uploads).where(T.campaign_uploads.c.received_at < t)
        return (await self.session.execute(q)).rowcount or 0

    async def followed(self, person_ids: set[str]) -> set[str]:
        """Which of these have an open follow-up (their test results count for release)."""
        ids, out, f = sorted(person_ids), set(), T.follow_ups.c
        for i in range(0, len(ids), IN_CHUNK):
            q = sa.select(f.person_id).where(
                f.status == "open", f.person_id.in_(ids[i : i + IN_CHUNK])
            )
            out.update(await self.session.scalars(q))
        return out
