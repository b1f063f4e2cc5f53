"""The checkpoint's handlers on the in-memory unit of work: no broker, no database."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from gridcare.checkpoint import handlers
from gridcare.checkpoint.domain.health import GateHealth
from gridcare.checkpoint.domain.state import GateState
from gridcare.checkpoint.unit_of_work import FakeUnitOfWork
from gridcare.contracts import refdata
from gridcare.contracts.checkpoint import (
    ControlLevelSet,
    GateCameOnline,
    GateSendingBadInput,
    GateWentOffline,
    OverrideRecorded,
    PermitIssued,
    PermitOverdue,
    QuarantineBreachAttempted,
)
from gridcare.contracts.edge import DoorOpened
from gridcare.contracts.notify import NotificationRequested
from gridcare.contracts.refdata import (
    Building,
    Channel,
    ChatGroup,
    Community,
    CommunityPolicy,
    Compound,
    ControlLevel,
    Escalation,
    Gate,
    Household,
    Resident,
    Staff,
)
from gridcare.contracts.screening import CompoundLevelChanged, PersonStatusChanged
from gridcare.shared.envelope import Envelope, utcnow
from gridcare.shared.errors import ApiError, Permanent
from gridcare.shared.uow import AlreadyHandled, Inbound

# Kinds of reference data that only notify keeps (it reaches people through them).
NOTIFY_ONLY = (
    Staff(
        staff_id="DS-01",
        community_id="CM-1",
        name="Zhou Peng",
        phone="+86 136 0000 0003",
        roles=["duty_staff"],
        gates=["g1", "g2"],
        channels=["chat", "sms"],
        chat_url="http://127.0.0.1:8099/hooks/staff-DS-01",
    ),
    ChatGroup(
        group_id="CG-C01",
        community_id="CM-1",
        place="compound",
        place_id="C-01",
        name="Donghu Garden",
        url="http://127.0.0.1:8099/hooks/compound-C-01",
    ),
    Channel(
        channel_id="SMS-1",
        community_id="CM-1",
        kind="sms",
        url="https://sms.example.cn/send?to={phone}",
        rate_per_s=20,
        max_segments=3,
    ),
)


def as_delivered(entity):
    """The entity as a consumer gets it: the envelope's JSON read back through TYPES."""
    env = Envelope.from_bytes(Envelope.wrap(entity, source="gridcare-import").to_bytes())
    return refdata.TYPES[env.type].model_validate(env.data)


SEALED, PRECAUTION = ControlLevel.SEALED, ControlLevel.PRECAUTION


async def community() -> tuple[FakeUnitOfWork, GateState]:
    uow, state = FakeUnitOfWork(), GateState()
    for entity in (
        Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
        Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
        Gate(gate_id="g1", compound_id="C-01", name="North"),
        Gate(gate_id="g2", compound_id="C-01", name="South"),
        Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
        Household(household_id="H-0101", building_id="B-01", unit="1-101"),
        Household(household_id="H-0102", building_id="B-01", unit="1-102"),
        Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
        Resident(resident_id="R-1002", household_id="H-0101", name="Li Lei"),
    ):
        await handlers.reference_data_changed(entity, uow, state)
    return uow, state


def door(event_id: str, household: str, at: datetime) -> DoorOpened:
    """A door sensor's event as the device sends it (its time as RFC 3339 text)."""
    return DoorOpened(event_id=event_id, household_id=household, opened_at=at.isoformat())


def status(person: str, holds: bool, at: datetime, status: str = "home_quarantine"):
    return PersonStatusChanged(
        person_id=person,
        status=status,
        holds_at_gate=holds,
        status_label={"zh": "居家隔离", "en": "home quarantine"},
        household_id="H-0101",
        decided_at=at,
    )


# --- reference data, policies, levels ------------------------------------------------------
async def test_reference_data_reaches_the_gates_once_committed():
    uow, state = await community()
    assert state.home_compound("R-1001") == "C-01"
    assert state.zone_of("C-01") == "Asia/Shanghai"
    assert await uow.places.refdata.get(Resident.TYPE, "R-1001") is not None


