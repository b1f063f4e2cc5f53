"""Screening's own settings (besides every service's, ``gridcare.shared.settings``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from gridcare.shared.settings import Settings


class ScreeningSettings(Settings):
    # how often the check-in pass runs: reminders after each community's reminder time,
    # door visits for missed days, follow-ups come to their end (it uses screening's clock)
    screening_checkin_tick_s: float = Field(30.0, gt=0)
    # residents reminded (or visits asked for) per transaction of that pass
    screening_reminder_batch: int = Field(2000, ge=1)
    # the outbox relay publishes at once after a commit (every service's default lingers
    # 20 ms to take several commits' rows in one pass): a decision reaches the gates that
    # much sooner (bench/results/enforcement.md); a big pass's rows go in full batches anyway
    outbox_linger_s: float = Field(0.0, ge=0)
    # check-ins arriving steadily wait this long for others to join their transaction (one
    # commit for all; entrypoints/residents.py): taken one a commit, a busy morning's
    # commits cost more CPU than the check-ins. An isolated check-in is written at once.
    screening_checkin_linger_s: float = Field(0.004, ge=0, le=0.05)
    # how often compounds are checked for the days without a new case (epidemic-free)
    screening_compound_tick_s: float = Field(60.0, gt=0)
    # a test and drill facility, off by default: a file holding the seconds screening's
    # clock runs ahead of the real time, read again when it changes (adapters/clock.py)
    screening_clock_offset_file: Path | None = None
