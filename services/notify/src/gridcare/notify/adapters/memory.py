"""Notify's repositories in memory (and a chat that records or fails), for handler tests."""

from __future__ import annotations

from ..domain.deliveries import Delivery
from .chat import DeliveryFailed


class Deliveries:
    def __init__(self) -> None:
        self.rows: dict[str, Delivery] = {}

    async def get(self, notification_id: str) -> Delivery | None:
        return self.rows.get(notification_id)

    async def save(self, delivery: Delivery) -> None:
        self.rows[delivery.notification_id] = delivery

    async def newest(self, limit: int) -> list[Delivery]:
        return sorted(self.rows.values(), key=lambda d: d.created_at or 0, reverse=True)[:limit]


class RecordingChat:
    """A chat provider in memory: keeps every post; fails the first ``fail_first``."""

    def __init__(self, fail_first: int = 0) -> None:
        self.posts: list[dict] = []
        self.fail_first = fail_first

    async def send(
        self, chat_url: str, notification_id: str, title: str, body: str, *, urgent: bool
    ) -> None:
        if self.fail_first > 0:
            self.fail_first -= 1
            raise DeliveryFailed("chat delivery failed: the provider answered 503")
        self.posts.append(
            {"url": chat_url, "id": notification_id, "title": title, "body": body, "urgent": urgent}
        )
