"""Notify's service layer: one function per message, command or query.

The road of a message (``docs/notify.md``):

1. :func:`request` takes a ``NotificationRequested``: the recipients it stands for, each
   one's text in their language, their routes; one row per (request, recipient), written
   before anything is sent. A broadcast is expanded in chunks, resumably.
2. :func:`claim` (the sender's, ``entrypoints/sender.py``) takes the messages whose time
   has come, most urgent first; quiet hours, the hourly cap, digests and expiry decide
   which go now; the attempt is committed before any provider is called.
3. The sender calls the providers, outside any transaction.
4. :func:`settle` commits each outcome: sent; or tried again later, on the same route or
   the next (failover); or, past the give-up horizon, failed: a dead letter.

Alerts that need a person: :func:`acknowledge`, :func:`escalate_due`. Delivery receipts:
:func:`receipt`. Broadcasts: :func:`start_broadcast`, :func:`broadcast_status`,
:func:`cancel_broadcast`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gridcare.contracts.notify import (
    AlertAcknowledged,
    AlertUnacknowledged,
    NotificationDelivered,
    NotificationFailed,
    NotificationRequested,
    ToPerson,
    ToResidents,
    ToRole,
)
from gridcare.shared import projection
from gridcare.shared.envelope import new_id, stable_id
from gridcare.shared.errors import ApiError, Permanent
from gridcare.shared.localtime import iso

from .domain import alerts as alerting
from .domain.alerts import Alert
from .domain.links import Links
from .domain.messages import DONE, RANK, Message, message_id
from .domain.policy import NotifyPolicy, quiet_until
from .domain.recipients import GROUP_LANGUAGES, Contact, Unreachable, routes
from .domain.templates import Rendered, TemplateProblem, Templates, UnknownTemplate
from .unit_of_work import NotifyUnitOfWork as UoW

#: Households whose residents are written per transaction when a broadcast is expanded
#: (about eighty people: a short hold of the store, so an urgent request is not kept waiting).
HOUSEHOLDS_CHUNK = 20
#: A recipient over the hourly cap is looked at again this much later.
CAP_RETRY = timedelta(minutes=5)
#: The role whose place a request's ``places`` names, for each role of a chain.
ROLE_PLACE = {
    "grid_worker": "grid_id",
    "secretary": "community_id",
    "community_doctor": "community_id",
    "duty_staff": "gate_id",
}


@dataclass(frozen=True)
class Delivery:
    """What a handler needs beyond the unit of work: the templates, the clock's now, how
    long a message is tried, the links of alerts."""

    templates: Templates
    give_up_s: float = 3600.0
    links: Links | None = None


async def reference_data_changed(entity: Any, uow: UoW) -> None:
    """Keep notify's copy of a row of reference data (the kinds it needs)."""
    await projection.keep(entity, uow)


# --- 1. a request ---------------------------------------------------------------------------
async def request(ev: NotificationRequested, uow: UoW, d: Delivery, now: datetime) -> int:
    """Take a request: one message per recipient, written before anything is sent.
    Returns how many messages are new. Refused for good (a dead letter, with the reason):
    an unknown template, a missing parameter, a recipient nobody is, a place that is not.
    The same request again adds nobody twice.

    A request to a person, a role or a group is one transaction (an urgent alert waits for
    nothing else); a broadcast is written a chunk of households at a time, each chunk its
    own transaction, and resumes where it was after a restart."""
    if ev.priority == "urgent" and ev.digest:
        raise Permanent("an urgent message is never held for a digest")
    try:
        missing = d.templates.required_params(ev.template) - set(ev.params)
    except UnknownTemplate:
        raise Permanent(f"unknown template {ev.template!r}") from None
    if missing:
        raise Permanent(f"template {ev.template!r} needs parameters: {', '.join(sorted(missing))}")
    if isinstance(ev.recipient, ToResidents):
        return await _broadcast(ev, uow, d, now)
    uow.urgent = ev.priority == "urgent"  # it goes before a broadcast's writes waiting
    async with uow:
        if not await _open(ev, uow, now):
            await uow.commit()
            return 0
        community = await _community_of(ev, uow)
        policy = NotifyPolicy.of(await uow.places.policy(community))
        alert = await _alert(ev, uow, community, policy, now)
        writer = _Writer(uow, d, now, policy)
        built = await writer.messages(
            await _contacts(ev, uow),
            request_id=ev.request_id,
            template=ev.template,
            params=ev.params,
            priority=ev.priority,
            alert=alert,
            digest=ev.digest,
            expires_at=ev.expires_at,
        )
        if not built:
            raise Permanent(f"nobody to send to: {_describe(ev)} (no way to reach them)")
        new = await writer.add(built, alert, step=0)
        row = _request_row(ev, now, "expanded", len(built), alert.alert_id if alert else None)
        await uow.requests.put(row)
        await uow.commit()
    return new


