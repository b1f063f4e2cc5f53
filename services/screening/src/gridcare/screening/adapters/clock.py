"""Screening's clock in a process a test or a drill moves: the real time plus a number of
seconds read from a file (``GRIDCARE_SCREENING_CLOCK_OFFSET_FILE``; off by default).

A test facility, not an API: only whoever can write that file on screening's host (and set
the variable when the process starts) moves the clock. The file holds one number, the
seconds the clock runs ahead (``1209600`` is 14 days; 0 or no file: the real time). It is
read again whenever it changes (its inode, size or modification time), so a test writes it
(atomically: a temporary file, then ``os.replace``) and screening's next "now" is moved. The
clock never runs behind the real time; a file that is not such a number is logged and the
last good offset kept, so a half-written file never moves the clock anywhere.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from gridcare.shared.envelope import utcnow

log = logging.getLogger(__name__)


def read_offset(text: str) -> float:
    """The seconds in the file's text; ValueError if it is not a finite number ≥ 0."""
    value = float(text.strip())
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{text.strip()!r} is not a number of seconds >= 0")
    return value


class OffsetClock:
    """``() -> datetime``: ``now()`` plus the offset in ``path``."""

    def __init__(self, path: Path, now: Callable[[], datetime] = utcnow) -> None:
        self.path = Path(path)
        self.now = now
        self.offset_s = 0.0
        self._seen: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) last read
        self._announced = False

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._seen is not None:
                log.warning("clock offset file %s removed: screening's clock is real", self.path)
            self._seen, self.offset_s = None, 0.0
            return
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if key == self._seen:
            return
        self._seen = key
        try:
            offset = read_offset(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.error(
                "clock offset file %s not used (%s): offset kept at %ss",
                self.path,
                exc,
                self.offset_s,
            )
            return
        if offset != self.offset_s:
            log.warning(
                "screening's clock now runs %.2f days ahead of the real time (%s)",
                offset / 86400,
                self.path,
            )
        self.offset_s = offset

    def __call__(self) -> datetime:
        if not self._announced:  # on first use: the service's logging is configured by then
            self._announced = True
            log.warning(
                "screening's clock is moved by %s (GRIDCARE_SCREENING_CLOCK_OFFSET_FILE): a "
                "test and drill facility, never for a real community",
                self.path,
            )
        self._refresh()
        return self.now() + timedelta(seconds=self.offset_s)


def process_clock(offset_file: Path | None) -> Callable[[], datetime]:
    """The clock of a screening process: the real one, or one moved by ``offset_file``."""
    return utcnow if offset_file is None else OffsetClock(offset_file)