async def test_a_policy_sets_what_it_names_and_keeps_the_defaults():
    uow, state = await community()
    await handlers.policy_set(CommunityPolicy(community_id="CM-1", fever_c=37.0), uow, state)
    p = state.policy("C-01")
    assert p.fever_c == 37.0 and p.permit_quota == 1 and p.heartbeat_interval_s == 30
    shown = handlers.policy_of("CM-1", state)
    assert shown["set"] == ["fever_c"] and shown["policy"]["max_valid_c"] == 45.0
    with pytest.raises(ApiError, match="CM-9"):
        handlers.policy_of("CM-9", state)


async def test_the_newest_level_decision_wins():
    uow, state = await community()
    t = utcnow()
    await handlers.set_level("C-01", SEALED, "ops", "cluster", t, uow, state)
    late = CompoundLevelChanged(
        compound_id="C-01", level=PRECAUTION, reason="x", decided_at=t - timedelta(minutes=5)
    )
    await handlers.compound_level_changed(late, uow, state)
    assert state.level("C-01") is SEALED
    newer = CompoundLevelChanged(
        compound_id="C-01", level=PRECAUTION, reason="clear", decided_at=t + timedelta(minutes=5)
    )
    await handlers.compound_level_changed(newer, uow, state)
    assert state.level("C-01") is PRECAUTION
    assert [e["set_by"] for e in uow.events(ControlLevelSet)] == ["ops", "screening"]


async def test_the_office_cannot_set_the_level_of_an_unknown_compound():
    uow, state = await community()
    with pytest.raises(ApiError) as err:
        await handlers.office_sets_level("C-99", SEALED, "ops", "", uow, state)
    assert err.value.code == "unknown_compound" and uow.controls.rows == {}
    [row] = await handlers.levels(None, uow, state)
    assert (row["compound_id"], row["level"], row["set_by"]) == (
        "C-01",
        "precaution",
        "compounds.csv",
    )


# --- holds and doors -------------------------------------------------------------------------
async def test_a_hold_comes_from_screening_as_it_says():
    uow, state = await community()
    t = utcnow()
    await handlers.person_status_changed(status("R-1001", True, t), uow, state)
    assert "R-1001" in state.held and "H-0101" in state.quarantined_households
    # a status the checkpoint has never heard of: screening says whether it holds
    await handlers.person_status_changed(
        status("R-1001", False, t + timedelta(seconds=1), "a_status_added_later"), uow, state
    )
    assert "R-1001" not in state.held and not state.quarantined_households
    # an older decision arriving late does not hold them again
    await handlers.person_status_changed(status("R-1001", True, t), uow, state)
    assert "R-1001" not in state.held


async def test_a_quarantined_door_alerts_and_any_other_is_recorded():
    uow, state = await community()
    await handlers.person_status_changed(status("R-1001", True, utcnow()), uow, state)
    opened = datetime(2026, 3, 11, 23, 0, tzinfo=UTC)
    await handlers.door_opened(door("d-1", "H-0101", opened), "H-0101", uow, state)
    await handlers.door_opened(door("d-2", "H-0102", opened), "H-0102", uow, state)
    [breach] = uow.events(QuarantineBreachAttempted)
    assert (breach["via"], breach["household_id"], breach["compound_id"]) == (
        "door",
        "H-0101",
        "C-01",
    )
    assert breach["status_label"]["zh"] == "居家隔离"
    assert {d["event_id"]: d["quarantined"] for d in uow.register.doors.values()} == {
        "d-1": True,
        "d-2": False,
    }


def held(person: str, status: str, at: datetime, at_home: bool | None) -> PersonStatusChanged:
    """Screening's decision holding ``person`` (of H-0101) at the gate, confining them at
    home or not (None: a producer from before ``holds_at_home``)."""
    return PersonStatusChanged(
        person_id=person,
        status=status,
        holds_at_gate=True,
        holds_at_home=at_home,
        status_label={"en": status},
        household_id="H-0101",
        decided_at=at,
    )


def doors_quarantined(uow) -> dict[str, bool]:
    return {d["event_id"]: d["quarantined"] for d in uow.register.doors.values()}


