"""Log masking (``logs.py``): phone and ID numbers never reach a log in clear, however
they are written; identifiers are never touched, so a log can be searched by them."""

from __future__ import annotations

import io
import json
import logging

import pytest

from gridcare.shared import logs
from gridcare.shared.envelope import new_id, stable_id
from gridcare.shared.logs import mask_numbers


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+86 139 5555 6666", "***6666"),
        ("call +8613955556666 now", "call ***6666 now"),
        ("13955556666", "***6666"),
        ("139-5555-6666", "***6666"),
        ("(010) 8888 6666", "(***6666"),
        ("010-88886666", "***6666"),
        ("id 11010519491231002X", "id ***002X"),
        ('{"phone": "+86 139 5555 6666"}', '{"phone": "***6666"}'),
        (
            "reason: invalid phone '+86 139 5555 6666' in visitor",
            "reason: invalid phone '***6666' in visitor",
        ),
    ],
)
def test_phone_and_id_numbers_are_masked_as_people_write_them(text, masked):
    assert mask_numbers(text) == masked
    assert "5555" not in mask_numbers(text) and "19491231" not in mask_numbers(text)


@pytest.mark.parametrize(
    "text",
    [
        "R-1001",
        "g1-000123",
        "scan g1-0001234567 at gate g1",
        "d-12345678",
        stable_id("checkpoint.FeverDetected", "g1", "s-1"),
        "3f2a1234567b8c9d0e1f2a3b4c5d6e7f",
        "1234567890abcdef1234567890abcdef",
        "H-0101 opened at 2026-12-03 07:31:05+08:00",
        "2026-12-03T07:31:05+08:00",
        "36.6 °C, 37.3",
        "1234.5678",
    ],
)
def test_identifiers_dates_and_readings_are_left_alone(text):
    assert mask_numbers(text) == text


def test_a_log_line_keeps_its_ids_and_masks_its_numbers():
    stream = io.StringIO()
    logs.configure("test")
    handler = logging.getLogger().handlers[0]
    handler.stream = stream
    eid = "12345678" + new_id()[8:]  # an event id that starts with digits
    logs.bind(event_id=eid, correlation_id=eid)
    try:
        logging.getLogger("gridcare.test").error(
            "dead-lettered: visitor phone +86 139 5555 6666 refused", extra={"person_id": "1234567"}
        )
    finally:
        logs.unbind("event_id", "correlation_id")
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["event_id"] == eid and line["correlation_id"] == eid
    assert line["person_id"] == "1234567"
    assert "***6666" in line["event"] and "5555" not in line["event"]
