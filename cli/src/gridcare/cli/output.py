"""What the office tool prints: tables that read at 80 columns, or JSON (``--json``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from .client import NoAnswer, Refused

stdout = Console()
stderr = Console(stderr=True)

_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2})?(\.\d+)?([+-]\d{2}:\d{2}|Z)?$")


def when(value: Any) -> str:
    """A time from an API as a person reads it: ``2026-03-12 07:31``. A service that knows
    the community answers on the community's clock; a time in UTC (a dead letter's, say:
    the library knows no community) is shown on this computer's clock."""
    if isinstance(value, str) and _ISO.match(value):
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if t.utcoffset() in (None, timedelta(0)):
            t = t.astimezone()  # this computer's clock
        return f"{t:%Y-%m-%d %H:%M}"
    return "" if value is None else str(value)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return when(value)


def table(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    title: str | None = None,
    empty: str = "nothing to show",
) -> None:
    """``columns``: (key, heading). Few columns, so a table reads at 80 columns."""
    rows = list(rows)
    if not rows:
        stdout.print(empty)
        return
    grid = Table(title=title, title_justify="left", expand=False, pad_edge=False)
    for _, heading in columns:
        grid.add_column(heading, overflow="fold")
    for r in rows:
        grid.add_row(*(cell(r.get(key)) for key, _ in columns))
    stdout.print(grid)


def as_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def fail(message: str, code: int = 1) -> typer.Exit:
    stderr.print(f"[red]{message}[/]", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def refused(exc: Refused) -> typer.Exit:
    """An error reply: its code and every detail, then exit 1."""
    lines = [f"refused: {exc.code}"]
    for d in exc.detail:
        field = d.get("field") or ""
        lines.append(f"  {field + ': ' if field else ''}{d.get('error', '')}")
    return fail("\n".join(lines))


def no_answer(exc: NoAnswer) -> typer.Exit:
    return fail(str(exc))
