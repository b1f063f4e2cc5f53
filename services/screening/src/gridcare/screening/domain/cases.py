"""Cases: the people screening follows. Today, a fever at a gate.

One open fever case per person: the first fever reading opens it, later readings are added
to it (each reading once: a redelivered alert adds nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from gridcare.shared.envelope import stable_id


@dataclass(frozen=True)
class Observation:
    observed_at: datetime
    kind: str  # "temperature_c"
    value: float | None
    source_ref: str  # what it came from: "scan:<gate>:<scan_id>"


@dataclass
class Case:
    case_id: str
    person_id: str
    kind: str
    status: str  # open | closed
    opened_at: datetime
    reason: str
    source_ref: str
    observations: list[Observation] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status == "open"


def scan_ref(gate_id: str, scan_id: str) -> str:
    return f"scan:{gate_id}:{scan_id}"


def fever_at_gate(
    open_case: Case | None,
    *,
    person_id: str,
    gate_id: str,
    scan_id: str,
    temperature_c: float,
    scanned_at: datetime,
    now: datetime,
) -> tuple[Case, Observation, bool]:
    """The person's fever case (opened now, or the open one) and the reading to add to it.
    The flag says whether the case is new."""
    source = scan_ref(gate_id, scan_id)
    reading = Observation(scanned_at, "temperature_c", temperature_c, source)
    if open_case is not None:
        return open_case, reading, False
    case = Case(
        case_id=stable_id("fever-case", gate_id, scan_id),
        person_id=person_id,
        kind="fever",
        status="open",
        opened_at=now,
        reason=f"temperature {temperature_c:.1f} °C at gate {gate_id}",
        source_ref=source,
    )
    return case, reading, True