async def _broadcast(ev: NotificationRequested, uow: UoW, d: Delivery, now: datetime) -> int:
    r = ev.recipient
    assert isinstance(r, ToResidents)
    async with uow:
        if not await _open(ev, uow, now):
            await uow.commit()
            return 0
        if not await uow.places.place_known(r.place, r.place_id):
            raise Permanent(f"unknown recipient: no {r.place} {r.place_id!r}")
        community = await uow.places.community_of(r.place, r.place_id)
        policy = NotifyPolicy.of(await uow.places.policy(community))
        households = await uow.places.households(r.place, r.place_id)
        await uow.requests.put(_request_row(ev, now, "expanding", 0, None))
        await uow.commit(handled=False)
    new = total = 0
    writer = _Writer(uow, d, now, policy)
    for i in range(0, len(households), HOUSEHOLDS_CHUNK):
        async with uow:
            if (await uow.requests.get(ev.request_id) or {}).get("status") == "cancelled":
                await uow.commit()
                return new
            chunk = households[i : i + HOUSEHOLDS_CHUNK]
            built = await writer.messages(
                await uow.places.residents_of(chunk, community),
                request_id=ev.request_id,
                template=ev.template,
                params=ev.params,
                priority=ev.priority,
                alert=None,
                digest=ev.digest,
                expires_at=ev.expires_at,
                first_seq=total,
            )
            new += await writer.add(built, None, step=0)
            total += len(built)
            await uow.commit(handled=False)
    async with uow:
        if total == 0:
            raise Permanent(f"nobody to send to: {_describe(ev)}")
        await uow.requests.put(
            {"request_id": ev.request_id, "status": "expanded", "recipients": total}
        )
        await uow.commit()
    return new


async def _open(ev: NotificationRequested, uow: UoW, now: datetime) -> bool:
    """Whether a request is still to be done: not cancelled (a broadcast stopped), not
    expired (recorded as such)."""
    known = await uow.requests.get(ev.request_id)
    if known and known["status"] == "cancelled":
        return False
    if ev.expires_at is not None and ev.expires_at <= now:
        await uow.requests.put(_request_row(ev, now, "expired", 0, None))
        return False
    return True


async def _alert(
    ev: NotificationRequested, uow: UoW, community: str | None, policy: NotifyPolicy, now
) -> Alert | None:
    """The alert a request raises (once: the same request again finds it)."""
    if not ev.needs_ack:
        return None
    alert = await uow.alerts.get(alerting.new_alert_id(ev.request_id))
    if alert is None:
        alert = alerting.raise_alert(
            ev.request_id,
            ev.alert_kind or ev.template,
            ev.template,
            dict(ev.params),
            dict(ev.places),
            community,
            policy.chain(ev.alert_kind),
            now,
        )
        await uow.alerts.save(alert)
    return alert


async def _community_of(ev: NotificationRequested, uow: UoW) -> str | None:
    r = ev.recipient
    if isinstance(r, ToPerson):
        contact = await uow.places.contact(r.person_id)
        return contact.community_id if contact else None
    if isinstance(r, ToRole):
        place = {"grid_worker": "grid", "duty_staff": "gate"}.get(r.role, "community")
        return await uow.places.community_of(place, r.place_id)
    return await uow.places.community_of(r.place, r.place_id)


