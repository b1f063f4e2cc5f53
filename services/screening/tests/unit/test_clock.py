"""Screening's clock moved by a file (GRIDCARE_SCREENING_CLOCK_OFFSET_FILE): a test and
drill facility, off by default."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from gridcare.screening.adapters.clock import OffsetClock, process_clock, read_offset
from gridcare.screening.config import ScreeningSettings
from gridcare.shared.envelope import utcnow

REAL = datetime(2026, 3, 12, 0, 0, tzinfo=UTC)


def write(path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_off_by_default_the_real_clock(monkeypatch):
    monkeypatch.delenv("GRIDCARE_SCREENING_CLOCK_OFFSET_FILE", raising=False)
    settings = ScreeningSettings()
    assert settings.screening_clock_offset_file is None
    assert process_clock(settings.screening_clock_offset_file) is utcnow


def test_the_setting_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("GRIDCARE_SCREENING_CLOCK_OFFSET_FILE", str(tmp_path / "ahead"))
    clock = process_clock(ScreeningSettings().screening_clock_offset_file)
    assert isinstance(clock, OffsetClock) and clock.path == tmp_path / "ahead"


def test_the_file_moves_the_clock_each_time_it_changes(tmp_path):
    path = tmp_path / "ahead"
    clock = OffsetClock(path, now=lambda: REAL)
    assert clock() == REAL  # no file yet: the real time
    write(path, "1209600\n")
    assert clock() == REAL + timedelta(days=14)
    write(path, "3600.5")
    assert clock() == REAL + timedelta(hours=1, seconds=0.5)
    path.unlink()
    assert clock() == REAL


@pytest.mark.parametrize("text", ["", "soon", "-60", "nan", "inf", "1e400", "14 days"])
def test_a_bad_file_keeps_the_last_good_offset(tmp_path, text):
    path = tmp_path / "ahead"
    clock = OffsetClock(path, now=lambda: REAL)
    write(path, "60")
    assert clock() == REAL + timedelta(seconds=60)
    write(path, text)
    assert clock() == REAL + timedelta(seconds=60)
    with pytest.raises(ValueError):
        read_offset(text)