async def test_a_door_whose_only_held_member_is_at_a_site_or_in_hospital_is_only_recorded():
    uow, state = await community()
    t = utcnow()
    await handlers.person_status_changed(held("R-1001", "central_quarantine", t, False), uow, state)
    await handlers.person_status_changed(held("R-1002", "in_hospital", t, False), uow, state)
    assert set(state.held) == {"R-1001", "R-1002"}  # both still held at the gate
    assert state.holders_of("H-0101") == [] and "H-0101" not in state.quarantined_households
    opened = datetime(2026, 3, 11, 23, 0, tzinfo=UTC)
    await handlers.door_opened(door("d-1", "H-0101", opened), "H-0101", uow, state)
    assert uow.events(QuarantineBreachAttempted) == []
    assert doors_quarantined(uow) == {"d-1": False}
    assert uow.holds.rows["R-1001"].holds_at_home is False


async def test_a_door_alerts_for_a_member_at_home_even_if_another_is_at_a_site():
    uow, state = await community()
    t = utcnow()
    await handlers.person_status_changed(held("R-1001", "central_quarantine", t, False), uow, state)
    await handlers.person_status_changed(held("R-1002", "home_quarantine", t, True), uow, state)
    assert [h.person_id for h in state.holders_of("H-0101")] == ["R-1002"]
    opened = datetime(2026, 3, 11, 23, 0, tzinfo=UTC)
    await handlers.door_opened(door("d-1", "H-0101", opened), "H-0101", uow, state)
    [breach] = uow.events(QuarantineBreachAttempted)
    assert (breach["household_id"], breach["status"]) == ("H-0101", "home_quarantine")
    assert doors_quarantined(uow) == {"d-1": True}


async def test_a_move_from_home_to_a_site_stops_the_door_alert_and_back_home_starts_it():
    uow, state = await community()
    t = utcnow()
    opened = datetime(2026, 3, 11, 23, 0, tzinfo=UTC)
    steps = [
        ("home_quarantine", True, "d-1", True),
        ("central_quarantine", False, "d-2", False),
        ("home_quarantine", True, "d-3", True),  # stepped down to home
        ("in_hospital", False, "d-4", False),
    ]
    for i, (status_, at_home, event_id, _) in enumerate(steps):
        at = t + timedelta(minutes=i)
        await handlers.person_status_changed(held("R-1001", status_, at, at_home), uow, state)
        assert "R-1001" in state.held  # held at the gate all along
        await handlers.door_opened(door(event_id, "H-0101", opened), "H-0101", uow, state)
    assert doors_quarantined(uow) == {e: alerts for _, _, e, alerts in steps}
    assert len(uow.events(QuarantineBreachAttempted)) == 2
    assert not state.quarantined_households


async def test_a_decision_from_a_producer_without_holds_at_home_confines_as_it_holds():
    uow, state = await community()
    t = utcnow()
    await handlers.person_status_changed(held("R-1001", "a_site", t, None), uow, state)
    assert uow.holds.rows["R-1001"].holds_at_home is True
    opened = datetime(2026, 3, 11, 23, 0, tzinfo=UTC)
    await handlers.door_opened(door("d-1", "H-0101", opened), "H-0101", uow, state)
    assert doors_quarantined(uow) == {"d-1": True}
    # not held at all: not confined at home either
    freed = status("R-1001", False, t + timedelta(seconds=1), "released")
    await handlers.person_status_changed(freed, uow, state)
    assert uow.holds.rows["R-1001"].holds_at_home is False and state.holders_of("H-0101") == []


async def test_a_door_event_is_kept_from_when_it_came_in_not_from_when_it_says():
    uow, state = await community()
    dated_1970 = datetime(1970, 1, 1, tzinfo=UTC)
    before = utcnow()
    await handlers.door_opened(door("d-1970", "H-0102", dated_1970), "H-0102", uow, state)
    await handlers.purge_register(28, uow, state)
    [kept] = uow.register.doors.values()
    assert kept["opened_at"] == dated_1970 and kept["received_at"] >= before


async def test_a_door_events_id_reused_for_another_opening_is_told_apart_from_a_repeat():
    uow, state = await community()
    opened = datetime(2026, 3, 11, 23, 0, tzinfo=UTC)
    first = door("d-5", "H-0102", opened)
    await handlers.door_opened(first, "H-0102", uow, state)
    assert await handlers.door_repeated(door("d-5", "H-0102", opened), uow) is False
    later = door("d-5", "H-0102", opened + timedelta(minutes=3))
    assert await handlers.door_repeated(later, uow) is True
    # the first one stands
    assert uow.register.doors["H-0102", "d-5"]["opened_at"] == opened
    assert len(uow.register.doors) == 1
    # one no longer in the register cannot be compared
    assert await handlers.door_repeated(door("d-6", "H-0102", opened), uow) is False