async def _contacts(ev: NotificationRequested, uow: UoW) -> list[Contact]:
    """The contacts a request to a person, a role or a group stands for."""
    r = ev.recipient
    if isinstance(r, ToPerson):
        found = await uow.places.contact(r.person_id)
        if found is None:
            raise Permanent(f"unknown recipient: no person {r.person_id!r}")
        return [found]
    if isinstance(r, ToRole):
        holders = await uow.places.role(r.role, r.place_id)
        if not holders:
            raise Permanent(f"unknown recipient: nobody is {r.role} of {r.place_id!r}")
        return holders
    group = await uow.places.group(r.place, r.place_id)
    if group is None:
        raise Permanent(f"unknown recipient: no chat group of {r.place} {r.place_id!r}")
    return [group]


def _describe(ev: NotificationRequested) -> str:
    return ev.recipient.model_dump_json()


def _request_row(
    ev: NotificationRequested, now: datetime, status: str, count: int, alert_id: str | None
) -> dict[str, Any]:
    return {
        "request_id": ev.request_id,
        "template": ev.template,
        "priority": ev.priority,
        "recipient": ev.recipient.model_dump(),
        "requested_by": ev.requested_by,
        "status": status,
        "recipients": count,
        "alert_id": alert_id,
        "received_at": now,
    }


class _Writer:
    """Messages for contacts: each one's text rendered in their language (once per
    language and link), their routes from the community's providers."""

    def __init__(self, uow: UoW, d: Delivery, now: datetime, policy: NotifyPolicy) -> None:
        self.uow, self.d, self.now, self.policy = uow, d, now, policy
        self._texts: dict[tuple[str, str | None, str], Rendered] = {}
        self._providers: dict[str | None, dict[str, str]] = {}
        self._zones: dict[str | None, str | None] = {}

    async def messages(
        self,
        contacts: list[Contact],
        *,
        request_id: str,
        template: str,
        params: Mapping[str, Any],
        priority: str,
        alert: Alert | None,
        digest: bool = False,
        expires_at: datetime | None = None,
        first_seq: int = 0,
        escalation: Mapping[str, Any] | None = None,
    ) -> list[Message]:
        out = []
        for i, c in enumerate(contacts):
            zone = await self._zone(c.community_id)
            try:
                path = routes(c, await self._provider_urls(c.community_id))
            except Unreachable as exc:
                if len(contacts) == 1:
                    raise Permanent(f"unknown recipient: {exc}") from None
                continue  # one of many without a way to reach them: the rest go
            ack = None
            if alert is not None and self.d.links is not None and not c.is_group:
                ack = self.d.links.url(alert.alert_id, c.contact_id)
            text = self._render(template, c.language, params, zone, alert, ack, escalation)
            held = digest and priority != "urgent"
            out.append(
                Message(
                    message_id=message_id(request_id, c.contact_id),
                    seq=first_seq + i,
                    request_id=request_id,
                    recipient_id=c.contact_id,
                    recipient_name=c.name,
                    community_id=c.community_id,
                    time_zone=zone,
                    template=template,
                    language=text.language,
                    title=text.title,
                    body=text.body,
                    sms=text.sms,
                    priority=RANK[priority],
                    alert_id=alert.alert_id if alert else None,
                    digest=held,
                    routes=tuple(path),
                    route=0,
                    status="held" if held else "queued",
                    attempts=0,
                    route_failures=0,
                    next_attempt_at=self.now,
                    created_at=self.now,
                    give_up_at=self.now + timedelta(seconds=self.d.give_up_s),
                    expires_at=expires_at,
                )
            )
        return out

    async def add(self, built: list[Message], alert: Alert | None, step: int) -> int:
        """Write the new ones (a held one joins its recipient's digest), with history."""
        ready = []
        for m in built:
            if m.status == "held":
                held = await self.uow.messages.held_for(m.recipient_id)
                due = (
                    held[0].next_attempt_at
                    if held
                    else (self.now + timedelta(minutes=self.policy.digest_minutes))
                )
                m = m.wait_until(due, "held")
            ready.append(m)
        new = await self.uow.messages.add_new(ready)
        if new:
            await self.uow.messages.record(
                [_entry(m, self.now, m.status, None, f"for {m.recipient_name}") for m in ready]
            )
        if alert is not None:
            for m in built:
                await self.uow.alerts.add_recipient(
                    alert.alert_id, m.recipient_id, m.recipient_name, m.language, step, self.now
                )
        return new

    def _render(
        self,
        template: str,
        language: str,
        params: Mapping[str, Any],
        zone: str | None,
        alert: Alert | None,
        ack: str | None,
        escalation: Mapping[str, Any] | None,
    ) -> Rendered:
        key = (language, ack, zone or "")
        if key not in self._texts:
            self._texts[key] = self._rendered(
                template, language, params, zone, alert, ack, escalation
            )
        return self._texts[key]

    def _rendered(self, template, language, params, zone, alert, ack, escalation) -> Rendered:
        def one(lang: str) -> Rendered:
            try:
                return self.d.templates.render(
                    template,
                    lang,
                    params,
                    zone=zone,
                    alert_id=alert.alert_id if alert else None,
                    ack_url=ack,
                    escalation=escalation,
                )
            except UnknownTemplate:
                raise Permanent(f"unknown template {template!r}") from None
            except TemplateProblem as exc:  # a missing parameter, a broken file
                raise Permanent(f"template {template!r}: {exc}") from None

        if language != GROUP_LANGUAGES:
            return one(language)
        parts = [one(lang) for lang in GROUP_LANGUAGES.split("+")]
        return Rendered(
            template=template,
            language=GROUP_LANGUAGES,
            title=" / ".join(dict.fromkeys(p.title for p in parts)),
            body="\n\n".join(dict.fromkeys(p.body for p in parts)),
            sms=parts[0].sms,
        )

    async def _zone(self, community: str | None) -> str | None:
        if community not in self._zones:
            self._zones[community] = await self.uow.places.zone(community)
        return self._zones[community]

    async def _provider_urls(self, community: str | None) -> dict[str, str]:
        if community not in self._providers:
            found = await self.uow.places.providers(community)
            self._providers[community] = {k: p.url for k, p in found.items()}
        return self._providers[community]


