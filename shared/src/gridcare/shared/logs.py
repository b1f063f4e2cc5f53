"""JSON logs, one object per line, with event and correlation ids; phone numbers masked.

Everything (our code, FastStream, nats-py, SQLAlchemy, Alembic) goes through stdlib logging
and is rendered by structlog. Inside a message handler the ids of the message being handled
are bound with :func:`bind` and appear on every line.
"""

from __future__ import annotations

import logging
import re
import sys

import structlog

# A phone or ID number: 7 or more digits, optionally after +, in groups separated by a
# space, a dash or brackets as people write them (+86 139 5555 6666, 010-8888-6666,
# (010) 88886666), with an ID number's check letter X at the end. Only a whole token:
# digits inside an identifier (R-1001, g1-000123, a hex event id) are never touched.
_NUMBER = re.compile(r"(?<![\w-])\+?\d(?:[ ()-]{0,2}\d){6,}[Xx]?(?![\w-])")
# ... but a date (2026-12-03, 2026-12-03 07) is a date.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?: \d{2})?")
# Fields that hold identifiers, whatever digits they have: searched for as they are.
_ID_FIELDS = frozenset({"timestamp", "event_id", "correlation_id", "causation_id"})


def _mask(m: re.Match[str]) -> str:
    found = m.group(0)
    if _DATE.fullmatch(found):
        return found
    digits = re.sub(r"[^\dXx]", "", found)
    return "***" + digits[-4:]


def mask_numbers(text: str) -> str:
    """``text`` with every phone or ID number cut to its last four digits."""
    return _NUMBER.sub(_mask, text)


def _redact(_logger, _name, event_dict: dict) -> dict:
    for key, value in event_dict.items():
        if isinstance(value, str) and key not in _ID_FIELDS and not key.endswith("_id"):
            event_dict[key] = mask_numbers(value)
    return event_dict


def configure(service: str, level: str = "INFO") -> None:
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _redact,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    for noisy in ("sqlalchemy.engine", "aiosqlite", "asyncio", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def bind(**ids: str | None) -> None:
    structlog.contextvars.bind_contextvars(**{k: v for k, v in ids.items() if v})


def unbind(*keys: str) -> None:
    structlog.contextvars.unbind_contextvars(*keys)
