"""The streams every service declares (``contracts.STREAMS``): no two take the same
subject, every event lands in exactly one, and the streams that carry what someone must
act on refuse new messages when full rather than discard unconsumed ones."""

from __future__ import annotations

import importlib
import itertools
import pkgutil

import pytest

import gridcare.contracts as contracts
from gridcare.contracts import STREAMS, checkpoint, dispatch, edge, notify, refdata, screening
from gridcare.shared.envelope import Event
from gridcare.shared.streams import DEADLETTER


def overlap(a: str, b: str) -> bool:
    """Whether some subject matches both patterns (``*`` one token, ``>`` one or more)."""
    x, y = a.split("."), b.split(".")
    for i in range(max(len(x), len(y)) + 1):
        if i < len(x) and x[i] == ">":
            return i < len(y)
        if i < len(y) and y[i] == ">":
            return i < len(x)
        if i >= len(x) or i >= len(y):
            return len(x) == len(y)
        if x[i] != y[i] and "*" not in (x[i], y[i]):
            return False
    return True


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("checkpoint.>", "checkpoint.gate.>", True),
        ("checkpoint.fever.>", "checkpoint.gate.>", False),
        ("checkpoint.permit.overdue.>", "checkpoint.permit.issued.>", False),
        ("checkpoint.permit.*.x", "checkpoint.permit.issued.>", True),
        ("door.*.opened", "door.H-1.opened", True),
        ("a.b", "a.b.c", False),
        ("a.>", "a", False),
    ],
)
def test_overlap(a, b, expected):
    assert overlap(a, b) is expected and overlap(b, a) is expected


def test_no_two_streams_take_the_same_subject():
    patterns = [(s.name, p) for s in STREAMS for p in s.subjects]
    for (n1, p1), (n2, p2) in itertools.combinations(patterns, 2):
        assert n1 == n2 or not overlap(p1, p2), f"{n1} {p1} and {n2} {p2} overlap"
    assert len({s.name for s in STREAMS}) == len(STREAMS)


def events() -> list[type[Event]]:
    found = []
    for mod in pkgutil.iter_modules(contracts.__path__):
        module = importlib.import_module(f"gridcare.contracts.{mod.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Event) and value.TYPE:
                found.append(value)
    return found


def test_every_subject_a_producer_publishes_on_is_in_one_stream():
    subjects = [
        value
        for module in (checkpoint, screening, dispatch, edge, refdata, notify)
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, str) and "." in value
    ]
    for subject in subjects:
        concrete = ".".join("x" if "{" in t or t in "*>" else t for t in subject.split("."))
        if concrete.startswith(("gate.", "resident.", "staff.")):
            continue  # request/reply and heartbeats: core NATS, never a stream
        takers = [s.name for s in STREAMS if s.captures(concrete)]
        assert len(takers) == 1, f"{subject}: {takers}"
    assert len(events()) > 10


def test_what_someone_must_act_on_is_refused_when_full_not_discarded():
    must_keep = {
        refdata.STREAM,
        checkpoint.STREAM,
        screening.STREAM,
        dispatch.STREAM,
        edge.STREAM,
        notify.REQUESTS,
    }
    for spec in STREAMS:
        assert spec.refuse_when_full is (spec in must_keep), spec.name
    assert not checkpoint.NOTICES.refuse_when_full and not DEADLETTER.refuse_when_full
    # the checkpoint's alerts and its announcements are in different streams
    alert = checkpoint.FEVER_DETECTED.format(gate_id="g1")
    notice = checkpoint.PERMIT_ISSUED.format(compound_id="C-01")
    assert checkpoint.STREAM.captures(alert) and not checkpoint.STREAM.captures(notice)
    assert checkpoint.NOTICES.captures(notice)
