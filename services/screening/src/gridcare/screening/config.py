"""Screening's own settings (besides every service's, ``gridcare.shared.settings``)."""

from __future__ import annotations

from pydantic import Field

from gridcare.shared.settings import Settings


class ScreeningSettings(Settings):
    # how often the check-in pass runs: reminders after each community's reminder time,
    # door visits for missed days, follow-ups come to their end (it uses screening's clock)
    screening_checkin_tick_s: float = Field(30.0, gt=0)
    # residents reminded (or visits asked for) per transaction of that pass
    screening_reminder_batch: int = Field(2000, ge=1)