async def test_two_households_sensors_may_use_the_same_event_id():
    """A sensor's id is unique to its own household (§3): the same id from another
    household's sensor is another event (it used to violate the register's key, and be
    retried for an hour before it became a dead letter)."""
    uow, state = await community()
    opened = datetime(2026, 3, 11, 23, 0, tzinfo=UTC)
    await handlers.door_opened(door("d-1", "H-0101", opened), "H-0101", uow, state)
    await handlers.door_opened(door("d-1", "H-0102", opened), "H-0102", uow, state)
    assert set(uow.register.doors) == {("H-0101", "d-1"), ("H-0102", "d-1")}
    assert await handlers.door_repeated(door("d-1", "H-0102", opened), uow) is False


async def test_a_door_event_for_another_household_than_its_subject_is_refused():
    uow, state = await community()
    ev = door("d-3", "H-0101", utcnow())
    with pytest.raises(Permanent, match="subject"):
        await handlers.door_opened(ev, "H-0102", uow, state)


async def test_a_door_event_sent_twice_is_one():
    uow, state = await community()
    ev = door("d-4", "H-0102", utcnow())
    msg = Inbound("checkpoint-doors", "edge-1", "edge-1")
    await handlers.door_opened(ev, "H-0102", uow.handling(msg), state)
    with pytest.raises(AlreadyHandled):
        await handlers.door_opened(ev, "H-0102", uow.handling(msg), state)
    assert len(uow.register.doors) == 1


# --- permits ---------------------------------------------------------------------------------
async def issue(uow, state, holder="R-1001", kind="outing", valid_from=None):
    start = valid_from or utcnow()
    return await handlers.issue_permit(
        holder, kind, start, start + timedelta(hours=4), 1, 2.0, "office", uow, state
    )


async def test_the_household_quota_counts_local_days():
    uow, state = await community()
    # 08:00 on 12 March in Shanghai; the quota is 1 per household per 3 local days
    day1 = datetime(2026, 3, 12, 0, 0, tzinfo=UTC)
    first = await issue(uow, state, valid_from=day1)
    assert first["valid_from"] == "2026-03-12T08:00:00+08:00"  # on the local clock
    with pytest.raises(ApiError) as err:  # the other resident of the household, same window
        await issue(uow, state, holder="R-1002", valid_from=day1 + timedelta(days=2))
    assert err.value.code == "quota_exceeded"
    # 00:30 on the 15th local time (16:30 UTC on the 14th): a new window has begun
    await issue(uow, state, holder="R-1002", valid_from=datetime(2026, 3, 14, 16, 30, tzinfo=UTC))
    # emergency and medical permits do not count
    await issue(uow, state, kind="emergency", valid_from=day1)
    assert len(uow.events(PermitIssued)) == 3 and len(state.permits) == 3


async def test_a_permit_for_someone_unknown_or_backwards_is_refused():
    uow, state = await community()
    with pytest.raises(ApiError, match="R-9999"):
        await issue(uow, state, holder="R-9999")
    t = utcnow()
    with pytest.raises(ApiError, match="after valid_from"):
        await handlers.issue_permit("R-1001", "outing", t, t, 1, None, "office", uow, state)
    assert uow.permits.rows == {}


async def test_an_overdue_outing_is_alerted_once():
    uow, state = await community()
    permit = await issue(uow, state)
    exited = utcnow() - timedelta(hours=3)
    uow.permits.rows[permit["permit_id"]].update(
        state="out", exited_at=exited, return_by=exited + timedelta(hours=2)
    )
    assert await handlers.alert_overdue(uow, state) == 1
    assert await handlers.alert_overdue(uow, state) == 0
    [overdue] = uow.events(PermitOverdue)
    assert overdue["holder_id"] == "R-1001"


