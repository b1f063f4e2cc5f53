"""Screening's part of a community's policy (``CommunityPolicy``, ``gridcare policy apply``),
with screening's defaults for every field the policy leaves out (``None``).

Another part of screening adding a field adds it here (with its default) and to the
``policies`` reference table, which keeps the policy's columns screening reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import time
from typing import Any


@dataclass(frozen=True)
class ScreeningPolicy:
    #: a check-in at or above this temperature (°C) is a fever (the community's own
    #: ``fever_c``, the one its gates use, when set)
    fever_c: float = 37.3
    #: residents without a check-in today are reminded after this local time (HH:MM)
    checkin_reminder_at: str = "10:00"
    #: this many local days in a row without a check-in: a door visit is asked for
    missed_days_for_visit: int = 2
    #: a follow-up lasts this many local days from its start (or its last exposure)
    follow_up_days: int = 14
    #: released only with no symptoms (nor fever) in the last this many local days ...
    release_symptom_free_days: int = 3
    #: ... and, if True, a negative test taken since the last day with symptoms
    release_needs_negative_test: bool = True
    #: close contacts: whoever passed the same gate within this many minutes of a
    #: confirmed case's passage ...
    contact_window_minutes: float = 15
    #: ... in the last this many days before the case was confirmed
    contact_lookback_days: int = 4
    #: a confirmed close contact's household goes into home quarantine at once (False: the
    #: grid worker's next step)
    contacts_quarantine: bool = False
    #: a confirmed case raises its compound to this level ("none": left as it is)
    seal_on_confirmed: str = "sealed"
    #: this many days without a new confirmed case make a compound epidemic-free ...
    epidemic_free_days: int = 14
    #: ... and relax its level to this one (if it is stricter)
    epidemic_free_level: str = "precaution"
    #: what a questionnaire's reply tells a resident to call in an emergency ...
    emergency_number: str = "120"
    #: ... and the psychological crisis hotline it names (China's national one by default)
    crisis_hotline: str = "12356"

    @classmethod
    def of(cls, row: Mapping[str, Any] | None) -> ScreeningPolicy:
        """The policy of a community from its row (``None``: no policy set; a field that
        is ``None`` or absent: screening's default)."""
        if not row:
            return cls()
        given = {f.name: row.get(f.name) for f in fields(cls)}
        return cls(**{k: v for k, v in given.items() if v is not None})

    @property
    def reminder_time(self) -> time:
        hours, minutes = self.checkin_reminder_at.split(":")
        return time(int(hours), int(minutes))
