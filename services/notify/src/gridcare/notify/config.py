"""Notify's own settings (besides every service's, ``gridcare.shared.settings``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from gridcare.shared.settings import Settings


class NotifySettings(Settings):
    # a message not delivered on any of its recipient's routes within this is given up on
    # (a dead letter, replayable): it outlasts a provider's outage of minutes
    notify_give_up_s: float = Field(3600.0, gt=0)
    # delay before a route is tried again: doubling from the base to the max, with jitter
    notify_retry_base_s: float = Field(2.0, gt=0)
    notify_retry_max_s: float = Field(300.0, gt=0)
    notify_provider_timeout_s: float = Field(10.0, gt=0)  # a provider that hangs
    notify_max_in_flight: int = Field(200, ge=1)  # messages between claim and outcome
    # a provider failing this many times in a row is not called for a while (circuit)
    notify_breaker_failures: int = Field(5, ge=1)
    notify_breaker_open_s: float = Field(30.0, gt=0)
    # where the embedded default (no provider configured) writes: console and this file
    notify_console_file: Path | None = None  # default: <var>/log/notifications.log
    # acknowledgement links: their base (notify's HTTP port as people reach it) and the
    # secret that signs them (default: made once and kept in the var folder)
    notify_public_url: str = ""
    notify_link_secret: str = ""
    notify_escalation_check_s: float = Field(5.0, gt=0)
