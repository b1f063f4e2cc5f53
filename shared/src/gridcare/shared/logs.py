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

# 7+ digits in a row (optionally after +): a phone or ID number. Keep the last 4 only.
_LONG = re.compile(r"\+?\d{7,}")


def mask_numbers(text: str) -> str:
    return _LONG.sub(lambda m: "***" + m.group(0)[-4:], text)


def _redact(_logger, _name, event_dict: dict) -> dict:
    for key, value in event_dict.items():
        if isinstance(value, str) and key != "timestamp":
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
