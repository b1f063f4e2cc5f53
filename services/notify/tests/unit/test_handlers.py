"""Notify's handlers on the in-memory unit of work, the real templates and providers that
record or fail: the road of a message, alerts, digests, broadcasts, receipts. No broker,
no database, no HTTP; a clock the tests move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridcare.contracts.notify import (
    AlertAcknowledged,
    AlertUnacknowledged,
    NotificationDelivered,
    NotificationFailed,
    NotificationRequested,
    ToGroup,
    ToPerson,
    ToResidents,
    ToRole,
)
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
)
from gridcare.notify import handlers
from gridcare.notify.adapters.memory import RecordingProviders
from gridcare.notify.adapters.providers import Outgoing, ProviderFailed
from gridcare.notify.domain.links import Links
from gridcare.notify.domain.messages import message_id
from gridcare.notify.domain.templates import Templates
from gridcare.notify.unit_of_work import FakeUnitOfWork
from gridcare.shared.errors import ApiError, Permanent
from gridcare.shared.uow import AlreadyHandled, Inbound

T0 = datetime(2026, 3, 12, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TEMPLATES = Templates()
D = handlers.Delivery(TEMPLATES, give_up_s=3600, links=Links(b"k", "http://notify.example"))


def retry_after(attempt: int) -> float:
    return 60.0 * attempt


async def community(policy: CommunityPolicy | None = None) -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    for entity in (
        Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
        Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
        Grid(
            grid_id="G-01",
            community_id="CM-1",
            name="Grid 1",
            worker_id="W-01",
            worker_name="Li Mei",
            worker_phone="+86 138 0000 0001",
            worker_language="zh",
            chat_url="http://chat/grid-1",
        ),
        Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
        Household(household_id="H-0101", building_id="B-01", unit="1-101"),
        Household(household_id="H-0102", building_id="B-01", unit="1-102"),
        Resident(
            resident_id="R-1001", household_id="H-0101", name="Wang Fang", phone="+8613900001001"
        ),
        Resident(
            resident_id="R-1002",
            household_id="H-0101",
            name="Tom",
            phone="+8613900001002",
            language="en",
        ),
        Resident(resident_id="R-1003", household_id="H-0102", name="No phone"),
        Gate(gate_id="g1", compound_id="C-01", name="North", duty_chat_url="http://chat/duty-g1"),
        Staff(
            staff_id="S-01",
            community_id="CM-1",
            name="Secretary Wang",
            phone="+8613700000001",
            roles=["secretary"],
            channels=["sms"],
        ),
        Staff(
            staff_id="DS-01",
            community_id="CM-1",
            name="Duty Zhao",
            phone="+8613700000002",
            roles=["duty_staff"],
            gates=["g1"],
            chat_url="http://chat/ds-01",
            language="en",
        ),
        ChatGroup(
            group_id="CG-1",
            community_id="CM-1",
            place="compound",
            place_id="C-01",
            name="Donghu Garden group",
            url="http://chat/c-01",
        ),
        Channel(channel_id="SMS-1", community_id="CM-1", kind="sms", url="http://sms/send"),
    ):
        await handlers.reference_data_changed(entity, uow)
    if policy is not None:
        await handlers.reference_data_changed(policy, uow)
    return uow


def fever(request_id: str = "task-1", **kw) -> NotificationRequested:
    fields = {
        "request_id": request_id,
        "recipient": ToRole(role="grid_worker", place_id="G-01"),
        "template": "task.fever_follow_up",
        "params": {
            "person_id": "R-1001",
            "gate_id": "g1",
            "temperature_c": 38.2,
            "observed_at": "2026-03-12T01:59:00+00:00",
            "hours": 2,
        },
        "priority": "urgent",
        "needs_ack": True,
        "alert_kind": "fever",
        "places": {"grid_id": "G-01", "community_id": "CM-1", "gate_id": "g1"},
    }
    return NotificationRequested(**{**fields, **kw})


def notice(request_id: str, recipient, **kw) -> NotificationRequested:
    return NotificationRequested(
        request_id=request_id,
        recipient=recipient,
        template="notice.text",
        params={"text": "Water off 14:00-16:00 / 停水", "from_name": "Office"},
        **kw,
    )


async def send_all(uow, providers, now, limit: int = 100) -> list[handlers.Outcome]:
    """One round of the sender: claim, call, settle."""
    outcomes = []
    for m in await handlers.claim(uow, D, now, limit):
        r = m.current
        try:
            acc = await providers.send(
                Outgoing(m.delivery_key, r.url, r.channel, r.to, m.title, m.body, m.urgent)
            )
            outcomes.append(handlers.Outcome(m, True, provider_ref=acc.provider_ref))
        except ProviderFailed as exc:
            outcomes.append(handlers.Outcome(m, False, error=exc.reason, retry=exc.retry))
    await handlers.settle(outcomes, uow, now, retry_after)
    return outcomes


# --- a request, once ------------------------------------------------------------------------------
async def test_a_request_is_one_message_in_the_recipients_language_sent_once():
    uow, providers = await community(), RecordingProviders()
    assert await handlers.request(fever(), uow, D, T0) == 1
    [m] = uow.messages.rows.values()
    assert m.recipient_id == "W-01" and m.language == "zh" and m.status == "queued"
    assert [r.channel for r in m.routes] == ["chat", "sms"]  # the grid chat, then SMS
    assert "38.2" in m.body and "10:00" not in m.body and "09:59" in m.body  # local clock
    await send_all(uow, providers, T0)
    [sent] = providers.sent
    assert (
        sent.url == "http://chat/grid-1"
        and sent.key == uow.messages.rows[m.message_id].delivery_key
    )
    assert f"[{m.alert_id}]" in sent.body
    assert uow.messages.rows[m.message_id].status == "sent"
    assert len(uow.events(NotificationDelivered)) == 1
    # the same request three times: one message, one delivery
    for n in range(3):
        await handlers.request(
            fever(), uow.handling(Inbound("notify-requests", f"e{n}", "c")), D, T0
        )
    await send_all(uow.handling(None), providers, T0)
    assert len(uow.messages.rows) == 1 and len(providers.sent) == 1


async def test_the_same_message_redelivered_is_handled_once():
    uow = await community()
    msg = Inbound("notify-requests-urgent", "evt-1", "evt-1")
    await handlers.request(fever(), uow.handling(msg), D, T0)
    with pytest.raises(AlreadyHandled):
        await handlers.request(fever(), uow.handling(msg), D, T0)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"template": "no.such"}, "unknown template"),
        ({"params": {"person_id": "R-1001"}}, "needs parameters"),
        ({"recipient": ToPerson(person_id="R-9999")}, "unknown recipient"),
        ({"recipient": ToRole(role="community_doctor", place_id="CM-1")}, "nobody is"),
        ({"recipient": ToResidents(place="compound", place_id="C-99")}, "no compound"),
        ({"recipient": ToGroup(place="building", place_id="B-01")}, "no chat group"),
        ({"digest": True}, "urgent"),
    ],
)
async def test_bad_requests_are_refused_for_good_with_the_reason(change, why):
    uow = await community()
    with pytest.raises(Permanent, match=why):
        await handlers.request(fever(**change), uow, D, T0)
    assert not [m for m in uow.messages.rows.values() if m.status == "queued"]


async def test_a_recipient_nobody_can_reach_is_refused():
    uow = await community()
    with pytest.raises(Permanent, match="no chat, phone or email"):
        await handlers.request(notice("n-1", ToPerson(person_id="R-1003")), uow, D, T0)


async def test_a_group_reads_every_language_and_an_expired_request_is_not_sent():
    uow, providers = await community(), RecordingProviders()
    await handlers.request(notice("n-1", ToGroup(place="compound", place_id="C-01")), uow, D, T0)
    [m] = uow.messages.rows.values()
    assert m.recipient_id == "group:CG-1" and m.language == "zh+en"
    gone = notice("n-2", ToPerson(person_id="R-1002"), expires_at=T0 + timedelta(minutes=1))
    await handlers.request(gone, uow, D, T0)
    await send_all(uow, providers, T0 + timedelta(minutes=2))
    assert [o.url for o in providers.sent] == ["http://chat/c-01"]
    statuses = {m.recipient_id: m.status for m in uow.messages.rows.values()}
    assert statuses == {"group:CG-1": "sent", "R-1002": "expired"}


# --- retries, failover, giving up ----------------------------------------------------------------
async def test_a_failing_route_fails_over_and_in_the_end_is_a_dead_letter():
    uow, providers = await community(), RecordingProviders()
    providers.failing = {"http://chat/": True, "http://sms/": True}
    await handlers.request(fever(), uow, D, T0)
    mid = message_id("task-1", "W-01")
    channels, now = [], T0
    while (m := uow.messages.rows[mid]).status != "failed":
        channels.append(m.current.channel)
        await send_all(uow, providers, now)
        now = max(now, uow.messages.rows[mid].next_attempt_at) + timedelta(seconds=1)
        assert now < T0 + timedelta(hours=3)
    # two tries on the chat, then the SMS at once, twice; then round again, later
    assert channels[:4] == ["chat", "chat", "sms", "sms"]
    assert m.last_error and "503" in m.last_error
    assert len(uow.events(NotificationFailed)) == 1 and providers.sent == []
    assert uow.messages.rows[mid].attempts == len(channels)
    # replayed once the chat is back: sent
    providers.failing = {}
    assert await handlers.retry(mid, uow, D, now) is True
    await send_all(uow, providers, now)
    assert uow.messages.rows[mid].status == "sent" and len(providers.sent) == 1
    assert await handlers.retry(mid, uow, D, now) is False  # not failed any longer


async def test_an_address_refused_for_good_is_left_at_once():
    uow, providers = await community(), RecordingProviders()
    providers.failing = {"http://chat/": False}  # e.g. 404: the bot was removed
    await handlers.request(fever(), uow, D, T0)
    await send_all(uow, providers, T0)
    await send_all(uow, providers, T0)
    assert [o.url for o in providers.sent] == ["http://sms/send"]
    assert providers.sent[0].to == "+8613800000001"


# --- quiet hours, the hourly cap, digests ---------------------------------------------------------
async def test_quiet_hours_hold_a_normal_message_but_never_an_urgent_one():
    quiet = CommunityPolicy(community_id="CM-1", quiet_hours="22:00-07:00")
    uow, providers = await community(quiet), RecordingProviders()
    night = datetime(2026, 3, 12, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    await handlers.request(notice("n-1", ToPerson(person_id="R-1001")), uow, D, night)
    await handlers.request(fever(), uow, D, night)
    await send_all(uow, providers, night)
    assert [o.url for o in providers.sent] == ["http://chat/grid-1"]  # the urgent one
    held = uow.messages.rows[message_id("n-1", "R-1001")]
    assert held.status == "queued" and held.next_attempt_at == datetime(
        2026, 3, 12, 23, 0, tzinfo=UTC
    )
    await send_all(uow, providers, held.next_attempt_at)
    assert len(providers.sent) == 2


async def test_the_hourly_cap_holds_non_urgent_messages_to_one_recipient():
    uow = await community(CommunityPolicy(community_id="CM-1", hourly_cap=2))
    providers = RecordingProviders()
    for n in range(4):
        await handlers.request(notice(f"n-{n}", ToPerson(person_id="R-1001")), uow, D, T0)
    await send_all(uow, providers, T0)
    assert len(providers.sent) == 2
    await send_all(uow, providers, T0 + timedelta(minutes=30))
    assert len(providers.sent) == 2
    await send_all(uow, providers, T0 + timedelta(minutes=61))
    assert len(providers.sent) == 4
    # alerts to acknowledge are not capped (40 fevers in an hour all reach the worker)
    for n in range(4):
        await handlers.request(fever(f"task-{n}", priority="normal"), uow, D, T0)
    await send_all(uow, providers, T0 + timedelta(minutes=62))
    assert len(providers.sent) == 8


async def test_low_priority_notices_wait_for_one_digest():
    uow, providers = await community(), RecordingProviders()
    for n in range(3):
        ev = notice(f"n-{n}", ToPerson(person_id="R-1002"), priority="bulk", digest=True)
        await handlers.request(ev, uow, D, T0 + timedelta(minutes=n))
    await send_all(uow, providers, T0 + timedelta(minutes=30))
    assert providers.sent == []
    await send_all(uow, providers, T0 + timedelta(minutes=61))
    [one] = providers.sent
    assert one.body.count("Water off") == 3
    statuses = sorted(m.status for m in uow.messages.rows.values())
    assert statuses == ["bundled", "bundled", "bundled", "sent"]


# --- alerts ---------------------------------------------------------------------------------------
async def test_an_unacknowledged_fever_alert_escalates_along_its_chain():
    uow, providers = await community(), RecordingProviders()
    await handlers.request(fever(), uow, D, T0)
    [alert] = uow.alerts.rows.values()
    await send_all(uow, providers, T0)
    assert await handlers.escalate_due(uow, D, T0 + timedelta(minutes=4)) == 0
    assert await handlers.escalate_due(uow, D, T0 + timedelta(minutes=5, seconds=1)) == 1
    await send_all(uow, providers, T0 + timedelta(minutes=5, seconds=1))
    to_secretary = providers.sent[-1]
    assert to_secretary.to == "+8613700000001" and f"[{alert.alert_id}]" in to_secretary.body
    assert "Li Mei" in to_secretary.body  # who did not answer
    await handlers.escalate_due(uow, D, T0 + timedelta(minutes=21))
    await send_all(uow, providers, T0 + timedelta(minutes=21))
    assert providers.sent[-1].url == "http://chat/ds-01"  # then the duty staff
    await handlers.escalate_due(uow, D, T0 + timedelta(minutes=52))
    [given_up] = uow.events(AlertUnacknowledged)
    assert given_up["tried"] == ["Li Mei", "Secretary Wang", "Duty Zhao"]
    assert uow.alerts.rows[alert.alert_id].status == "unacknowledged"


async def test_an_acknowledgement_stops_the_chain_and_tells_the_others():
    uow, providers = await community(), RecordingProviders()
    await handlers.request(fever(), uow, D, T0)
    [alert] = uow.alerts.rows.values()
    await send_all(uow, providers, T0)
    await handlers.escalate_due(uow, D, T0 + timedelta(minutes=6))
    with pytest.raises(handlers.AckRefused) as refused:
        await handlers.acknowledge(alert.alert_id, "R-1001", "nats", uow, D, T0)
    assert refused.value.code == "not_yours"
    with pytest.raises(handlers.AckRefused) as refused:
        await handlers.acknowledge("NOSUCH00", "W-01", "nats", uow, D, T0)
    assert refused.value.code == "unknown_alert"
    at = T0 + timedelta(minutes=7)
    done = await handlers.acknowledge(alert.alert_id, "W-01", "nats", uow, D, at)
    assert done == {
        "alert_id": alert.alert_id,
        "status": "acknowledged",
        "acknowledged_at": "2026-03-12T10:07:00+08:00",
    }
    assert len(uow.events(AlertAcknowledged)) == 1
    assert await handlers.escalate_due(uow, D, T0 + timedelta(hours=2)) == 0
    # the secretary, who had it too, is told who took it (and not escalated to again)
    await send_all(uow, providers, at)
    assert "Li Mei" in providers.sent[-1].body and providers.sent[-1].to == "+8613700000001"
    # a second acknowledgement changes nothing
    again = await handlers.acknowledge(alert.alert_id, "S-01", "link", uow, D, at)
    assert again["acknowledged_at"] == done["acknowledged_at"]
    assert len(uow.events(AlertAcknowledged)) == 1


# --- broadcasts and receipts ----------------------------------------------------------------------
async def test_a_broadcast_reaches_every_resident_once_and_can_be_cancelled():
    uow, providers = await community(), RecordingProviders()
    started = await handlers.start_broadcast(
        "compound",
        "C-01",
        "notice.text",
        {"text": "Testing at 14:00", "from_name": "Office"},
        "normal",
        "Office",
        uow,
        D,
        T0,
    )
    [ev] = uow.events(NotificationRequested)
    assert ev["request_id"] == started["broadcast_id"]
    request = NotificationRequested.model_validate(ev)
    await handlers.request(request, uow, D, T0)
    status = await handlers.broadcast_status(started["broadcast_id"], uow)
    assert status["recipients"] == 2 and status["counts"] == {"queued": 2}  # R-1003: no phone
    await send_all(uow, providers, T0)
    assert sorted(o.to for o in providers.sent) == ["+8613900001001", "+8613900001002"]
    assert (await handlers.broadcast_status(started["broadcast_id"], uow))["done"] is True
    with pytest.raises(ApiError):
        await handlers.start_broadcast(
            "compound",
            "C-99",
            "notice.text",
            {"text": "x", "from_name": None},
            "normal",
            "Office",
            uow,
            D,
            T0,
        )
    # a second one, cancelled before it is sent
    second = await handlers.start_broadcast(
        "building",
        "B-01",
        "notice.text",
        {"text": "x", "from_name": None},
        "bulk",
        "Office",
        uow,
        D,
        T0,
    )
    request = NotificationRequested.model_validate(uow.events(NotificationRequested)[-1])
    await handlers.request(request, uow, D, T0)
    assert (await handlers.cancel_broadcast(second["broadcast_id"], uow, T0))["cancelled"] == 2
    await send_all(uow, providers, T0)
    assert len(providers.sent) == 2


async def test_receipts_mark_delivery_or_fail_over_and_unknown_ones_are_refused():
    uow, providers = await community(), RecordingProviders()
    await handlers.request(notice("n-1", ToPerson(person_id="R-1001")), uow, D, T0)
    await send_all(uow, providers, T0)
    [m] = uow.messages.rows.values()
    done = await handlers.receipt(uow, T0, retry_after, status="delivered", key=m.delivery_key)
    assert done["status"] == "delivered"
    history = [h["status"] for h in await uow.messages.history(m.message_id)]
    assert history == ["queued", "sending", "sent", "delivered"]
    with pytest.raises(handlers.UnknownMessage):
        await handlers.receipt(uow, T0, retry_after, status="delivered", provider_ref="nope")
    # an SMS that never arrived: the message goes on its next route
    await handlers.request(fever("task-2"), uow, D, T0)
    providers.failing = {"http://chat/": False}
    for _ in range(2):
        await send_all(uow, providers, T0)
    sms = uow.messages.rows[message_id("task-2", "W-01")]
    assert sms.status == "sent" and sms.sent_channel == "sms"
    back = await handlers.receipt(
        uow, T0, retry_after, status="failed", provider_ref=sms.provider_ref
    )
    assert back["status"] == "queued"


async def test_screenings_alert_kinds_have_their_own_chains():
    """A missed follow-up day waits 30 minutes for the grid worker (not the general 5); an
    urgent call-back goes round its chain twice before it is given up."""
    uow, providers = await community(), RecordingProviders()
    await handlers.request(fever("fu-1", alert_kind="follow_up_missed"), uow, D, T0)
    await send_all(uow, providers, T0)
    assert await handlers.escalate_due(uow, D, T0 + timedelta(minutes=29)) == 0
    assert await handlers.escalate_due(uow, D, T0 + timedelta(minutes=30, seconds=1)) == 1
    call_back = fever("mh-1", alert_kind="mental_health_urgent")
    await handlers.request(call_back, uow, D, T0)
    mh = next(a for a in uow.alerts.rows.values() if a.request_id == "mh-1")
    at, steps = T0, 0
    while uow.alerts.rows[mh.alert_id].status == "open" and steps < 20:
        at += timedelta(minutes=16)
        await handlers.escalate_due(uow, D, at)
        steps += 1
    assert uow.alerts.rows[mh.alert_id].status == "unacknowledged"
    assert uow.alerts.rows[mh.alert_id].round == 1  # the chain once again before giving up
