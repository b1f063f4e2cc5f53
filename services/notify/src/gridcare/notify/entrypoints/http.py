"""Notify's HTTP endpoints, on its metrics port: delivery receipts from providers, and the
acknowledgement links in alerts.

- ``POST /receipts`` — JSON ``{"key": <our delivery key> | "provider_ref": <the
  provider's id>, "status": "delivered" | "failed", "at"?: RFC 3339, "error"?: text}``
  → 200 ``{"message_id", "status"}``; 404 for a message nobody knows; 400 for a bad body.
- ``POST /receipts/twilio`` — Twilio's status callback (form: ``MessageSid``,
  ``MessageStatus``, ``ErrorCode``); ``queued``/``sending``/``sent`` are recorded only.
- ``GET /ack/<alert_id>/<person_id>/<signature>`` — a page with one button; ``POST`` to
  the same address acknowledges (a GET never does: chat apps open links to preview them).
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from gridcare.shared.envelope import utcnow
from gridcare.shared.errors import bad_fields
from gridcare.shared.schema import Timestamp

from .. import handlers

log = logging.getLogger(__name__)
TWILIO = {"delivered": "delivered", "undelivered": "failed", "failed": "failed"}


class Receipt(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key: str | None = None
    provider_ref: str | None = None
    status: str
    at: Timestamp | None = None
    error: str | None = None

    @model_validator(mode="after")
    def _one_id(self) -> Receipt:
        if not (self.key or self.provider_ref):
            raise ValueError("give key (ours) or provider_ref (the provider's id)")
        if self.status not in ("delivered", "failed"):
            raise ValueError("status must be delivered or failed")
        return self


class Endpoints:
    def __init__(
        self,
        svc: Any,
        delivery: handlers.Delivery,
        retry_after: Callable[[int], float],
        wake: Callable[[], None],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.clock = clock
        self.svc = svc
        self.d = delivery
        self.retry_after = retry_after
        self.wake = wake
        self.receipts = svc.metrics.counter(
            "receipts_total", "Delivery receipts from providers, by outcome", ["outcome"]
        )

    # --- receipts ----------------------------------------------------------------------------
    async def receipt(self, scope, receive, send) -> None:
        if scope["method"] != "POST":
            return await _reply(send, 405, {"error": "POST a receipt"})
        body = await _body(receive)
        if scope["path"].rstrip("/") == "/receipts/twilio":
            form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
            sid, state = form.get("MessageSid"), form.get("MessageStatus", "")
            if not sid:
                return await _reply(send, 400, {"error": "MessageSid is required"})
            status = TWILIO.get(state, state or "unknown")
            return await self._record(send, None, sid, status, None, form.get("ErrorCode"))
        try:
            r = Receipt.model_validate_json(body)
        except ValidationError as exc:
            self.receipts.labels("invalid").inc()
            refused = {"error": "invalid_receipt", "detail": bad_fields(exc)}
            return await _reply(send, 400, refused)
        return await self._record(send, r.key, r.provider_ref, r.status, r.at, r.error)

    async def _record(
        self,
        send,
        key: str | None,
        ref: str | None,
        status: str,
        at: datetime | None,
        detail: str | None,
    ) -> None:
        try:
            done = await handlers.receipt(
                self.svc.unit_of_work(),
                self.clock(),
                self.retry_after,
                status=status,
                key=key,
                provider_ref=ref,
                at=at,
                detail=detail,
            )
        except handlers.UnknownMessage as exc:
            self.receipts.labels("unknown").inc()
            log.warning("receipt refused: %s", exc)
            return await _reply(send, 404, {"error": "unknown_message", "detail": str(exc)})
        self.receipts.labels(status).inc()
        if status == "failed":
            self.wake()
        await _reply(send, 200, done)

    # --- acknowledgement links ------------------------------------------------------------------
    async def ack(self, scope, receive, send) -> None:
        parts = [unquote(p) for p in scope["path"].split("/")[2:]]
        links = self.d.links
        if len(parts) != 3 or links is None or not links.valid(*parts):
            return await _page(send, 404, "Not a valid link / 链接无效", "")
        alert_id, person_id, _ = parts
        if scope["method"] == "GET":
            form = (
                f'<form method="post"><p>[{html.escape(alert_id)}]</p>'
                '<button type="submit">确认接收 / Acknowledge</button></form>'
            )
            return await _page(send, 200, "Acknowledge this alert / 确认此警报", form)
        await _body(receive)
        try:
            done = await handlers.acknowledge(
                alert_id, person_id, "link", self.svc.unit_of_work(), self.d, self.clock()
            )
        except handlers.AckRefused as exc:
            return await _page(send, 409 if exc.code == "not_yours" else 404, str(exc), "")
        self.wake()
        when = html.escape(done["acknowledged_at"] or "")
        await _page(send, 200, "Acknowledged / 已确认", f"<p>[{html.escape(alert_id)}] {when}</p>")


async def _body(receive: Callable[[], Awaitable[dict]]) -> bytes:
    chunks = []
    while True:
        event = await receive()
        chunks.append(event.get("body", b""))
        if not event.get("more_body"):
            return b"".join(chunks)


async def _reply(send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode()
    await _send(send, status, "application/json", body)


async def _page(send, status: int, title: str, content: str) -> None:
    body = (
        '<!doctype html><meta charset="utf-8"><meta name="viewport" '
        'content="width=device-width"><title>gridcare</title>'
        f"<h1>{html.escape(title)}</h1>{content}"
    ).encode()
    await _send(send, status, "text/html; charset=utf-8", body)


async def _send(send, status: int, ctype: str, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", ctype.encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
