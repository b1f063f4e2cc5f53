"""Notify's repositories on its store."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.contracts.refdata import (
    Building,
    Channel,
    ChatGroup,
    Community,
    CommunityPolicy,
    Compound,
    Gate,
    Grid,
    Household,
    Resident,
    Staff,
    Volunteer,
)
from gridcare.shared.localtime import as_utc

from ..domain.alerts import Alert
from ..domain.messages import WAITING, Message
from ..domain.recipients import Route
from . import tables as T

REFERENCE_TABLES = {
    Community.TYPE: T.communities,
    Compound.TYPE: T.compounds,
    Grid.TYPE: T.grids,
    Building.TYPE: T.buildings,
    Household.TYPE: T.households,
    Resident.TYPE: T.residents,
    Gate.TYPE: T.gates,
    Staff.TYPE: T.staff,
    Volunteer.TYPE: T.volunteers,
    ChatGroup.TYPE: T.chat_groups,
    Channel.TYPE: T.channels,
    CommunityPolicy.TYPE: T.policies,
}

MESSAGE_TIMES = ("next_attempt_at", "created_at", "give_up_at", "expires_at", "sent_at")
MESSAGE_TIMES += ("delivered_at", "acknowledged_at")
ALERT_TIMES = ("due_at", "raised_at", "acknowledged_at")


def message_row(m: Message) -> dict[str, Any]:
    row = {f.name: getattr(m, f.name) for f in dataclasses.fields(m)}
    row["routes"] = [r.as_list() for r in m.routes]
    return row


def to_message(row: Any) -> Message:
    values = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    for k in MESSAGE_TIMES:
        values[k] = as_utc(values[k])
    values["routes"] = tuple(Route.of(r) for r in values["routes"])
    return Message(**values)


def to_alert(row: Any) -> Alert:
    values = dict(row._mapping)
    for k in ALERT_TIMES:
        values[k] = as_utc(values[k])
    return Alert(**values)


#: What a message's save changes (its text and who it is for never change).
MUTABLE = (
    "route",
    "status",
    "attempts",
    "route_failures",
    "next_attempt_at",
    "give_up_at",
    "sent_at",
    "delivered_at",
    "acknowledged_at",
    "delivery_key",
    "provider_ref",
    "sent_channel",
    "last_error",
)


class Messages:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._update = (
            sa.update(T.messages)
            .where(T.messages.c.message_id == sa.bindparam("_id"))
            .values({c: sa.bindparam(c) for c in MUTABLE})
        )

    async def add_new(self, messages: Sequence[Message]) -> int:
        """Insert the messages not there yet (the same request expanded again after a
        crash adds nobody twice); returns how many were new."""
        if not messages:
            return 0
        ids = [m.message_id for m in messages]
        known = set(
            (
                await self.session.scalars(
                    sa.select(T.messages.c.message_id).where(T.messages.c.message_id.in_(ids))
                )
            ).all()
        )
        new = [message_row(m) for m in messages if m.message_id not in known]
        if new:
            await self.session.execute(sa.insert(T.messages), new)
        return len(new)

    async def get(self, message_id: str) -> Message | None:
        q = sa.select(T.messages).where(T.messages.c.message_id == message_id)
        row = (await self.session.execute(q)).first()
        return None if row is None else to_message(row)

    async def find_one(self, *, delivery_key: str | None = None, provider_ref: str | None = None):
        c = T.messages.c
        cond = c.delivery_key == delivery_key if delivery_key else c.provider_ref == provider_ref
        row = (await self.session.execute(sa.select(T.messages).where(cond).limit(1))).first()
        return None if row is None else to_message(row)

    async def save(self, messages: Iterable[Message]) -> None:
        rows = [{"_id": m.message_id, **{c: getattr(m, c) for c in MUTABLE}} for m in messages]
        if rows:
            await self.session.execute(self._update, rows)

    async def due(self, now: datetime, limit: int, max_priority: int = 2) -> list[Message]:
        """Waiting messages whose time has come: the most urgent first, then the oldest."""
        c = T.messages.c
        q = (
            sa.select(T.messages)
            .where(c.status.in_(WAITING), c.next_attempt_at <= now, c.priority <= max_priority)
            .order_by(c.priority, c.next_attempt_at, c.seq)
            .limit(limit)
        )
        return [to_message(r) for r in await self.session.execute(q)]

    async def next_due(self) -> datetime | None:
        c = T.messages.c
        return as_utc(
            await self.session.scalar(
                sa.select(sa.func.min(c.next_attempt_at)).where(c.status.in_(WAITING))
            )
        )

    async def held_for(self, recipient_id: str) -> list[Message]:
        c = T.messages.c
        q = (
            sa.select(T.messages)
            .where(c.recipient_id == recipient_id, c.status == "held")
            .order_by(c.created_at)
        )
        return [to_message(r) for r in await self.session.execute(q)]

    async def sent_since(self, recipients: Sequence[str], since: datetime) -> dict[str, int]:
        """Messages under the hourly cap (neither urgent nor alerts) sent to each of these
        recipients since ``since``."""
        c = T.messages.c
        q = (
            sa.select(c.recipient_id, sa.func.count())
            .where(
                c.recipient_id.in_(list(recipients)),
                c.sent_at >= since,
                c.priority > 0,
                c.alert_id.is_(None),
            )
            .group_by(c.recipient_id)
        )
        return dict((await self.session.execute(q)).all())

    async def sending_to_queued(self, now: datetime) -> int:
        """At start: what a crash left ``sending`` goes again (with its delivery key)."""
        c = T.messages.c
        done = await self.session.execute(
            sa.update(T.messages).where(c.status == "sending").values(status="queued")
        )
        return done.rowcount or 0

    async def counts(self, request_id: str) -> dict[str, int]:
        c = T.messages.c
        q = (
            sa.select(c.status, sa.func.count())
            .where(c.request_id == request_id)
            .group_by(c.status)
        )
        return dict((await self.session.execute(q)).all())

    async def cancel_waiting(self, request_id: str) -> int:
        c = T.messages.c
        done = await self.session.execute(
            sa.update(T.messages)
            .where(c.request_id == request_id, c.status.in_(WAITING))
            .values(status="cancelled")
        )
        return done.rowcount or 0

    async def of_alert(self, alert_id: str) -> list[Message]:
        q = sa.select(T.messages).where(T.messages.c.alert_id == alert_id)
        return [to_message(r) for r in await self.session.execute(q)]

    async def newest(self, limit: int, recipient_id: str | None = None) -> list[Message]:
        c = T.messages.c
        q = sa.select(T.messages).order_by(c.created_at.desc(), c.seq.desc()).limit(limit)
        if recipient_id:
            q = q.where(c.recipient_id == recipient_id)
        return [to_message(r) for r in await self.session.execute(q)]

    async def depth(self) -> dict[int, int]:
        """Waiting messages per priority."""
        c = T.messages.c
        q = sa.select(c.priority, sa.func.count()).where(c.status.in_(WAITING)).group_by(c.priority)
        return dict((await self.session.execute(q)).all())

    # --- history ---------------------------------------------------------------------------
    async def record(self, entries: Sequence[dict[str, Any]]) -> None:
        """History entries: message_id, at, status, channel, detail."""
        if entries:
            await self.session.execute(sa.insert(T.history), list(entries))

    async def history(self, message_id: str) -> list[dict[str, Any]]:
        h = T.history.c
        q = sa.select(T.history).where(h.message_id == message_id).order_by(h.id)
        return [{**dict(r._mapping), "at": as_utc(r.at)} for r in await self.session.execute(q)]


class Requests:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, request_id: str) -> dict[str, Any] | None:
        row = (
            await self.session.execute(
                sa.select(T.requests).where(T.requests.c.request_id == request_id)
            )
        ).first()
        return None if row is None else dict(row._mapping)

    async def put(self, row: dict[str, Any]) -> None:
        if await self.get(row["request_id"]) is None:
            await self.session.execute(sa.insert(T.requests).values(row))
        else:
            values = {k: v for k, v in row.items() if k != "request_id"}
            await self.session.execute(
                sa.update(T.requests)
                .where(T.requests.c.request_id == row["request_id"])
                .values(values)
            )


class Alerts:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, alert_id: str) -> Alert | None:
        row = (
            await self.session.execute(sa.select(T.alerts).where(T.alerts.c.alert_id == alert_id))
        ).first()
        return None if row is None else to_alert(row)

    async def save(self, alert: Alert) -> None:
        row = dataclasses.asdict(alert)
        if await self.get(alert.alert_id) is None:
            await self.session.execute(sa.insert(T.alerts).values(row))
        else:
            del row["alert_id"]
            await self.session.execute(
                sa.update(T.alerts).where(T.alerts.c.alert_id == alert.alert_id).values(row)
            )

    async def due(self, now: datetime) -> list[Alert]:
        a = T.alerts.c
        q = sa.select(T.alerts).where(a.status == "open", a.due_at <= now).order_by(a.due_at)
        return [to_alert(r) for r in await self.session.execute(q)]

    async def open_count(self) -> int:
        a = T.alerts.c
        return int(
            await self.session.scalar(
                sa.select(sa.func.count()).select_from(T.alerts).where(a.status != "acknowledged")
            )
            or 0
        )

    async def add_recipient(
        self, alert_id: str, person_id: str, name: str, language: str, step: int, at: datetime
    ) -> None:
        r = T.alert_recipients.c
        known = await self.session.scalar(
            sa.select(sa.literal(1)).where(r.alert_id == alert_id, r.person_id == person_id)
        )
        if not known:
            await self.session.execute(
                sa.insert(T.alert_recipients).values(
                    alert_id=alert_id,
                    person_id=person_id,
                    name=name,
                    language=language,
                    step=step,
                    notified_at=at,
                )
            )

    async def recipients(self, alert_id: str) -> list[dict[str, Any]]:
        r = T.alert_recipients.c
        q = sa.select(T.alert_recipients).where(r.alert_id == alert_id).order_by(r.notified_at)
        return [dict(x._mapping) for x in await self.session.execute(q)]
