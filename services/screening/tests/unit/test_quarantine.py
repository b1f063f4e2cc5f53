"""Quarantine on the in-memory unit of work: a household's home quarantine, central sites
(intake all or nothing, transfer, discharge, occupancy). No broker, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridcare.contracts.refdata import (
    Building,
    Community,
    CommunityPolicy,
    Compound,
    Grid,
    Household,
    Resident,
    Staff,
)
from gridcare.contracts.screening import PersonStatusChanged
from gridcare.screening.domain import quarantine as q
from gridcare.screening.domain.status import HealthStatus, Role
from gridcare.screening.handlers import quarantine as handlers
from gridcare.screening.handlers import refdata as refdata_handlers
from gridcare.screening.handlers.status import change_status
from gridcare.screening.unit_of_work import FakeUnitOfWork
from gridcare.shared.errors import ApiError

T0 = datetime(2026, 3, 11, 23, 31, 5, tzinfo=UTC)  # 07:31:05 on the 12th in Shanghai
HOME, CENTRAL = HealthStatus.HOME_QUARANTINE, HealthStatus.CENTRAL_QUARANTINE
CONTACTS = [f"R-3{n:03d}" for n in range(1, 9)]  # eight close contacts in H-0301..H-0308


async def community() -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    entities = [
        Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
        Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
        Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
        Grid(
            grid_id="G-01",
            community_id="CM-1",
            name="Grid 1",
            worker_id="W-01",
            worker_name="Li Mei",
            worker_phone="+86 138 0000 0001",
        ),
        Staff(
            staff_id="S-01",
            community_id="CM-1",
            name="Secretary Wang",
            phone="+86 137 0000 0001",
            roles=["secretary"],
            channels=["sms"],
        ),
        Staff(
            staff_id="D-01",
            community_id="CM-1",
            name="Dr Chen",
            phone="+86 137 0000 0002",
            roles=["community_doctor"],
            channels=["sms"],
        ),
        Household(household_id="H-0101", building_id="B-01", unit="1-101"),
        Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
        Resident(resident_id="R-1002", household_id="H-0101", name="Wang Lei"),
        Resident(resident_id="R-1003", household_id="H-0101", name="Wang Min"),
        Household(household_id="H-0102", building_id="B-01", unit="1-102"),
        Resident(resident_id="R-2001", household_id="H-0102", name="Zhao Yi"),
    ]
    for n, person in enumerate(CONTACTS, start=1):
        entities.append(Household(household_id=f"H-03{n:02d}", building_id="B-01", unit=f"3-{n}"))
        entities.append(Resident(resident_id=person, household_id=f"H-03{n:02d}", name=person))
    for entity in entities:
        await refdata_handlers.reference_data_changed(entity, uow)
    return uow


async def status(uow: FakeUnitOfWork, person: str) -> HealthStatus:
    d = await uow.statuses.get(person)
    return d.status if d else HealthStatus.NORMAL


async def set_to(uow: FakeUnitOfWork, person: str, to: HealthStatus, role: Role) -> None:
    async with uow:
        await change_status(uow, person, to, by="x", role=role, reason="given", now=T0)
        await uow.commit()


# --- the domain -------------------------------------------------------------------------------
def test_planned_end_is_fourteen_local_days_at_the_same_local_time():
    end = q.planned_end(T0, "Asia/Shanghai")
    assert end == T0 + timedelta(days=14)
    # across a change of the clocks the local time stays (Berlin, 29 March 2026)
    start = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)  # 09:00 CET
    end = q.planned_end(start, "Europe/Berlin", 14)
    assert end == datetime(2026, 4, 3, 7, 0, tzinfo=UTC)  # 09:00 CEST


def test_rooms_go_in_natural_order_and_a_full_site_names_how_many_fit():
    rooms = ["10", "2", "1", "1201b", "1201a"]
    assert q.assign_rooms("S", rooms, {"1"}, ["a", "b", "c"]) == {
        "a": "2",
        "b": "10",
        "c": "1201a",
    }
    with pytest.raises(q.QuarantineRefused) as err:
        q.assign_rooms("S", rooms, {"1", "2"}, ["a", "b", "c", "d"])
    assert err.value.code == "site_full" and "only 3 would" in err.value.detail


def test_a_batch_names_each_person_once():
    with pytest.raises(q.QuarantineRefused) as err:
        q.check_batch(["a", "b", "a"])
    assert err.value.code == "duplicate_people" and "a" in err.value.detail
    with pytest.raises(q.QuarantineRefused):
        q.check_batch([])


# --- a household at home ----------------------------------------------------------------------
async def test_every_member_goes_into_home_quarantine_with_the_household_on_the_event():
    uow = await community()
    result = await handlers.start_household(
        uow, "H-0101", by="S-01", role=None, reason="returned from a risk area", now=T0
    )
    assert [m["status"] for m in result["members"]] == ["home_quarantine"] * 3
    assert result["until"] == "2026-03-26T07:31:05+08:00"  # 14 local days
    events = uow.events(PersonStatusChanged)
    assert {e["person_id"] for e in events} == {"R-1001", "R-1002", "R-1003"}
    assert all(e["household_id"] == "H-0101" and e["holds_at_gate"] for e in events)
    assert all(e["until"] == "2026-03-25T23:31:05Z" for e in events)
    assert await status(uow, "R-2001") == HealthStatus.NORMAL  # another household


async def test_the_communitys_policy_sets_the_days():
    uow = await community()
    await refdata_handlers.reference_data_changed(
        CommunityPolicy(community_id="CM-1", follow_up_days=21), uow
    )
    result = await handlers.start_household(uow, "H-0101", by="S-01", role=None, reason="r", now=T0)
    assert result["until"] == "2026-04-02T07:31:05+08:00"  # 21 local days


async def test_a_member_held_more_strictly_keeps_it():
    uow = await community()
    await set_to(uow, "R-1001", HealthStatus.CONFIRMED, Role.LAB)
    await set_to(uow, "R-1002", HealthStatus.CLOSE_CONTACT, Role.SECRETARY)
    async with uow:
        decisions = await handlers.quarantine_household(
            uow, "H-0101", by="lab", role=Role.SCREENING, reason="a positive test", now=T0
        )
        await uow.commit()
    assert [(d.person_id, d.status) for d in decisions] == [
        ("R-1001", HealthStatus.CONFIRMED),
        ("R-1002", HOME),
        ("R-1003", HOME),
    ]
    assert await status(uow, "R-1001") == HealthStatus.CONFIRMED
    changed = [e["person_id"] for e in uow.events(PersonStatusChanged)]
    assert changed.count("R-1001") == 1  # only the confirmation, no step to home quarantine


async def test_starting_again_extends_never_shortens():
    uow = await community()
    later = T0 + timedelta(days=20)
    await handlers.start_household(uow, "H-0101", by="S-01", role=None, reason="r", now=T0)
    await handlers.start_household(
        uow, "H-0101", by="S-01", role=None, reason="new exposure", now=T0, until=later
    )
    [hq] = await uow.household_quarantines.active()
    assert hq.until == later and hq.started_at == T0
    await handlers.start_household(
        uow, "H-0101", by="S-01", role=None, reason="r", now=T0, until=T0 + timedelta(days=3)
    )
    [hq] = await uow.household_quarantines.active()
    assert hq.until == later


async def test_a_quarantine_the_machine_refuses_for_one_member_changes_nobody():
    """A grid worker may not step a suspected case down to home quarantine: the whole
    household is refused, nothing recorded."""
    uow = await community()
    await set_to(uow, "R-1003", HealthStatus.SUSPECTED, Role.COMMUNITY_DOCTOR)
    before = len(uow.outbox)
    with pytest.raises(ApiError) as err:
        await handlers.start_household(uow, "H-0101", by="W-01", role=None, reason="r", now=T0)
    assert err.value.code == "role_not_allowed"
    assert await uow.household_quarantines.active() == []
    assert await status(uow, "R-1001") == HealthStatus.NORMAL and len(uow.outbox) == before


async def test_unknown_household_and_unknown_staff_are_refused():
    uow = await community()
    with pytest.raises(ApiError) as err:
        await handlers.start_household(uow, "H-9999", by="S-01", role=None, reason="r", now=T0)
    assert err.value.code == "unknown_household"
    with pytest.raises(ApiError) as err:
        await handlers.start_household(uow, "H-0101", by="X-99", role=None, reason="r", now=T0)
    assert err.value.code == "unknown_staff"


async def test_ending_releases_the_members_at_home_only():
    uow = await community()
    await handlers.start_household(uow, "H-0101", by="S-01", role=None, reason="r", now=T0)
    await set_to(uow, "R-1002", HealthStatus.CONFIRMED, Role.LAB)
    end = T0 + timedelta(days=14)
    result = await handlers.end_household(
        uow, "H-0101", by="D-01", role=None, reason="14 days, negative tests", now=end
    )
    assert result["status"] == "ended" and result["end_reason"] == "14 days, negative tests"
    assert [(m["person_id"], m["status"]) for m in result["members"]] == [
        ("R-1001", "released"),
        ("R-1002", "confirmed"),
        ("R-1003", "released"),
    ]
    released = [e for e in uow.events(PersonStatusChanged) if e["status"] == "released"]
    assert {e["household_id"] for e in released} == {"H-0101"}
    assert not any(e["holds_at_gate"] for e in released)
    assert await handlers.households(uow, end) == []
    with pytest.raises(ApiError) as err:
        await handlers.end_household(uow, "H-0101", by="D-01", role=None, reason="r", now=end)
    assert err.value.code == "not_quarantined"


async def test_the_last_member_out_of_home_quarantine_ends_the_households():
    uow = await community()
    await handlers.start_household(uow, "H-0101", by="S-01", role=None, reason="r", now=T0)
    later = T0 + timedelta(days=3)

    async def release(person: str, to: HealthStatus, role: Role) -> None:
        async with uow:
            await change_status(uow, person, to, by="D-01", role=role, reason="well", now=later)
            await uow.commit()

    await release("R-1001", HealthStatus.RELEASED, Role.COMMUNITY_DOCTOR)
    await release("R-1002", HealthStatus.CONFIRMED, Role.LAB)  # to hospital, not at home
    assert [r["household_id"] for r in await handlers.households(uow, later)] == ["H-0101"]
    await release("R-1003", HealthStatus.RELEASED, Role.COMMUNITY_DOCTOR)
    assert await handlers.households(uow, later) == []
    [ended] = uow.household_quarantines.rows.values()
    assert (ended.status, ended.ended_at, ended.ended_by) == ("ended", later, "D-01")
    assert "R-1003" in (ended.end_reason or "")
    with pytest.raises(ApiError) as err:  # nothing left to end
        await handlers.end_household(uow, "H-0101", by="D-01", role=None, reason="r", now=later)
    assert err.value.code == "not_quarantined"


async def test_the_list_reads_until_when_on_the_local_clock():
    uow = await community()
    await handlers.start_household(uow, "H-0102", by="S-01", role=None, reason="r", now=T0)
    await handlers.start_household(
        uow, "H-0101", by="S-01", role=None, reason="r", now=T0, until=T0 + timedelta(days=7)
    )
    rows = await handlers.households(uow, T0 + timedelta(days=1))
    assert [r["household_id"] for r in rows] == ["H-0101", "H-0102"]  # soonest end first
    assert rows[0]["until"] == "2026-03-19T07:31:05+08:00" and rows[0]["days_left"] == 6.0
    assert [m["status"] for m in rows[0]["members"]] == ["home_quarantine"] * 3


# --- central sites ----------------------------------------------------------------------------
async def hotel(uow: FakeUnitOfWork, site_id: str = "HOTEL-1", rooms: int = 5) -> None:
    await handlers.add_site(
        uow,
        site_id,
        name="Jinjiang Inn",
        address="8 Hubin Rd",
        community_id="CM-1",
        by="S-01",
        now=T0,
        room_count=rooms,
    )


async def take(uow, people, site="HOTEL-1", intake_id="in-1", by="S-01"):
    return await handlers.intake(
        uow, site, people, intake_id=intake_id, by=by, role=None, reason="close contacts", now=T0
    )


async def test_an_intake_gives_each_a_room_and_central_quarantine():
    uow = await community()
    await hotel(uow)
    result = await take(uow, CONTACTS[:3])
    assert result["assigned"] == [
        {"person_id": "R-3001", "room_id": "1"},
        {"person_id": "R-3002", "room_id": "2"},
        {"person_id": "R-3003", "room_id": "3"},
    ]
    assert result["free"] == 2
    for person in CONTACTS[:3]:
        assert await status(uow, person) == CENTRAL
    events = uow.events(PersonStatusChanged)
    assert [e["status"] for e in events] == ["central_quarantine"] * 3
    assert all(e["source"] == "intake:in-1" for e in events)


async def test_an_intake_bigger_than_the_free_rooms_takes_nobody():
    uow = await community()
    await hotel(uow, rooms=5)
    await take(uow, CONTACTS[:2])
    with pytest.raises(ApiError) as err:
        await take(uow, CONTACTS[2:6], intake_id="in-2")
    assert err.value.code == "site_full"
    assert "3 free rooms of 5" in err.value.detail and "4 people" in err.value.detail
    assert [await status(uow, p) for p in CONTACTS[2:6]] == [HealthStatus.NORMAL] * 4
    [site] = await handlers.occupancy(uow)
    assert (site["rooms"], site["occupied"], site["free"]) == (5, 2, 3)
    assert await uow.sites.intake("in-2") is None


async def test_one_refusal_by_the_machine_refuses_the_whole_intake():
    uow = await community()
    await hotel(uow)
    await set_to(uow, "R-3002", HealthStatus.SUSPECTED, Role.COMMUNITY_DOCTOR)
    with pytest.raises(ApiError) as err:
        await take(uow, CONTACTS[:3])
    assert err.value.code == "transition_not_allowed"
    assert (await handlers.occupancy(uow))[0]["occupied"] == 0
    assert await status(uow, "R-3001") == HealthStatus.NORMAL


async def test_the_same_intake_again_changes_nothing_and_a_reused_id_is_refused():
    uow = await community()
    await hotel(uow)
    first = await take(uow, CONTACTS[:3])
    events = len(uow.outbox)
    again = await take(uow, list(reversed(CONTACTS[:3])))
    assert again["assigned"] == first["assigned"] and len(uow.outbox) == events
    with pytest.raises(ApiError) as err:
        await take(uow, CONTACTS[3:5])
    assert err.value.code == "intake_id_reused"


async def test_nobody_is_taken_in_twice_nor_unknown():
    uow = await community()
    await hotel(uow)
    await hotel(uow, "HOTEL-2")
    await take(uow, CONTACTS[:2])
    with pytest.raises(ApiError) as err:
        await take(uow, CONTACTS[1:3], site="HOTEL-2", intake_id="in-2")
    assert err.value.code == "already_at_a_site" and "R-3002 (HOTEL-1 room 2)" in err.value.detail
    with pytest.raises(ApiError) as err:
        await take(uow, ["R-3005", "V-77"], intake_id="in-3")
    assert err.value.code == "unknown_person" and "V-77" in err.value.detail
    with pytest.raises(ApiError) as err:
        await take(uow, ["R-3005"], site="NOWHERE", intake_id="in-4")
    assert err.value.code == "unknown_site"


async def test_a_grid_worker_may_not_send_people_to_a_site():
    uow = await community()
    await hotel(uow)
    with pytest.raises(ApiError) as err:
        await take(uow, CONTACTS[:1], by="W-01")
    assert err.value.code == "role_not_allowed"


async def test_a_transfer_frees_the_old_room_and_takes_a_new_one():
    uow = await community()
    await hotel(uow, "HOTEL-1", rooms=5)
    await hotel(uow, "HOTEL-2", rooms=2)
    await take(uow, CONTACTS[:4])
    result = await handlers.transfer(
        uow, "HOTEL-1", "HOTEL-2", ["R-3002", "R-3004"], by="S-01", reason="hotel 1 for cases",
        now=T0 + timedelta(hours=1),
    )  # fmt: skip
    assert result["moved"] == [
        {"person_id": "R-3002", "room_id": "1"},
        {"person_id": "R-3004", "room_id": "2"},
    ]
    assert result["free"] == {"HOTEL-1": 3, "HOTEL-2": 0}
    one, two = await handlers.occupancy(uow)
    assert [(o["room_id"], o["person_id"]) for o in one["occupants"]] == [
        ("1", "R-3001"),
        ("3", "R-3003"),
    ]
    assert two["free"] == 0 and await status(uow, "R-3002") == CENTRAL
    ended = [s for s in uow.sites.stays if s["ended_at"] is not None]
    assert [s["end_reason"] for s in ended] == [
        "transfer to HOTEL-2 by S-01: hotel 1 for cases"
    ] * 2


async def test_a_transfer_into_a_full_site_moves_nobody():
    uow = await community()
    await hotel(uow, "HOTEL-1", rooms=5)
    await hotel(uow, "HOTEL-2", rooms=1)
    await take(uow, CONTACTS[:3])
    with pytest.raises(ApiError) as err:
        await handlers.transfer(
            uow, "HOTEL-1", "HOTEL-2", CONTACTS[:2], by="S-01", reason="r", now=T0
        )
    assert err.value.code == "site_full" and "only 1 would" in err.value.detail
    assert (await handlers.occupancy(uow, "HOTEL-1"))[0]["occupied"] == 3
    with pytest.raises(ApiError) as err:
        await handlers.transfer(
            uow, "HOTEL-2", "HOTEL-1", ["R-3001"], by="S-01", reason="r", now=T0
        )
    assert err.value.code == "not_at_site"


async def test_a_discharge_frees_the_room_and_sets_the_status_asked():
    uow = await community()
    await hotel(uow)
    await take(uow, CONTACTS[:3])
    later = T0 + timedelta(days=14)
    result = await handlers.discharge(
        uow, "HOTEL-1", ["R-3001"], to=HealthStatus.RELEASED, by="D-01", role=None,
        reason="14 days, two negative tests", now=later,
    )  # fmt: skip
    assert result["discharged"] == [{"person_id": "R-3001", "status": "released"}]
    assert result["free"] == 3
    result = await handlers.discharge(
        uow, "HOTEL-1", ["R-3002"], to=HOME, by="D-01", role=None, reason="stepped down",
        now=later,
    )  # fmt: skip
    assert await status(uow, "R-3002") == HOME
    last = uow.events(PersonStatusChanged)[-1]
    assert last["person_id"] == "R-3002" and last["holds_at_gate"] and last["household_id"]
    [site] = await handlers.occupancy(uow)
    assert [o["person_id"] for o in site["occupants"]] == ["R-3003"]
    # the room is free again for the next intake
    again = await take(uow, ["R-3004"], intake_id="in-2")
    assert again["assigned"] == [{"person_id": "R-3004", "room_id": "1"}]


async def test_a_discharge_the_machine_refuses_frees_no_room():
    """Central quarantine does not step straight to normal: refused, the room kept."""
    uow = await community()
    await hotel(uow)
    await take(uow, CONTACTS[:1])
    with pytest.raises(ApiError) as err:
        await handlers.discharge(
            uow, "HOTEL-1", ["R-3001"], to=HealthStatus.NORMAL, by="D-01", role=None,
            reason="r", now=T0,
        )  # fmt: skip
    assert err.value.code == "transition_not_allowed"
    assert (await handlers.occupancy(uow))[0]["occupied"] == 1
    with pytest.raises(ApiError) as err:
        await handlers.discharge(
            uow, "HOTEL-1", ["R-3001"], to=HealthStatus.SUSPECTED, by="D-01", role=None,
            reason="r", now=T0,
        )  # fmt: skip
    assert err.value.code == "bad_discharge"


async def test_rooms_are_added_by_name_or_number_and_never_twice():
    uow = await community()
    await hotel(uow, rooms=3)
    added = await handlers.add_rooms(uow, "HOTEL-1", count=2)
    assert added["added"] == ["4", "5"] and added["rooms"] == 5
    added = await handlers.add_rooms(uow, "HOTEL-1", rooms=["1201a", "1201b"])
    assert added["rooms"] == 7
    with pytest.raises(ApiError) as err:
        await handlers.add_rooms(uow, "HOTEL-1", rooms=["5", "6"])
    assert err.value.code == "room_exists" and "5" in err.value.detail
    with pytest.raises(ApiError) as err:
        await hotel(uow)
    assert err.value.code == "site_exists"
    with pytest.raises(ApiError) as err:
        await handlers.add_site(
            uow, "H-X", name="n", address="a", community_id="CM-9", by="S-01", now=T0
        )
    assert err.value.code == "unknown_community"


async def test_a_taken_room_is_tried_again_on_what_is_there_now():
    """The store refused a room (another transaction took it between this one's read and
    its write): the whole intake is rolled back and runs again, once."""
    uow = await community()
    await hotel(uow, rooms=3)
    real_occupy = uow.sites.occupy
    refused = []

    async def occupy_refused_once(occupants):
        if not refused:
            refused.append([o.room_id for o in occupants])
            raise q.RoomTaken("HOTEL-1/1 taken meanwhile")
        await real_occupy(occupants)

    uow.sites.occupy = occupy_refused_once  # type: ignore[method-assign]
    result = await take(uow, CONTACTS[:2])
    assert refused == [["1", "2"]]
    assert [a["room_id"] for a in result["assigned"]] == ["1", "2"]
    assert list(uow.sites.intakes) == ["in-1"] and len(uow.sites.stays) == 2
    assert len(uow.events(PersonStatusChanged)) == 2  # the refused try left nothing


async def test_rooms_taken_on_every_try_is_a_clear_busy_error():
    uow = await community()
    await hotel(uow, rooms=3)

    async def always_taken(occupants):
        raise q.RoomTaken("taken")

    uow.sites.occupy = always_taken  # type: ignore[method-assign]
    with pytest.raises(ApiError) as err:
        await take(uow, CONTACTS[:2])
    assert err.value.code == "busy" and uow.sites.intakes == {}


async def test_a_caller_that_catches_a_refusal_is_left_with_nothing_half_done():
    """The steps inside a caller's unit of work check every person before writing: a
    caller that catches the refusal and commits its own work commits nothing of ours."""
    uow = await community()
    await hotel(uow)
    await set_to(uow, "R-1003", HealthStatus.SUSPECTED, Role.COMMUNITY_DOCTOR)
    await set_to(uow, "R-3002", HealthStatus.SUSPECTED, Role.COMMUNITY_DOCTOR)
    before = len(uow.events(PersonStatusChanged))
    async with uow:
        with pytest.raises(ApiError) as home:
            await handlers.quarantine_household(
                uow, "H-0101", by="W-01", role=Role.GRID_WORKER, reason="r", now=T0
            )
        with pytest.raises(ApiError) as central:
            await handlers.take_in(
                uow, "HOTEL-1", ["R-3001", "R-3002"], intake_id="in-1", by="S-01",
                role=Role.SECRETARY, reason="contacts", now=T0,
            )  # fmt: skip
        await uow.commit()  # the caller's own work goes on
    assert home.value.code == "role_not_allowed" and "suspected" in home.value.detail
    assert central.value.code == "transition_not_allowed"
    assert await status(uow, "R-1001") == HealthStatus.NORMAL
    assert await status(uow, "R-3001") == HealthStatus.NORMAL
    assert await uow.household_quarantines.active() == []
    assert uow.sites.occupied == {} and uow.sites.intakes == {}
    assert len(uow.events(PersonStatusChanged)) == before