def _entry(m: Message, at: datetime, status: str, channel: str | None, detail: str | None):
    return {
        "message_id": m.message_id,
        "at": at,
        "status": status,
        "channel": channel,
        "detail": (detail or "")[:1000] or None,
    }


# --- 2. claiming what is due --------------------------------------------------------------------
async def claim(
    uow: UoW,
    d: Delivery,
    now: datetime,
    limit: int,
    max_priority: int = 2,
    urgent_waiting: bool = False,
) -> list[Message]:
    """The messages to send now (the attempt committed): the most urgent first. One that is
    neither urgent nor an alert to acknowledge waits out the community's quiet hours and
    its recipient's hourly cap; one past its expiry ends; the held ones of a recipient
    whose digest is due go as one. ``urgent_waiting``: an urgent message was just
    written, so this claim goes before ordinary writers waiting for the store."""
    uow.urgent = urgent_waiting or max_priority == 0
    async with uow:
        due = await uow.messages.due(now, limit, max_priority)
        if not due:
            await uow.commit(handled=False)
            return []
        policies: dict[str | None, NotifyPolicy] = {}
        for m in due:
            if m.community_id not in policies:
                policies[m.community_id] = NotifyPolicy.of(await uow.places.policy(m.community_id))
        sent = await uow.messages.sent_since(
            list({m.recipient_id for m in due if not m.pressing}), now - timedelta(hours=1)
        )
        changed, ready, log = [], [], []
        bundled: set[str] = set()  # held notices already put in a digest in this round
        for m in due:
            if m.message_id in bundled:
                continue
            policy = policies[m.community_id]
            if m.expires_at is not None and m.expires_at <= now:
                changed.append(m.ended("expired"))
                log.append(_entry(m, now, "expired", None, "not sent by its expiry"))
                continue
            if not m.pressing:  # an urgent message or an alert waits for neither
                until = quiet_until(now, m.time_zone, policy.quiet_hours)
                if until is not None:
                    changed.append(m.wait_until(until, m.status))
                    log.append(
                        _entry(
                            m, now, m.status, None, f"quiet hours until {iso(until, m.time_zone)}"
                        )
                    )
                    continue
                if sent.get(m.recipient_id, 0) >= policy.hourly_cap:
                    changed.append(m.wait_until(now + CAP_RETRY, m.status))
                    continue
                sent[m.recipient_id] = sent.get(m.recipient_id, 0) + 1
            if m.status == "held":
                m = await _digest(m, uow, d, now, policy, changed, log)
                if m is None:
                    continue
                bundled.update(c.message_id for c in changed if c.status == "bundled")
            ready.append(m.claimed(now))
            log.append(_entry(m, now, "sending", m.current.channel, f"attempt {m.attempts + 1}"))
        await uow.messages.save(changed)
        await uow.messages.add_new(ready)  # a digest is a message of its own
        await uow.messages.save(ready)
        await uow.messages.record(log)
        await uow.commit(handled=False)
    return ready


