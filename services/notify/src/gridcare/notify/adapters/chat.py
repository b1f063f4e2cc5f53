"""The chat channel: Apprise, which speaks to most chat webhooks (DingTalk, WeCom, Feishu,
Telegram, Slack, Matrix, a plain JSON webhook, ...). Never called inside a transaction."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote

import apprise
from apprise.result import AppriseResultStatus


class DeliveryFailed(Exception):
    pass


class Chat(Protocol):
    async def send(
        self, chat_url: str, notification_id: str, title: str, body: str, *, urgent: bool
    ) -> None:
        """Post one message, or raise :class:`DeliveryFailed`."""


def apprise_url(chat_url: str, notification_id: str) -> str:
    """An office's ``chat_url`` as an Apprise URL.

    A plain ``http(s)://`` webhook is posted JSON (Apprise's ``json://``/``jsons://``).
    Every JSON post carries ``X-Gridcare-Notification-Id`` so a receiver can drop a repeat.
    """
    url = chat_url.strip()
    if url.startswith("http://"):
        url = "json://" + url[len("http://") :]
    elif url.startswith("https://"):
        url = "jsons://" + url[len("https://") :]
    if url.startswith(("json://", "jsons://")):
        sep = "&" if "?" in url else "?"
        url += f"{sep}+X-Gridcare-Notification-Id={quote(notification_id)}"
    return url


class AppriseChat:
    async def send(
        self, chat_url: str, notification_id: str, title: str, body: str, *, urgent: bool = False
    ) -> None:
        """Post one message; ``urgent`` marks it as a warning where the chat shows that."""
        await send_chat(chat_url, notification_id, title, body, urgent=urgent)


async def send_chat(
    chat_url: str, notification_id: str, title: str, body: str, *, urgent: bool = False
) -> None:
    if not chat_url:
        raise DeliveryFailed("no chat_url configured")
    ap = apprise.Apprise()
    if not ap.add(apprise_url(chat_url, notification_id)):
        raise DeliveryFailed("chat_url is not a URL Apprise understands")
    kind = apprise.NotifyType.WARNING if urgent else apprise.NotifyType.INFO
    result = await ap.async_notify(body=body, title=title, notify_type=kind)
    if result.status != AppriseResultStatus.SUCCESS:
        raise DeliveryFailed(f"chat delivery failed: {result.status.name}")
