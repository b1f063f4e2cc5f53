"""Check-ins, door visits, reminders (handlers/checkins.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.shared.localtime import as_utc
from gridcare.shared.store import BulkInsert

from ...domain import checkins as ci
from ...domain import followup as fu
from ...domain import missed as ms
from ...domain.policy import ScreeningPolicy
from .. import tables as T
from .common import IN_CHUNK
from .followup import _follow_up

#: the morning pass's reminder rows (thousands a transaction): no SQLAlchemy work a row
#: on a blocking unit of work
REMINDERS = BulkInsert(T.checkin_reminders, ("person_id", "day", "sent_at"))
#: the check-in edge's rows (a group commit's new check-ins and every reply kept): the
#: same, for the CPU of a check-in
CHECKINS = BulkInsert(
    T.checkins,
    (
        "person_id",
        "day",
        "checkin_id",
        "temperature_c",
        "symptoms",
        "note",
        "reported_by",
        "source",
        "submitted_at",
        "recorded_at",
        "follow_up",
    ),
)
CHECKIN_REQUESTS = BulkInsert(
    T.checkin_requests,
    ("checkin_id", "person_id", "day", "status", "follow_up", "received_at"),
)


def _checkin(row) -> ci.Checkin:
    return ci.Checkin(
        checkin_id=row.checkin_id,
        person_id=row.person_id,
        day=row.day,
        temperature_c=row.temperature_c,
        symptoms=tuple(row.symptoms or ()),
        note=row.note,
        reported_by=row.reported_by,
        source=row.source,
        submitted_at=as_utc(row.submitted_at),
        recorded_at=as_utc(row.recorded_at),
        follow_up=row.follow_up,
    )


def _checkin_values(c: ci.Checkin) -> dict:
    return {
        "person_id": c.person_id,
        "day": c.day,
        "checkin_id": c.checkin_id,
        "temperature_c": c.temperature_c,
        "symptoms": list(c.symptoms),
        "note": c.note,
        "reported_by": c.reported_by,
        "source": c.source,
        "submitted_at": c.submitted_at,
        "recorded_at": c.recorded_at,
        "follow_up": c.follow_up,
    }


def _where_people():
    """Residents with where they live, their community, its clock and policy."""
    r, h, b, c = T.residents, T.households, T.buildings, T.compounds
    return (
        r.outerjoin(h, h.c.household_id == r.c.household_id)
        .outerjoin(b, b.c.building_id == h.c.building_id)
        .outerjoin(c, c.c.compound_id == b.c.compound_id)
    )


class Checkins:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def resident(self, person_id: str) -> ci.Resident | None:
        row = (await self.session.execute(self._resident_query(person_id))).first()
        return None if row is None else self._resident(row)

    async def for_checkin(
        self, person_id: str, checkin_id: str, day: date
    ) -> tuple[ci.Resident | None, ci.Reply | None, ci.Checkin | None, fu.FollowUp | None]:
        """What a check-in needs, in one query (the hot path): the resident (None: not
        one), the reply kept for ``checkin_id`` (anyone's), the check-in in force for the
        day, the open follow-up."""
        rq, k, f = T.checkin_requests, T.checkins, T.follow_ups
        r = T.residents
        q = (
            self._resident_query(person_id)
            .add_columns(
                *[col.label(f"rq_{col.name}") for col in rq.c],
                *[col.label(f"k_{col.name}") for col in k.c],
                *[col.label(f"f_{col.name}") for col in f.c],
            )
            .outerjoin(rq, rq.c.checkin_id == checkin_id)
            .outerjoin(k, sa.and_(k.c.person_id == r.c.resident_id, k.c.day == day))
            .outerjoin(f, sa.and_(f.c.person_id == r.c.resident_id, f.c.status == "open"))
        )
        row = (await self.session.execute(q)).first()
        if row is None:
            return None, await self.reply_of(checkin_id), None, None
        m = row._mapping

        def part(prefix: str) -> SimpleNamespace | None:
            cols = {k[len(prefix) :]: v for k, v in m.items() if k.startswith(prefix)}
            return None if all(v is None for v in cols.values()) else SimpleNamespace(**cols)

        prior, in_force, follow = part("rq_"), part("k_"), part("f_")
        reply = None
        if prior is not None:
            reply = ci.Reply(
                prior.checkin_id,
                prior.person_id,
                prior.day,
                prior.status,
                prior.follow_up,
                as_utc(prior.received_at),
            )
        return (
            self._resident(row),
            reply,
            None if in_force is None else _checkin(in_force),
            None if follow is None else _follow_up(follow),
        )

    @staticmethod
    def _resident(row) -> ci.Resident:
        m = row._mapping
        policy = {k[len("policy_") :]: v for k, v in m.items() if k.startswith("policy_")}
        return ci.Resident(
            person_id=row.resident_id,
            household_id=row.household_id,
            name=row.name or "",
            grid_id=row.grid_id,
            community_id=row.community_id,
            zone=row.time_zone,
            policy=ScreeningPolicy.of(policy),
            status=row.status,
        )

    @staticmethod
    def _resident_query(person_id: str | None) -> sa.Select:
        r, b, c, cm, p, st = (
            T.residents,
            T.buildings,
            T.compounds,
            T.communities,
            T.policies,
            T.person_status,
        )
        policy_cols = [col.label(f"policy_{col.name}") for col in p.c if col.name != "community_id"]
        q = sa.select(
            r.c.resident_id,
            r.c.household_id,
            r.c.name,
            b.c.grid_id,
            c.c.community_id,
            cm.c.time_zone,
            st.c.status,
            *policy_cols,
        ).select_from(
            _where_people()
            .outerjoin(cm, cm.c.community_id == c.c.community_id)
            .outerjoin(p, p.c.community_id == c.c.community_id)
            .outerjoin(st, st.c.person_id == r.c.resident_id)
        )
        return q if person_id is None else q.where(r.c.resident_id == person_id)

    async def reply_of(self, checkin_id: str) -> ci.Reply | None:
        t = T.checkin_requests
        row = (await self.session.execute(sa.select(t).where(t.c.checkin_id == checkin_id))).first()
        if row is None:
            return None
        return ci.Reply(
            row.checkin_id,
            row.person_id,
            row.day,
            row.status,
            row.follow_up,
            as_utc(row.received_at),
        )

    async def in_force(self, person_id: str, day: date) -> ci.Checkin | None:
        t = T.checkins
        row = (
            await self.session.execute(
                sa.select(t).where(t.c.person_id == person_id, t.c.day == day)
            )
        ).first()
        return None if row is None else _checkin(row)

    async def put(self, checkin: ci.Checkin, reply: ci.Reply, replacing: bool) -> None:
        t = T.checkins
        values = _checkin_values(checkin)
        if replacing:
            await self.session.execute(
                sa.update(t)
                .where(t.c.person_id == checkin.person_id, t.c.day == checkin.day)
                .values(values)
            )
        else:
            await self.session.execute(sa.insert(t).values(values))
        await self.session.execute(
            sa.insert(T.checkin_requests).values(
                checkin_id=reply.checkin_id,
                person_id=reply.person_id,
                day=reply.day,
                status=reply.status,
                follow_up=reply.follow_up,
                received_at=reply.received_at,
            )
        )

    async def for_checkins(
        self, keys: list[tuple[str, str, date]]
    ) -> dict[tuple[str, str, date], tuple]:
        """``for_checkin`` for many (person_id, checkin_id, day) at once, set-based: four
        queries for the lot (residents, kept replies, check-ins in force, open follow-ups),
        not one each (the edge's batches, handlers/checkins.check_in_many)."""
        people = sorted({p for p, _, _ in keys})
        ids = sorted({c for _, c, _ in keys})
        days = sorted({d for _, _, d in keys})
        r, rq, k, f = T.residents, T.checkin_requests, T.checkins, T.follow_ups
        who: dict[str, ci.Resident] = {}
        replies: dict[str, ci.Reply] = {}
        in_force: dict[tuple[str, date], ci.Checkin] = {}
        follows: dict[str, fu.FollowUp] = {}
        for i in range(0, len(people), IN_CHUNK):
            chunk = people[i : i + IN_CHUNK]
            q = self._resident_query(None).where(r.c.resident_id.in_(chunk))
            for row in await self.session.execute(q):
                who[row.resident_id] = self._resident(row)
            q = sa.select(k).where(k.c.person_id.in_(chunk), k.c.day.in_(days))
            for row in await self.session.execute(q):
                in_force[(row.person_id, row.day)] = _checkin(row)
            q = sa.select(f).where(f.c.person_id.in_(chunk), f.c.status == "open")
            for row in await self.session.execute(q):
                follows[row.person_id] = _follow_up(row)
        for i in range(0, len(ids), IN_CHUNK):
            q = sa.select(rq).where(rq.c.checkin_id.in_(ids[i : i + IN_CHUNK]))
            for row in await self.session.execute(q):
                replies[row.checkin_id] = ci.Reply(
                    row.checkin_id,
                    row.person_id,
                    row.day,
                    row.status,
                    row.follow_up,
                    as_utc(row.received_at),
                )
        out = {}
        for p, c, d in keys:
            w = who.get(p)
            out[(p, c, d)] = (
                w,
                replies.get(c),
                in_force.get((p, d)) if w else None,
                follows.get(p) if w else None,
            )
        return out

    async def put_many(self, rows: list[tuple[ci.Checkin, ci.Reply, bool]]) -> None:
        """``put`` for many (checkin, reply, replacing): one executemany a statement."""
        if not rows:
            return
        t = T.checkins
        new = [_checkin_values(c) for c, _, replacing in rows if not replacing]
        again = [
            {**_checkin_values(c), "k_person": c.person_id, "k_day": c.day}
            for c, _, replacing in rows
            if replacing
        ]
        await CHECKINS.into(self.session, new)
        if again:  # the SET clause from the rows' column names
            await self.session.execute(
                sa.update(t).where(
                    t.c.person_id == sa.bindparam("k_person"), t.c.day == sa.bindparam("k_day")
                ),
                again,
            )
        await CHECKIN_REQUESTS.into(
            self.session,
            [
                {
                    "checkin_id": reply.checkin_id,
                    "person_id": reply.person_id,
                    "day": reply.day,
                    "status": reply.status,
                    "follow_up": reply.follow_up,
                    "received_at": reply.received_at,
                }
                for _, reply, _ in rows
            ],
        )

    async def of_person(self, person_id: str, limit: int = 60) -> list[ci.Checkin]:
        t = T.checkins
        q = sa.select(t).where(t.c.person_id == person_id).order_by(t.c.day.desc()).limit(limit)
        return [_checkin(r) for r in await self.session.execute(q)]

    # --- door visits
    async def visit(self, visit_id: str) -> dict | None:
        t = T.door_visits
        row = (await self.session.execute(sa.select(t).where(t.c.visit_id == visit_id))).first()
        return None if row is None else dict(row._mapping)

    async def add_visit(self, visit: ci.Visit, members: list[dict]) -> None:
        await self.session.execute(
            sa.insert(T.door_visits).values(
                visit_id=visit.visit_id,
                household_id=visit.household_id,
                worker_id=visit.worker_id,
                visited_at=visit.visited_at,
                day=visit.day,
                members=members,
                recorded_at=visit.recorded_at,
            )
        )

    # --- reminders and missed days
    async def communities(self) -> list[tuple[str, str | None, ScreeningPolicy]]:
        cm, p = T.communities, T.policies
        q = sa.select(
            cm.c.community_id,
            cm.c.time_zone,
            *[col.label(f"policy_{col.name}") for col in p.c if col.name != "community_id"],
        ).select_from(cm.outerjoin(p, p.c.community_id == cm.c.community_id))
        out = []
        for row in await self.session.execute(q.order_by(cm.c.community_id)):
            m = row._mapping
            policy = {k[len("policy_") :]: v for k, v in m.items() if k.startswith("policy_")}
            out.append((row.community_id, row.time_zone, ScreeningPolicy.of(policy)))
        return out

    async def to_remind(
        self, community_id: str, day: date, limit: int, after: str = ""
    ) -> list[ci.ReminderTarget]:
        """Residents of the community with no check-in and no reminder for ``day``, in the
        order of their ids from ``after`` on: one set-based query (an anti-join on both),
        not one per resident; a batch starts where the last one ended."""
        r, c, k, rem = T.residents, T.compounds, T.checkins, T.checkin_reminders
        q = (
            sa.select(r.c.resident_id, r.c.name, r.c.household_id)
            .select_from(_where_people())
            .where(
                c.c.community_id == community_id,
                r.c.resident_id > after,
                ~sa.exists().where(k.c.person_id == r.c.resident_id, k.c.day == day),
                ~sa.exists().where(rem.c.person_id == r.c.resident_id, rem.c.day == day),
            )
            .order_by(r.c.resident_id)
            .limit(limit)
        )
        return [
            ci.ReminderTarget(row.resident_id, row.name or "", row.household_id)
            for row in await self.session.execute(q)
        ]

    async def reminded(self, person_ids: list[str], day: date, at: datetime) -> None:
        await REMINDERS.into(
            self.session, [{"person_id": p, "day": day, "sent_at": at} for p in person_ids]
        )

    async def missed_runs(
        self, community_id: str, day: date, days: int, limit: int, after: str = ""
    ) -> list[ci.MissedRun]:
        """Residents reminded on each of the ``days`` local days before ``day`` with no
        check-in on any of them, and no door visit asked for since their last check-in."""
        r, c, b, k = T.residents, T.compounds, T.buildings, T.checkins
        rem, dv = T.checkin_reminders, T.door_visit_requests
        first, last = day - timedelta(days=days), day - timedelta(days=1)
        yesterday = rem.alias("yesterday")
        last_checkin = (
            sa.select(sa.func.max(k.c.day))
            .where(k.c.person_id == r.c.resident_id, k.c.day < day)
            .scalar_subquery()
        )
        q = (
            sa.select(
                r.c.resident_id,
                r.c.name,
                r.c.household_id,
                b.c.grid_id,
                last_checkin.label("last_checkin_day"),
            )
            .select_from(
                _where_people().join(
                    yesterday,
                    sa.and_(yesterday.c.person_id == r.c.resident_id, yesterday.c.day == last),
                )
            )
            .where(
                c.c.community_id == community_id,
                r.c.resident_id > after,
                sa.select(sa.func.count())
                .where(rem.c.person_id == r.c.resident_id, rem.c.day.between(first, last))
                .scalar_subquery()
                == days,
                ~sa.exists().where(k.c.person_id == r.c.resident_id, k.c.day.between(first, last)),
                ~sa.exists().where(
                    dv.c.person_id == r.c.resident_id,
                    sa.or_(last_checkin.is_(None), dv.c.day > last_checkin),
                ),
            )
            .order_by(r.c.resident_id)
            .limit(limit)
        )
        return [
            ci.MissedRun(
                row.resident_id,
                row.name or "",
                row.household_id,
                row.grid_id,
                row.last_checkin_day,
            )
            for row in await self.session.execute(q)
        ]

    async def visits_requested(self, rows: list[dict]) -> None:
        if rows:
            await self.session.execute(sa.insert(T.door_visit_requests), rows)

    async def missed_follow_up_days(
        self, community_id: str, days: list[date], limit: int
    ) -> list[ms.MissedDay]:
        """One query: the community's open follow-ups joined to the candidate ``days``
        (a small literal table) on domain/missed.py's rule (after the day it began, up to
        its planned end), less the days with a check-in or a follow-up record."""
        if not days:
            return []
        r, b, c, k = T.residents, T.buildings, T.compounds, T.checkins
        f, fd = T.follow_ups, T.follow_up_days
        picks = [sa.select(sa.literal(d, sa.Date).label("day")) for d in days]
        d = (sa.union_all(*picks) if len(picks) > 1 else picks[0]).subquery("d")
        last_checkin = (
            sa.select(sa.func.max(k.c.day))
            .where(k.c.person_id == r.c.resident_id, k.c.day < d.c.day)
            .scalar_subquery()
        )
        q = (
            sa.select(
                r.c.resident_id,
                r.c.name,
                r.c.household_id,
                b.c.grid_id,
                f.c.follow_up_id,
                f.c.started_on,
                f.c.ends_on,
                d.c.day,
                last_checkin.label("last_checkin_day"),
            )
            .select_from(
                _where_people()
                .join(f, sa.and_(f.c.person_id == r.c.resident_id, f.c.status == "open"))
                .join(d, sa.and_(d.c.day > f.c.started_on, d.c.day <= f.c.ends_on))
            )
            .where(
                c.c.community_id == community_id,
                ~sa.exists().where(k.c.person_id == r.c.resident_id, k.c.day == d.c.day),
                ~sa.exists().where(fd.c.person_id == r.c.resident_id, fd.c.day == d.c.day),
            )
            .order_by(r.c.resident_id, d.c.day)
            .limit(limit)
        )
        return [
            ms.MissedDay(
                row.resident_id,
                row.name or "",
                row.household_id,
                row.grid_id,
                row.follow_up_id,
                row.started_on,
                row.ends_on,
                row.day,
                row.last_checkin_day,
            )
            for row in await self.session.execute(q)
        ]