async def _digest(
    m: Message,
    uow: UoW,
    d: Delivery,
    now: datetime,
    policy: NotifyPolicy,
    changed: list[Message],
    log: list[dict[str, Any]],
) -> Message | None:
    """A recipient's digest is due: their held notices become one message (its own id:
    the recipient and the first notice), each notice marked bundled into it."""
    held = [h for h in await uow.messages.held_for(m.recipient_id) if h.next_attempt_at <= now]
    if not held:
        return None
    first = held[0]
    if len(held) == 1:
        return dataclasses.replace(first, status="queued")
    items = [{"title": h.title, "body": h.body} for h in held]
    params = {"items": items, "count": len(items), "period_minutes": policy.digest_minutes}
    try:
        text = d.templates.render(
            "digest", first.language.split("+")[0], params, zone=first.time_zone
        )
    except TemplateProblem as exc:  # a bug of ours: send them one by one
        log.append(_entry(first, now, "queued", None, f"no digest: {exc}"))
        return dataclasses.replace(first, status="queued")
    digest_id = stable_id("digest", first.recipient_id, first.message_id)
    bundle = dataclasses.replace(
        first,
        message_id=digest_id,
        request_id=f"digest-{digest_id[:16]}",
        template="digest",
        title=text.title,
        body=text.body,
        sms=text.sms,
        digest=False,
        status="queued",
    )
    for h in held:
        changed.append(h.ended("bundled"))
        log.append(_entry(h, now, "bundled", None, f"in digest {digest_id}"))
    return bundle


# --- 4. outcomes --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    message: Message  # as claimed
    ok: bool
    provider_ref: str | None = None
    error: str = ""
    retry: bool = True
    circuit_open: bool = False


async def settle(
    outcomes: list[Outcome], uow: UoW, now: datetime, retry_after: Callable[[int], float]
) -> list[Message]:
    """Commit what the providers said. Returns the messages that failed for good (past
    the give-up horizon on every route): the caller records them as dead letters."""
    gave_up: list[Message] = []
    async with uow:
        done, log = [], []
        for o in outcomes:
            m, channel = o.message, o.message.current.channel
            if o.ok:
                sent = m.accepted(now, o.provider_ref)
                done.append(sent)
                log.append(_entry(m, now, "sent", channel, o.provider_ref))
                uow.emit(
                    NotificationDelivered(
                        notification_id=m.message_id,
                        recipient_id=m.recipient_id,
                        channel=channel,
                        cause_type=m.template,
                        delivered_at=now,
                        request_id=m.request_id,
                    ),
                    event_id=stable_id("NotificationDelivered", m.message_id),
                )
                continue
            after = m.failed_attempt(
                now,
                o.error,
                retry=o.retry,
                circuit_open=o.circuit_open,
                delay_s=retry_after(m.attempts),
            )
            done.append(after)
            detail = (
                o.error
                if after.status == "failed"
                else (
                    f"{o.error}; next: {after.current.channel} "
                    f"at {iso(after.next_attempt_at, None)}"
                )
            )
            log.append(_entry(m, now, after.status, channel, detail))
            if after.status == "failed":
                gave_up.append(after)
                uow.emit(
                    NotificationFailed(
                        notification_id=m.message_id,
                        request_id=m.request_id,
                        recipient_id=m.recipient_id,
                        channel=channel,
                        reason=o.error[:1000],
                        failed_at=now,
                    ),
                    event_id=stable_id("NotificationFailed", m.message_id, str(m.attempts)),
                )
        await uow.messages.save(done)
        await uow.messages.record(log)
        await uow.commit(handled=False)
    return gave_up