# --- overrides, the register -----------------------------------------------------------------
def passage(uow, scan_id, verdict="deny", direction="out", at=None, gate="g1", received=None):
    """A passage in the register: scanned ``at`` (the device's time), decided when it was
    ``received`` (our clock; by default when it was scanned)."""
    scanned = at or utcnow()
    uow.register.record(
        gate_id=gate,
        scan_id=scan_id,
        compound_id="C-01",
        person_id="R-1001",
        direction=direction,
        verdict=verdict,
        reasons=["fever"] if verdict == "deny" else [],
        temperature_c=38.5,
        scanned_at=scanned,
        decided_at=received or scanned,
    )


async def test_an_override_lets_a_denied_person_out_once():
    uow, state = await community()
    passage(uow, "s-1")
    passage(uow, "s-2", verdict="allow")
    done = await handlers.override("g1", "s-1", "S-07", "checked by hand", uow, state)
    assert done["at"].endswith("+08:00")
    assert state.out_of("C-01")[0][0] == "R-1001"
    for scan, code in (("s-1", "already_overridden"), ("s-2", "not_denied"), ("s-9", "not_found")):
        with pytest.raises(ApiError) as err:
            await handlers.override("g1", scan, "S-07", "again", uow, state)
        assert err.value.code == code
    assert len(uow.events(OverrideRecorded)) == 1


async def test_trace_and_passages_read_on_the_local_clock():
    uow, state = await community()
    t = datetime(2026, 3, 11, 23, 31, tzinfo=UTC)
    passage(uow, "s-1", at=t)
    passage(uow, "s-2", at=t + timedelta(minutes=10), gate="g2")
    passage(uow, "s-3", at=t + timedelta(hours=2))
    around = await handlers.trace("g1", "s-1", None, None, 15, True, uow, state)
    assert [p["scan_id"] for p in around["passages"]] == ["s-1", "s-2"]
    assert around["from"] == "2026-03-12T07:16:00+08:00"
    [newest] = await handlers.newest_passages(1, None, None, uow, state)
    assert newest["scan_id"] == "s-3" and newest["scanned_at"].endswith("+08:00")


