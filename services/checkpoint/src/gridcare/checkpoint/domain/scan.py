"""A gate scan request (the edge contract §1) and its validation.

Every bad field is named at once: the checks that need context (the subject's gate, the
community's valid temperatures, the clock) are field validators too.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from gridcare.shared.schema import Timestamp, Token

if TYPE_CHECKING:
    from .policy import Policy

Number = Annotated[float, Strict()]  # a JSON number (int or float); not a string or bool


class Visitor(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: Annotated[str, Field(min_length=1, max_length=100)]
    phone: Annotated[str, Field(min_length=3, max_length=32)]
    from_region: Annotated[str, Field(min_length=1, max_length=100)]
    negative_test_at: Timestamp | None = None


class ScanRequest(BaseModel):
    """A gate scan as the edge contract §1 defines it. Unknown extra fields are ignored.

    The checks that need context (the subject's gate, the policy's valid temperatures, the
    clock) are field validators too, so one reply names every bad field at once.
    """

    model_config = ConfigDict(extra="ignore")
    scan_id: Token
    gate_id: Token
    direction: Literal["in", "out"]
    person_id: Token
    scanned_at: Timestamp
    temperature_c: Number | None = None
    mask: StrictBool
    health_code: Literal["green", "yellow", "red"] | None = None
    visitor: Visitor | None = None

    @field_validator("gate_id")
    @classmethod
    def _gate_matches_subject(cls, v: str, info: ValidationInfo) -> str:
        expected = (info.context or {}).get("subject_gate")
        if expected is not None and v != expected:
            raise ValueError(f"does not match the subject's gate {expected!r}")
        return v

    @field_validator("temperature_c")
    @classmethod
    def _plausible_temperature(cls, v: float | None, info: ValidationInfo) -> float | None:
        policy = (info.context or {}).get("policy")
        if (
            v is not None
            and policy is not None
            and not (policy.min_valid_c <= v <= policy.max_valid_c)
        ):
            raise ValueError(f"{v} is outside {policy.min_valid_c:g}-{policy.max_valid_c:g} °C")
        return v

    @field_validator("scanned_at")
    @classmethod
    def _not_in_future_nor_too_old(cls, v: datetime, info: ValidationInfo) -> datetime:
        context = info.context or {}
        latest = context.get("latest")
        if latest is not None and v > latest:
            raise ValueError("too far in the future")
        earliest = context.get("earliest")
        if earliest is not None and v < earliest:
            days = context["max_age"] / timedelta(days=1)
            raise ValueError(f"older than the register keeps ({days:g} days)")
        return v


class InvalidScan(Exception):
    def __init__(self, detail: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{d['field']}: {d['error']}" for d in detail))
        self.detail = detail

    def reply(self) -> dict[str, Any]:
        return {"error": {"code": "invalid_scan", "detail": self.detail}}


def parse_scan(
    raw: bytes,
    subject_gate: str,
    now: datetime,
    max_future: timedelta,
    policy: Policy,
    max_age: timedelta | None = None,
) -> ScanRequest:
    """Validate a scan request; raise :class:`InvalidScan` naming every bad field.

    ``scanned_at`` may be at most ``max_future`` ahead of ``now`` (our clock), and at most
    ``max_age`` behind it (the register's retention: a device replaying its buffer after an
    outage is recorded with its own time; anything older the register would not keep)."""
    context: dict[str, Any] = {
        "subject_gate": subject_gate,
        "policy": policy,
        "latest": now + max_future,
    }
    if max_age is not None:
        context["earliest"] = now - max_age
        context["max_age"] = max_age
    try:
        return ScanRequest.model_validate_json(raw, context=context)
    except ValidationError as exc:
        detail: list[dict[str, str]] = []
        for err in exc.errors(include_url=False):
            if err["type"] == "json_invalid" or not err["loc"]:
                detail.append({"field": "(body)", "error": "not a JSON object"})
                continue
            msg = err["msg"].removeprefix("Value error, ")
            detail.append({"field": ".".join(str(p) for p in err["loc"]), "error": msg})
        raise InvalidScan(detail) from None


def fingerprint(scan: ScanRequest) -> int:
    """What the device said in a scan, as a number (CRC-32 of its fields, stable from one
    process to the next: the register keeps it). A retry with the same ``scan_id`` and
    another fingerprint is not a retry: the id was reused for other content. Times count
    as instants (``+08:00`` and ``Z`` for the same instant are the same scan)."""
    text = (
        f"{scan.person_id}|{scan.direction}|{scan.scanned_at.timestamp()!r}|"
        f"{scan.temperature_c!r}|{scan.mask}|{scan.health_code}"
    )
    v = scan.visitor
    if v is not None:
        tested = v.negative_test_at.timestamp() if v.negative_test_at else None
        text += f"|{v.name}|{v.phone}|{v.from_region}|{tested!r}"
    return zlib.crc32(text.encode())
