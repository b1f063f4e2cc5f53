"""Bad input from devices: the per-device bound (a token bucket on an injected clock), the
names devices get, and what a bad door event or heartbeat says about itself."""

from __future__ import annotations

import json
import logging

import pytest

from gridcare.checkpoint.domain.badinput import UNKNOWN, BadInputBound, device_of
from gridcare.checkpoint.domain.health import BadHeartbeat, parse_heartbeat
from gridcare.checkpoint.domain.holds import BadDoorEvent, parse_door
from gridcare.checkpoint.entrypoints.devices import Devices
from gridcare.shared.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def bound(per_minute: int = 10, alert_every_s: float = 3600) -> tuple[BadInputBound, Clock]:
    clock = Clock()
    return BadInputBound(per_minute, alert_every_s, clock), clock


def test_a_burst_is_recorded_up_to_the_bound_then_counted_with_one_alert():
    b, _ = bound(per_minute=10)
    outcomes = [b.take("heartbeat", "g1") for _ in range(3000)]
    assert sum(o.record for o in outcomes) == 10
    assert all(o.record for o in outcomes[:10])
    assert sum(o.alert for o in outcomes) == 1 and outcomes[10].alert


def test_the_bound_refills_at_its_rate():
    b, clock = bound(per_minute=6)  # one every 10 s
    for _ in range(6):
        assert b.take("heartbeat", "g1").record
    assert not b.take("heartbeat", "g1").record
    clock.t += 9.9
    assert not b.take("heartbeat", "g1").record
    clock.t += 0.2
    assert b.take("heartbeat", "g1").record
    clock.t += 3600  # a quiet hour fills the bucket again, and no more than that
    assert sum(b.take("heartbeat", "g1").record for _ in range(20)) == 6


def test_a_flood_that_goes_on_is_alerted_once_per_period():
    b, clock = bound(per_minute=1, alert_every_s=3600)
    alerts = 0
    for _ in range(2 * 3600):  # a bad message a second for two hours
        alerts += b.take("heartbeat", "g1").alert
        clock.t += 1
    assert alerts == 2
    # and a clock that steps back does not fill or break the bucket
    clock.t -= 10_000
    assert not b.take("heartbeat", "g1").record


def test_each_device_and_kind_has_its_own_bound():
    b, _ = bound(per_minute=2)
    for _ in range(5):
        b.take("heartbeat", "g1")
    assert b.take("heartbeat", "g2").record
    assert b.take("door", "g1").record


def test_unknown_devices_share_one_bound_and_alert_nobody():
    b, _ = bound(per_minute=3)
    outcomes = [b.take("heartbeat", UNKNOWN) for _ in range(100)]
    assert sum(o.record for o in outcomes) == 3
    assert not any(o.alert for o in outcomes)


def test_a_device_is_named_only_if_the_reference_data_knows_it():
    gates = {"g1": "C-01"}
    assert device_of("g1", gates) == "g1"
    assert device_of("g-made-up-4711", gates) == UNKNOWN
    assert device_of("", gates) == UNKNOWN
    with pytest.raises(ValueError):
        BadInputBound(0, 60)


def test_a_bad_door_event_names_its_fields_not_their_values():
    with pytest.raises(BadDoorEvent) as exc:
        parse_door(b'{"event_id": "d-1", "household_id": "H-1", "opened_at": "13800138000"}', "H-1")
    assert str(exc.value).startswith("invalid message: opened_at: ")
    assert "13800138000" not in str(exc.value)
    with pytest.raises(BadDoorEvent, match=r"invalid message: \(body\): Invalid JSON"):
        parse_door(b"{not json", "H-1")
    ok = {"event_id": "d-1", "household_id": "H-1", "opened_at": "2026-03-12T07:31:05+08:00"}
    with pytest.raises(BadDoorEvent, match="does not match the subject's 'H-2'"):
        parse_door(json.dumps(ok).encode(), "H-2")
    assert parse_door(json.dumps(ok).encode(), "H-1").event_id == "d-1"


def test_a_bad_heartbeat_names_its_fields_not_their_values():
    with pytest.raises(BadHeartbeat) as exc:
        parse_heartbeat(b'{"gate_id": "g1", "sent_at": "+86 139 5555 6666"}', "g1", {"g1": "C-01"})
    assert str(exc.value).startswith("invalid heartbeat: sent_at: ")
    assert "5555" not in str(exc.value)


def test_id_conflicts_are_all_counted_and_logged_within_the_devices_bound(caplog):
    """A gate whose scan ids started again from zero reuses every id: each conflict is
    counted, but the log gets at most the bound's worth a minute."""
    metrics = Metrics("checkpoint")
    devices = Devices(metrics, per_minute=10, alert_every_s=3600)
    with caplog.at_level(logging.WARNING, logger="gridcare.checkpoint.entrypoints.devices"):
        for i in range(100):
            devices.conflict("scan", "g1", f"gate g1: scan_id 'g1-{i:06d}'")
    labels = {"device": "g1", "kind": "scan"}
    assert (
        metrics.registry.get_sample_value("gridcare_checkpoint_id_conflicts_total", labels) == 100
    )
    assert len(caplog.records) == 10
    assert "gate g1: scan_id 'g1-000000'" in caplog.records[0].getMessage()