async def test_a_trace_comes_in_pages_in_time_order():
    uow, state = await community()
    t = datetime(2026, 3, 11, 23, 31, tzinfo=UTC)
    for i in range(7):  # two scans at each second: the cursor keeps ties apart
        passage(uow, f"s-{i}", at=t + timedelta(seconds=i // 2), gate="g1")
    seen, after, pages = [], None, 0
    while True:
        page = await handlers.trace(
            None, None, "C-01", t, 5, False, uow, state, limit=3, after=after
        )
        seen += [p["scan_id"] for p in page["passages"]]
        pages += 1
        if (after := page["next"]) is None:
            break
    assert seen == [f"s-{i}" for i in range(7)] and pages == 3
    with pytest.raises(ApiError):
        await handlers.trace(None, None, "C-01", t, 5, False, uow, state, after="nonsense")


async def test_retention_forgets_old_passages_everywhere():
    uow, state = await community()
    old = utcnow() - timedelta(days=40)
    passage(uow, "s-old", verdict="allow", at=old)
    state.passed("C-01", "R-1001", "g1", "out", old, old)
    await handlers.purge_register(28, uow, state)
    assert uow.register.passages == {} and state.out_of("C-01") == []


async def test_retention_counts_from_when_the_checkpoint_received_a_passage():
    """A device's clock says 1970 (or a device replays its buffer after an outage): the
    passage is kept for the retention period from when it came in, and so is who is out."""
    uow, state = await community()
    now = utcnow()
    dated_1970 = datetime(1970, 1, 1, tzinfo=UTC)
    passage(uow, "s-1970", verdict="allow", at=dated_1970, received=now)
    state.passed("C-01", "R-1001", "g1", "out", dated_1970, now)
    # and the other way round: a device clock far ahead does not keep a row for ever
    ahead = now + timedelta(days=365)
    passage(uow, "s-ahead", at=ahead, received=now - timedelta(days=40))
    await handlers.purge_register(28, uow, state)
    assert set(uow.register.passages) == {("g1", "s-1970")}
    assert [(p, g) for p, g, _ in state.out_of("C-01")] == [("R-1001", "g1")]
    # 28 days after it came in, it goes
    state.forget_passages_before(now + timedelta(seconds=1))
    assert state.out_of("C-01") == []


# --- gate health -----------------------------------------------------------------------------
async def test_a_silent_gate_is_reported_once_and_back_at_its_next_heartbeat():
    uow, state = await community()
    await handlers.policy_set(
        CommunityPolicy(community_id="CM-1", heartbeat_interval_s=10), uow, state
    )
    health = GateHealth(started_at=utcnow() - timedelta(minutes=1))
    health.seen("g1", utcnow(), "1.0")
    assert await handlers.check_gates(health, uow, state) == 1  # g2: silent since the start
    assert await handlers.check_gates(health, uow, state) == 0
    [offline] = uow.events(GateWentOffline)
    assert offline["gate_id"] == "g2" and health.online["g2"] is False
    assert health.seen("g2", utcnow(), "1.1") is True  # it was offline: it is back
    await handlers.gate_came_back("g2", health, uow, state)
    assert uow.events(GateCameOnline)[0]["gate_id"] == "g2" and health.online["g2"]
    assert uow.gate_health.rows["g2"]["online"] is True
    # its duty staff are told through notify: gone (urgent, to be acknowledged), back
    gone, back = uow.events(NotificationRequested)
    assert (gone["template"], gone["priority"], gone["needs_ack"]) == (
        "gate.offline",
        "urgent",
        True,
    )
    assert gone["alert_kind"] == "gate_offline" and gone["places"]["community_id"] == "CM-1"
    assert gone["params"]["silent_s"] > 0 and gone["params"]["last_seen_at"] is None
    assert (back["template"], back["priority"], back["needs_ack"]) == (
        "gate.online",
        "normal",
        False,
    )


async def test_a_gate_sending_bad_input_is_announced_to_its_duty_staff():
    uow, state = await community()
    why = "invalid heartbeat: sent_at: Input should be a valid datetime"
    await handlers.gate_sends_bad_input("g2", "heartbeat", why, 10, uow, state)
    [alert] = uow.events(GateSendingBadInput)
    assert (alert["gate_id"], alert["compound_id"], alert["kind"]) == ("g2", "C-01", "heartbeat")
    assert alert["reason"] == why and alert["recorded_per_minute"] == 10
    assert [subject for subject, _ in uow.outbox] == [
        "checkpoint.gate.badinput.g2",
        "notify.requested.normal",
    ]
    # the duty staff are told through notify, which knows who they are and how to reach them
    [told] = uow.events(NotificationRequested)
    assert told["recipient"] == {"kind": "role", "role": "duty_staff", "place_id": "g2"}
    assert told["template"] == "gate.bad_input" and told["params"]["kind"] == "heartbeat"
    assert told["params"]["gate_name"] == "South" and not told["needs_ack"]


@pytest.mark.parametrize("entity", NOTIFY_ONLY, ids=lambda e: e.KIND)
async def test_reference_data_the_checkpoint_does_not_keep_is_skipped(entity):
    """Staff, chat groups and channel providers are notify's: handled without an error
    (so the message is acked, never retried or dead-lettered) and nothing is kept."""
    uow, state = await community()
    rows, commits = copy.deepcopy(uow.state()), uow.commits
    known = (dict(state.gate_compound), dict(state.compound_community))
    msg = Inbound("checkpoint-refdata", "e-staff", "e-staff", type=entity.TYPE)
    await handlers.reference_data_changed(as_delivered(entity), uow.handling(msg), state)
    assert uow.state() == rows and uow.commits == commits and uow.outbox == []
    assert (dict(state.gate_compound), dict(state.compound_community)) == known
    assert not uow.places.keeps(entity)


async def test_notify_settings_of_a_policy_leave_the_gates_alone():
    uow, state = await community()
    p = CommunityPolicy(
        community_id="CM-1",
        fever_c=37.5,
        quiet_hours="22:00-07:00",
        hourly_cap=6,
        digest_minutes=60,
        escalations={"fever": Escalation(chain=["grid_worker", "secretary"], waits_min=[5, 15])},
    )
    await handlers.policy_set(as_delivered(p), uow, state)
    assert state.policy("C-01").fever_c == 37.5
    shown = handlers.policy_of("CM-1", state)
    assert shown["set"] == ["fever_c"]  # the gate settings only
    assert "quiet_hours" not in shown["policy"]
