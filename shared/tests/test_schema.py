"""The building blocks of every edge schema (``shared/.../schema.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from gridcare.shared.schema import Timestamp

TIMESTAMP = TypeAdapter(Timestamp)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


EDGES = [datetime(1, 1, 1), datetime(1, 1, 1, 13, 59), datetime(9999, 12, 31, 23, 59, 59)]
any_time = st.sampled_from(EDGES) | st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
)


@given(when=any_time, tz=offsets)
def test_any_rfc3339_time_is_held_in_utc_or_refused_as_invalid(when, tz):
    """Every year and every offset RFC 3339 allows: the same instant in UTC, or (at the
    edges of the calendar) a validation error, never another exception."""
    text = when.replace(tzinfo=tz).isoformat()
    try:
        held = TIMESTAMP.validate_python(text)
    except ValidationError as exc:
        assert "outside the calendar" in str(exc)
        return
    assert held.tzinfo is UTC
    assert held == when.replace(tzinfo=tz)


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_the_edges_of_the_calendar_are_refused(text):
    with pytest.raises(ValidationError, match="outside the calendar"):
        TIMESTAMP.validate_python(text)


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-14:00"])
def test_the_edges_that_stay_on_the_calendar_are_kept(text):
    assert TIMESTAMP.validate_python(text).tzinfo is UTC
