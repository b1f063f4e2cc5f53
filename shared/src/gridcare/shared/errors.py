"""The errors a handler raises for its caller, importable without any framework."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


class ApiError(Exception):
    """A request the service refuses, with a code the caller can act on (an API reply
    ``{"error": {"code", "detail": [{"field", "error"}]}}``)."""

    def __init__(self, code: str, detail: str, field: str = "") -> None:
        super().__init__(detail)
        self.code, self.detail, self.field = code, detail, field

    def reply(self) -> dict[str, Any]:
        return error(self.code, [{"field": self.field, "error": self.detail}])


def error(code: str, detail: list[dict[str, str]]) -> dict[str, Any]:
    return {"error": {"code": code, "detail": detail}}


def bad_fields(exc: ValidationError) -> list[dict[str, str]]:
    """Every bad field of a request pydantic refused, named by its path (``(body)``: the
    request as a whole), in an error reply's ``detail`` form."""
    return [
        {"field": ".".join(map(str, e["loc"])) or "(body)", "error": e["msg"]}
        for e in exc.errors(include_url=False)
    ]


class Permanent(Exception):
    """Raised by a handler for a message that no retry can fix: dead-lettered at once."""
