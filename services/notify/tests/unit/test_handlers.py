"""Notify's handlers on the in-memory unit of work and a recording chat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridcare.contracts.checkpoint import GateCameOnline, GateSendingBadInput, GateWentOffline
from gridcare.contracts.dispatch import TaskCreated
from gridcare.contracts.notify import NotificationDelivered
from gridcare.contracts.refdata import Community, Compound, Gate, Grid
from gridcare.notify import handlers
from gridcare.notify.adapters.chat import DeliveryFailed
from gridcare.notify.adapters.memory import RecordingChat
from gridcare.notify.domain.messages import pick
from gridcare.notify.unit_of_work import FakeUnitOfWork
from gridcare.shared.errors import Permanent
from gridcare.shared.uow import AlreadyHandled, Inbound

T0 = datetime(2026, 3, 11, 23, 31, 5, tzinfo=UTC)  # 07:31:05 in Shanghai


async def community(duty_chat: str = "http://sink/duty-g1", language: str = "en") -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    for entity in (
        Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
        Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
        Grid(
            grid_id="G-01",
            community_id="CM-1",
            name="Grid 1",
            worker_id="W-01",
            worker_name="Tom",
            worker_phone="+86 138 0000 0002",
            worker_language=language,
            chat_url="http://sink/grid-1",
        ),
        Gate.model_construct(
            gate_id="g1", compound_id="C-01", name="North", duty_chat_url=duty_chat
        ),
    ):
        await handlers.reference_data_changed(entity, uow)
    return uow


def task(urgent: bool = False) -> TaskCreated:
    return TaskCreated(
        task_id="t-1",
        kind="quarantine_breach" if urgent else "fever_follow_up",
        person_id="R-1001",
        household_id="H-0101",
        assignee_id="W-01",
        assignee_role="grid_worker",
        grid_id="G-01",
        due_by=T0 + timedelta(hours=2),
        summary={"zh": "发热随访", "en": "Fever follow-up"},
        urgent=urgent,
    )


async def test_a_task_reaches_the_workers_chat_in_their_language():
    uow, chat = await community(language="en"), RecordingChat()
    await handlers.task_created(task(), "e-1", uow, chat)
    [post] = chat.posts
    assert post["url"] == "http://sink/grid-1" and post["body"] == "Fever follow-up"
    assert post["title"] == "New task" and not post["urgent"]
    [d] = uow.deliveries.rows.values()
    assert d.sent and d.attempts == 1 and d.time_zone == "Asia/Shanghai"
    assert uow.events(NotificationDelivered)[0]["recipient_id"] == "W-01"


async def test_an_urgent_task_is_marked_urgent():
    uow, chat = await community(language="zh"), RecordingChat()
    await handlers.task_created(task(urgent=True), "e-1", uow, chat)
    assert chat.posts[0]["title"] == "【紧急】新任务" and chat.posts[0]["urgent"]


async def test_the_intent_is_committed_before_the_provider_is_called():
    uow = await community()
    seen = {}

    class Spy(RecordingChat):
        async def send(self, *args, **kwargs):
            # the row is in the store before the provider is called, outside the transaction
            seen["row"] = uow.deliveries.rows.get(args[1])
            seen["in_transaction"] = uow._open
            await super().send(*args, **kwargs)

    await handlers.task_created(task(), "e-1", uow, Spy())
    assert seen["row"] is not None and seen["row"].status == "pending"
    assert seen["in_transaction"] is False


async def test_a_failed_attempt_is_recorded_and_raised_then_the_retry_sends_once():
    uow, chat = await community(), RecordingChat(fail_first=1)
    msg = Inbound("notify-tasks", "e-1", "e-1")
    with pytest.raises(DeliveryFailed):
        await handlers.task_created(task(), "e-1", uow.handling(msg), chat)
    [d] = uow.deliveries.rows.values()
    assert d.status == "pending" and "503" in (d.last_error or "")
    assert uow.events(NotificationDelivered) == []
    await handlers.task_created(task(), "e-1", uow.handling(msg), chat)  # the redelivery
    [d] = uow.deliveries.rows.values()
    assert d.sent and d.attempts == 2 and len(chat.posts) == 1
    with pytest.raises(AlreadyHandled):  # and once more: a duplicate
        await handlers.task_created(task(), "e-1", uow.handling(msg), chat)
    assert len(chat.posts) == 1


async def test_a_task_already_sent_for_another_copy_is_not_sent_again():
    uow, chat = await community(), RecordingChat()
    await handlers.task_created(task(), "e-1", uow, chat)
    await handlers.task_created(task(), "e-2", uow, chat)  # the same task announced again
    assert len(chat.posts) == 1


async def test_an_unknown_grid_worker_is_retried():
    uow, chat = FakeUnitOfWork(), RecordingChat()
    with pytest.raises(LookupError):
        await handlers.task_created(task(), "e-1", uow, chat)
    assert chat.posts == [] and uow.deliveries.rows == {}


async def test_gate_offline_and_online_reach_the_duty_chat_on_the_local_clock():
    uow, chat = await community(), RecordingChat()
    off = GateWentOffline(gate_id="g1", compound_id="C-01", last_seen_at=T0, silent_s=95)
    await handlers.gate_status_changed(off, "e-off", uow, chat)
    on = GateCameOnline(gate_id="g1", compound_id="C-01", at=T0 + timedelta(minutes=5))
    await handlers.gate_status_changed(on, "e-on", uow, chat)
    first, second = chat.posts
    assert first["urgent"] and "2026-03-12 07:31:05" in first["body"] and "95" in first["body"]
    assert "UTC" not in first["body"]
    assert not second["urgent"] and "07:36:05" in second["body"]
    assert {d.recipient_id for d in uow.deliveries.rows.values()} == {"duty:g1"}


async def test_a_gate_sending_bad_input_reaches_the_duty_chat_once_in_both_languages():
    uow, chat = await community(), RecordingChat()
    alert = GateSendingBadInput(
        gate_id="g1",
        compound_id="C-01",
        kind="heartbeat",
        reason="invalid heartbeat: sent_at: Input should be a valid datetime",
        recorded_per_minute=10,
        at=T0,
    )
    await handlers.gate_status_changed(alert, "e-bad", uow, chat)
    await handlers.gate_status_changed(alert, "e-bad", uow, chat)  # the same alert again
    [post] = chat.posts
    assert post["url"] == "http://sink/duty-g1" and not post["urgent"]
    assert "g1" in post["title"] and "bad data" in post["title"]
    body = post["body"]
    assert "North (g1, C-01)" in body and "2026-03-12 07:31:05" in body  # the local clock
    assert "心跳消息" in body and "heartbeats" in body and "10" in body
    assert "sent_at: Input should be a valid datetime" in body
    [d] = uow.deliveries.rows.values()
    assert d.recipient_id == "duty:g1" and d.cause_type == "checkpoint.GateSendingBadInput"


async def test_a_gate_without_a_duty_chat_is_a_permanent_error():
    uow, chat = await community(duty_chat=""), RecordingChat()
    off = GateWentOffline(gate_id="g1", compound_id="C-01", last_seen_at=None, silent_s=95)
    with pytest.raises(Permanent, match="duty_chat_url"):
        await handlers.gate_status_changed(off, "e-off", uow, chat)


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "en"), ("en-GB", "en"), ("fr", "zh"), ("zh-Hans", "zh")],
)
def test_the_language_falls_back_to_chinese_then_english(language, expected):
    assert pick({"zh": "中", "en": "en"}, language)[0] == expected
    assert pick({"en": "en"}, "fr")[0] == "en"


async def test_deliveries_list_on_the_local_clock():
    uow, chat = await community(), RecordingChat()
    await handlers.task_created(task(), "e-1", uow, chat)
    [row] = await handlers.newest_deliveries(10, uow)
    assert row["status"] == "sent" and row["delivered_at"].endswith("+08:00")
