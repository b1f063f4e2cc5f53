"""Acknowledgement links: an alert's recipient may acknowledge by opening a link, signed so
that only the person it was sent to can use it (HMAC-SHA256 over the alert and the person,
with notify's secret)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import cached_property
from urllib.parse import quote


class Links:
    def __init__(self, secret: bytes | Callable[[], bytes], base_url: str) -> None:
        self._secret = secret  # or how to get it, the first time a link is made
        self.base_url = base_url.rstrip("/")

    @cached_property
    def secret(self) -> bytes:
        return self._secret if isinstance(self._secret, bytes) else self._secret()

    def signature(self, alert_id: str, person_id: str) -> str:
        mac = hmac.new(self.secret, f"{alert_id}|{person_id}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def url(self, alert_id: str, person_id: str) -> str:
        sig = self.signature(alert_id, person_id)
        return f"{self.base_url}/ack/{quote(alert_id)}/{quote(person_id)}/{sig}"

    def valid(self, alert_id: str, person_id: str, signature: str) -> bool:
        return hmac.compare_digest(self.signature(alert_id, person_id), signature)