async def retry(notification_id: str, uow: UoW, d: Delivery, now: datetime) -> bool:
    """A message given up on goes once more (a dead letter replayed): from its first
    route, with a new give-up horizon. False if it is not (any longer) a failed one."""
    async with uow:
        m = await uow.messages.get(notification_id)
        if m is None or m.status != "failed":
            await uow.commit()
            return False
        again = m.requeued(now, now + timedelta(seconds=d.give_up_s))
        await uow.messages.save([again])
        await uow.messages.record([_entry(m, now, "queued", None, "replayed")])
        await uow.commit()
    return True


async def restart(uow: UoW, now: datetime) -> int:
    """At start: the messages a crash left ``sending`` go again, with the same delivery
    key (the one window left: the provider may have had it already)."""
    async with uow:
        n = await uow.messages.sending_to_queued(now)
        await uow.commit(handled=False)
    return n


# --- receipts -----------------------------------------------------------------------------------
class UnknownMessage(LookupError):
    pass


async def receipt(
    uow: UoW,
    now: datetime,
    retry_after: Callable[[int], float],
    *,
    status: str,
    key: str | None = None,
    provider_ref: str | None = None,
    at: datetime | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    """A provider's delivery receipt, by our key or its own id. ``delivered`` is recorded;
    ``failed`` (an SMS that never arrived) sends the message on its next route. A receipt
    for a message nobody knows is refused (:class:`UnknownMessage`)."""
    async with uow:
        m = await uow.messages.find_one(delivery_key=key, provider_ref=provider_ref)
        if m is None:
            raise UnknownMessage(
                f"no message with {'key' if key else 'provider id'} {key or provider_ref}"
            )
        at = at or now
        channel = m.sent_channel or m.current.channel
        if status == "delivered":
            if m.status in ("sent", "sending", "queued"):
                m = dataclasses.replace(m, status="delivered", delivered_at=at)
            else:
                m = dataclasses.replace(m, delivered_at=m.delivered_at or at)
            entry = _entry(m, at, "delivered", channel, detail)
        elif status == "failed" and m.status in ("sent", "delivered"):
            m = m.failed_attempt(
                now,
                detail or "the provider could not deliver it",
                retry=False,
                circuit_open=False,
                delay_s=retry_after(m.attempts),
            )
            entry = _entry(m, at, "undelivered", channel, detail)
        else:
            entry = _entry(m, at, f"receipt:{status}", channel, detail)
        await uow.messages.save([m])
        await uow.messages.record([entry])
        await uow.commit(handled=False)
    return {"message_id": m.message_id, "status": m.status}


# --- alerts -------------------------------------------------------------------------------------
class AckRefused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


async def acknowledge(
    alert_id: str, person_id: str, via: str, uow: UoW, d: Delivery, now: datetime
) -> dict[str, Any]:
    """A recipient takes an alert: the chain stops at once, its messages not sent yet are
    cancelled, and everyone else it went to is told who took it."""
    async with uow:
        alert = await uow.alerts.get(alert_id)
        if alert is None:
            raise AckRefused("unknown_alert", f"no alert {alert_id}")
        people = await uow.alerts.recipients(alert_id)
        by_id = {p["person_id"]: p for p in people}
        name = by_id.get(person_id, {}).get("name", person_id)
        try:
            taken, first = alerting.acknowledge(alert, person_id, name, set(by_id), now)
        except alerting.NotYours:
            raise AckRefused("not_yours", f"alert {alert_id} was not sent to {person_id}") from None
        if first:
            await uow.alerts.save(taken)
            mine = await uow.messages.of_alert(alert_id)
            changed = [
                dataclasses.replace(m, status="acknowledged", acknowledged_at=now)
                if m.recipient_id == person_id
                else m.ended("cancelled", "the alert was taken")
                for m in mine
                if m.status not in DONE or m.recipient_id == person_id
            ]
            await uow.messages.save(changed)
            await uow.messages.record(
                [_entry(m, now, m.status, None, f"taken by {name} ({via})") for m in changed]
            )
            uow.emit(
                AlertAcknowledged(
                    alert_id=alert_id,
                    kind=alert.kind,
                    request_id=alert.request_id,
                    acknowledged_by=person_id,
                    acknowledged_at=now,
                    via="link" if via == "link" else "nats",
                )
            )
            others = [p for p in people if p["person_id"] != person_id]
            if others:
                contacts = [c for p in others if (c := await uow.places.contact(p["person_id"]))]
                policy = NotifyPolicy.of(await uow.places.policy(alert.community_id))
                writer = _Writer(uow, d, now, policy)
                told = await writer.messages(
                    contacts,
                    request_id=stable_id("taken", alert_id),
                    template="alert.taken",
                    params={"alert_id": alert_id, "taken_by": name, "at": now.isoformat()},
                    priority="normal",
                    alert=None,
                )
                await writer.add(told, None, 0)
        await uow.commit(handled=False)
        taken = taken if first else alert
    return {
        "alert_id": alert_id,
        "status": "acknowledged",
        "acknowledged_at": iso(taken.acknowledged_at, await _zone(uow, taken.community_id)),
    }


async def _zone(uow: UoW, community: str | None) -> str | None:
    async with uow:
        return await uow.places.zone(community)


async def escalate_due(uow: UoW, d: Delivery, now: datetime) -> int:
    """Alerts whose step's wait is over go to the next role of their chain (or round it
    again); after the last, ``AlertUnacknowledged``. Returns how many moved."""
    async with uow:
        due = await uow.alerts.due(now)
    moved = 0
    for alert in due:
        async with uow:
            alert = await uow.alerts.get(alert.alert_id)
            if alert is None or not alert.open or alert.due_at is None or alert.due_at > now:
                continue
            policy = NotifyPolicy.of(await uow.places.policy(alert.community_id))
            chain = policy.chain(alert.kind)
            people = await uow.alerts.recipients(alert.alert_id)
            while True:
                alert, role = alerting.escalate(alert, chain, now)
                if role is None:
                    uow.emit(
                        AlertUnacknowledged(
                            alert_id=alert.alert_id,
                            kind=alert.kind,
                            request_id=alert.request_id,
                            tried=[p["name"] for p in people],
                            raised_at=alert.raised_at,
                            given_up_at=now,
                        )
                    )
                    break
                place = alert.places.get(ROLE_PLACE[role]) or (
                    alert.community_id if ROLE_PLACE[role] == "community_id" else None
                )
                contacts = await uow.places.role(role, place) if place else []
                if contacts:
                    break  # a role nobody holds here is skipped
            if role is not None:
                previous = [p["name"] for p in people if p["step"] == _step_before(alert, chain)]
                writer = _Writer(uow, d, now, policy)
                built = await writer.messages(
                    contacts,
                    request_id=stable_id(
                        "escalation", alert.request_id, str(alert.round), str(alert.step)
                    ),
                    template=alert.template,
                    params=alert.params,
                    priority="urgent",
                    alert=alert,
                    escalation={
                        "previous": ", ".join(previous) or "?",
                        "waited_min": _wait_before(alert, chain),
                        "level": alert.step + 1,
                    },
                )
                await writer.add(built, alert, alert.step)
            await uow.alerts.save(alert)
            await uow.commit(handled=False)
            moved += 1
    return moved


def _step_before(alert: Alert, chain) -> int:
    return (alert.step - 1) % len(chain.steps)


def _wait_before(alert: Alert, chain) -> float:
    return chain.steps[_step_before(alert, chain)][1]


# --- broadcasts -----------------------------------------------------------------------------------
async def start_broadcast(
    place: str,
    place_id: str,
    template: str,
    params: dict[str, Any],
    priority: str,
    by: str,
    uow: UoW,
    d: Delivery,
    now: datetime,
) -> dict[str, Any]:
    """The office sends a notice to every resident of a place: checked, then handed to
    notify's own request path (resumable after a restart, nobody twice)."""
    try:
        missing = d.templates.required_params(template) - set(params)
    except UnknownTemplate:
        raise ApiError("unknown_template", f"no template {template!r}", "template") from None
    if missing:
        raise ApiError("invalid_params", f"missing: {', '.join(sorted(missing))}", "params")
    async with uow:
        if not await uow.places.place_known(place, place_id):
            raise ApiError("unknown_place", f"no {place} {place_id!r}", "place_id")
        broadcast_id = f"b-{new_id()[:20]}"
        ev = NotificationRequested(
            request_id=broadcast_id,
            recipient=ToResidents(place=place, place_id=place_id),
            template=template,
            params=params,
            priority=priority,
            requested_by=by,
        )
        await uow.requests.put(_request_row(ev, now, "requested", 0, None))
        uow.emit(ev, event_id=stable_id("broadcast", broadcast_id))
        await uow.commit()
    return {"broadcast_id": broadcast_id}


async def broadcast_status(broadcast_id: str, uow: UoW) -> dict[str, Any]:
    async with uow:
        row = await uow.requests.get(broadcast_id)
        if row is None:
            raise ApiError("unknown_broadcast", f"no broadcast {broadcast_id}", "broadcast_id")
        counts = await uow.messages.counts(broadcast_id)
    written = sum(counts.values())
    finished = sum(counts.get(s, 0) for s in DONE)
    return {
        "broadcast_id": broadcast_id,
        "status": row["status"],
        "recipients": row["recipients"] if row["status"] != "expanding" else written,
        "written": written,
        "finished": finished,
        "counts": counts,
        "done": row["status"] in ("expanded", "cancelled") and finished == written,
    }


async def cancel_broadcast(broadcast_id: str, uow: UoW, now: datetime) -> dict[str, Any]:
    async with uow:
        row = await uow.requests.get(broadcast_id)
        if row is None:
            raise ApiError("unknown_broadcast", f"no broadcast {broadcast_id}", "broadcast_id")
        await uow.requests.put(
            {"request_id": broadcast_id, "status": "cancelled", "cancelled_at": now}
        )
        stopped = await uow.messages.cancel_waiting(broadcast_id)
        await uow.commit()
    return {"broadcast_id": broadcast_id, "cancelled": stopped}


# --- queries --------------------------------------------------------------------------------------
def _message_row(m: Message) -> dict[str, Any]:
    z = m.time_zone
    return {
        "notification_id": m.message_id,
        "request_id": m.request_id,
        "recipient_id": m.recipient_id,
        "recipient_name": m.recipient_name,
        "template": m.template,
        "language": m.language,
        "priority": ("urgent", "normal", "bulk")[m.priority],
        "status": m.status,
        "channel": m.sent_channel or m.current.channel,
        "attempts": m.attempts,
        "alert_id": m.alert_id,
        "last_error": m.last_error,
        "created_at": iso(m.created_at, z),
        "sent_at": iso(m.sent_at, z),
        "delivered_at": iso(m.delivered_at, z),
        "acknowledged_at": iso(m.acknowledged_at, z),
        "body": m.body,
    }


async def newest_messages(limit: int, recipient_id: str | None, uow: UoW) -> list[dict[str, Any]]:
    async with uow:
        found = await uow.messages.newest(limit, recipient_id)
    return [_message_row(m) for m in found]


async def message_detail(notification_id: str, uow: UoW) -> dict[str, Any]:
    async with uow:
        m = await uow.messages.get(notification_id)
        if m is None:
            raise ApiError("unknown_message", f"no message {notification_id}", "notification_id")
        history = await uow.messages.history(notification_id)
    return {
        **_message_row(m),
        "routes": [r.as_list() for r in m.routes],
        "history": [
            {
                "at": iso(h["at"], m.time_zone),
                "status": h["status"],
                "channel": h["channel"],
                "detail": h["detail"],
            }
            for h in history
        ],
    }
