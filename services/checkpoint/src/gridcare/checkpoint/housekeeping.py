"""The checkpoint's periodic work: overdue permits and the register's retention."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from gridcare.shared import outbox
from gridcare.shared.envelope import Envelope, stable_id, utcnow
from gridcare.shared.events import PermitOverdue
from gridcare.shared.service import Service
from gridcare.shared.store import as_utc

from . import tables as T
from .feed import NAME as FEED
from .state import GateState

log = logging.getLogger(__name__)


async def alert_overdue(svc: Service, state: GateState) -> int:
    """One ``PermitOverdue`` per permit whose holder is out past its return time."""
    now = utcnow()
    p = T.permits.c
    async with svc.store.transaction() as s:
        rows = (
            await s.execute(
                sa.select(T.permits).where(
                    p.state == "out", p.return_by < now, p.overdue_alerted_at.is_(None)
                )
            )
        ).all()
        for r in rows:
            ev = PermitOverdue(
                permit_id=r.permit_id,
                holder_id=r.holder_id,
                household_id=r.household_id,
                compound_id=r.compound_id,
                exited_at=as_utc(r.exited_at),
                return_by=as_utc(r.return_by),
            )
            env = Envelope.wrap(
                ev, source="checkpoint", event_id=stable_id(ev.TYPE, r.permit_id, str(r.exited_at))
            )
            await outbox.add(s, svc.store, env, ev.subject())
            await s.execute(
                sa.update(T.permits)
                .where(p.permit_id == r.permit_id)
                .values(overdue_alerted_at=now)
            )
    if rows:
        svc.relay.wake()
        log.warning("%d permit holder(s) overdue", len(rows))
    return len(rows)


async def purge_register(svc: Service) -> datetime:
    """Nothing older than the retention period stays in the register (except passages the
    feed has not announced yet: they go on the first purge after it has). Returns the
    cutoff: what was scanned before it is gone."""
    cutoff = utcnow() - timedelta(days=svc.settings.register_retention_days)
    announced = (
        sa.select(T.passage_feed.c.sent_to).where(T.passage_feed.c.name == FEED).scalar_subquery()
    )
    async with svc.store.transaction() as s:
        n = (
            await s.execute(
                sa.delete(T.passages).where(
                    T.passages.c.scanned_at < cutoff, T.passages.c.id <= announced
                )
            )
        ).rowcount
        await s.execute(sa.delete(T.door_events).where(T.door_events.c.opened_at < cutoff))
        await s.execute(sa.delete(T.overrides).where(T.overrides.c.at < cutoff))
        await s.execute(
            sa.delete(T.permits).where(
                T.permits.c.state == "closed", T.permits.c.valid_until < cutoff
            )
        )
    if n:
        log.info("purged %d passages older than %s", n, cutoff.isoformat())
    return cutoff
