"""Test campaigns on the in-memory unit of work: who is due, results (API and CSV), a
positive's consequences, the counts, who is untested, the reminder rounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gridcare.contracts.notify import NotificationRequested
from gridcare.contracts.refdata import Building, Community, Compound, Household, Resident
from gridcare.contracts.screening import PersonStatusChanged
from gridcare.screening.domain import campaigns as camp
from gridcare.screening.domain.campaigns import Result, ResultRow
from gridcare.screening.domain.followup import FollowUp
from gridcare.screening.domain.status import HealthStatus, StatusDecision
from gridcare.screening.handlers import campaigns
from gridcare.screening.handlers import refdata as refdata_handlers
from gridcare.screening.unit_of_work import FakeUnitOfWork
from gridcare.shared.errors import ApiError

T0 = datetime(2026, 3, 12, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
START, END = T0, T0 + timedelta(hours=10)
NOW = T0 + timedelta(hours=1)

PEOPLE = {  # person: (household, building)
    "R-1001": ("H-0101", "B-01"),
    "R-1002": ("H-0101", "B-01"),
    "R-1003": ("H-0102", "B-01"),
    "R-1004": ("H-0201", "B-02"),
    "R-1005": ("H-0201", "B-02"),  # in hospital: not due
    "R-2001": ("H-0301", "B-03"),  # another compound
}


async def community(uow: FakeUnitOfWork) -> FakeUnitOfWork:
    entities = [
        Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
        Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
        Compound(compound_id="C-02", community_id="CM-1", name="West Garden"),
        Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
        Building(building_id="B-02", compound_id="C-01", grid_id="G-02", name="2"),
        Building(building_id="B-03", compound_id="C-02", grid_id="G-03", name="3"),
    ]
    for h, b in sorted({v for v in PEOPLE.values()}):
        entities.append(Household(household_id=h, building_id=b, unit=h[-3:]))
    for p, (h, _) in PEOPLE.items():
        entities.append(Resident(resident_id=p, household_id=h, name=p))
    for e in entities:
        await refdata_handlers.reference_data_changed(e, uow)
    await uow.statuses.record(
        StatusDecision(
            "R-1005", HealthStatus.IN_HOSPITAL, "Dr Chen", "admitted", T0 - timedelta(days=2)
        )
    )
    return uow


async def started(uow: FakeUnitOfWork, **kw) -> dict:
    args = dict(
        place_kind="compound",
        place_id="C-01",
        starts_at=START,
        ends_at=END,
        site="the square by gate 1",
        by="Secretary Wang",
        now=T0 - timedelta(hours=12),
        place_name="Donghu Garden",
        door_call_after_min=120,
    )
    return await campaigns.start_campaign(uow, **{**args, **kw})


def row(i: int, person: str, result: Result = Result.NEGATIVE, sample: str | None = None):
    return ResultRow(
        f"results.{i}",
        sample or f"S-{person}",
        person,
        result,
        NOW - timedelta(minutes=30),
        "Lab A",
    )


# --- who is due --------------------------------------------------------------------------------
async def test_everyone_living_in_the_place_is_due_but_those_in_hospital():
    uow = await community(FakeUnitOfWork())
    c = await started(uow)
    assert c["campaign_id"] == "C-01-20260312-0800" and c["new"] is True
    assert c["starts_at"] == "2026-03-12T08:00:00+08:00"
    assert c["counts"]["due"] == 4 and c["counts"]["excluded"] == 1
    assert c["counts"]["not_tested"] == 4 and c["counts"]["tested"] == 0
    members = await uow.campaigns.members(c["campaign_id"])
    assert members["R-1005"].excluded == "in_hospital" and "R-2001" not in members


async def test_a_building_campaign_takes_only_that_building():
    uow = await community(FakeUnitOfWork())
    c = await started(uow, place_kind="building", place_id="B-02", campaign_id="CP-B02")
    assert c["counts"] == {**c["counts"], "due": 1, "excluded": 1}
    assert c["community_id"] == "CM-1"


async def test_starting_the_same_campaign_again_is_answered_as_it_is():
    uow = await community(FakeUnitOfWork())
    first = await started(uow, campaign_id="CP-1")
    again = await started(uow, campaign_id="CP-1")
    assert again["new"] is False and again["counts"] == first["counts"]
    with pytest.raises(ApiError) as err:
        await started(uow, campaign_id="CP-1", place_id="C-02")
    assert err.value.code == "campaign_exists"


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"place_id": "C-99"}, "unknown_place"),
        ({"place_kind": "building", "place_id": "B-99"}, "unknown_place"),
        ({"ends_at": START - timedelta(minutes=1)}, "invalid_window"),
        ({"ends_at": T0 - timedelta(hours=13)}, "invalid_window"),
    ],
)
async def test_a_campaign_that_cannot_be_is_refused(kw, code):
    uow = await community(FakeUnitOfWork())
    with pytest.raises(ApiError) as err:
        await started(uow, **kw)
    assert err.value.code == code and uow.campaigns.campaigns == {}


# --- results -----------------------------------------------------------------------------------
async def test_results_are_counted_and_a_sample_again_changes_nothing():
    uow = await community(FakeUnitOfWork())
    cid = (await started(uow))["campaign_id"]
    rows = [row(0, "R-1001"), row(1, "R-1002"), row(2, "R-1003", Result.INVALID)]
    got = await campaigns.record_results(uow, cid, rows, now=NOW)
    assert got["recorded"] == 3 and got["already"] == 0 and got["positives"] == []
    again = await campaigns.record_results(uow, cid, rows, now=NOW)
    assert again["recorded"] == 0 and again["already"] == 3
    shown = await campaigns.show(uow, cid)
    assert shown["counts"] == {
        "due": 4,
        "tested": 3,
        "positive": 0,
        "negative": 2,
        "pending": 1,
        "not_tested": 1,
        "excluded": 1,
        "joined_late": 0,
    }
    left = await campaigns.untested(uow, cid)
    assert left["count"] == 2
    assert left["buildings"] == [
        {
            "building_id": "B-01",
            "households": [
                {
                    "household_id": "H-0102",
                    "people": [{"person_id": "R-1003", "outcome": "pending"}],
                }
            ],
        },
        {
            "building_id": "B-02",
            "households": [
                {
                    "household_id": "H-0201",
                    "people": [{"person_id": "R-1004", "outcome": "untested"}],
                }
            ],
        },
    ]


async def test_the_untested_of_one_building_and_at_most_a_limit():
    uow = await community(FakeUnitOfWork())
    cid = (await started(uow))["campaign_id"]
    b01 = await campaigns.untested(uow, cid, building_id="B-01")
    assert b01["count"] == 3 and [b["building_id"] for b in b01["buildings"]] == ["B-01"]
    first = await campaigns.untested(uow, cid, limit=2)
    assert (first["count"], first["listed"]) == (4, 2)
    assert [p["person_id"] for h in first["buildings"][0]["households"] for p in h["people"]] == [
        "R-1001",
        "R-1002",
    ]


async def test_every_bad_result_is_named_and_nothing_is_written():
    uow = await community(FakeUnitOfWork())
    cid = (await started(uow))["campaign_id"]
    await campaigns.record_results(uow, cid, [row(0, "R-1001")], now=NOW)
    late = ResultRow("results.4", "S-9", "R-1004", Result.NEGATIVE, NOW + timedelta(hours=1), "L")
    early = ResultRow("results.5", "S-8", "R-1004", Result.NEGATIVE, T0 - timedelta(days=2), "L")
    bad = [
        row(0, "R-1002"),  # good
        row(1, "R-9999"),  # nobody
        row(2, "R-2001"),  # lives in another compound
        row(3, "R-1003", sample="S-R-1001"),  # the sample is R-1001's
        late,
        early,
    ]
    with pytest.raises(campaigns.ResultsRefused) as err:
        await campaigns.record_results(uow, cid, bad, now=NOW)
    detail = err.value.reply()["error"]["detail"]
    assert err.value.code == "results_refused"
    assert [d["field"] for d in detail] == [
        "results.1.person_id",
        "results.2.person_id",
        "results.3.sample_id",
        "results.4.tested_at",
        "results.5.tested_at",
    ]
    assert "R-9999 is not a known resident" in detail[0]["error"]
    assert "R-2001 does not live in compound C-01" in detail[1]["error"]
    assert "recorded already (R-1001, negative" in detail[2]["error"]
    assert "in the future" in detail[3]["error"] and "before the campaign" in detail[4]["error"]
    assert set(uow.campaigns.results) == {"S-R-1001"}  # nothing of the batch


async def test_someone_who_moved_in_later_joins_when_their_result_comes():
    uow = await community(FakeUnitOfWork())
    cid = (await started(uow))["campaign_id"]
    await refdata_handlers.reference_data_changed(
        Resident(resident_id="R-1009", household_id="H-0102", name="new"), uow
    )
    got = await campaigns.record_results(uow, cid, [row(0, "R-1009")], now=NOW)
    assert got["joined_late"] == ["R-1009"]
    counts = (await campaigns.show(uow, cid))["counts"]
    assert counts["due"] == 5 and counts["joined_late"] == 1 and counts["negative"] == 1


async def test_a_positive_confirms_the_person_and_quarantines_the_household_at_once():
    uow = await community(FakeUnitOfWork())
    cid = (await started(uow))["campaign_id"]
    commits = uow.commits
    got = await campaigns.record_results(
        uow, cid, [row(0, "R-1001", Result.POSITIVE), row(1, "R-1003")], now=NOW
    )
    assert got["positives"] == [
        {
            "person_id": "R-1001",
            "sample_id": "S-R-1001",
            "status": "confirmed",
            "household_id": "H-0101",
            "household_quarantined": True,
        }
    ]
    assert (await uow.statuses.get("R-1001")).status == HealthStatus.CONFIRMED
    assert (await uow.statuses.get("R-1002")).status == HealthStatus.HOME_QUARANTINE
    assert await uow.statuses.get("R-1003") is None  # another household
    changed = {(e["person_id"], e["status"]) for e in uow.events(PersonStatusChanged)}
    assert changed == {("R-1001", "confirmed"), ("R-1002", "home_quarantine")}
    confirmed = next(e for e in uow.events(PersonStatusChanged) if e["status"] == "confirmed")
    assert confirmed["role"] == "lab" and "S-R-1001" in confirmed["reason"]
    assert (await uow.household_quarantines.active_of("H-0101")) is not None
    assert uow.commits == commits + 1  # results, statuses, quarantine: one transaction
    # the same positive again (the lab's file imported twice): nothing more
    before = len(uow.outbox)
    again = await campaigns.record_results(uow, cid, [row(0, "R-1001", Result.POSITIVE)], now=NOW)
    assert again["already"] == 1 and again["positives"] == [] and len(uow.outbox) == before


async def test_a_positive_the_status_machine_refuses_is_recorded_and_reported():
    uow = await community(FakeUnitOfWork())
    cid = (await started(uow))["campaign_id"]
    got = await campaigns.record_results(uow, cid, [row(0, "R-1005", Result.POSITIVE)], now=NOW)
    [refused] = got["not_changed"]
    assert refused["person_id"] == "R-1005" and "transition_not_allowed" in refused["refused"]
    assert "S-R-1005" in uow.campaigns.results
    assert (await uow.statuses.get("R-1005")).status == HealthStatus.IN_HOSPITAL


async def test_a_followed_up_persons_result_goes_to_their_follow_up():
    uow = await community(FakeUnitOfWork())
    cid = (await started(uow))["campaign_id"]
    day = date(2026, 3, 5)
    await uow.follow_ups.save(
        FollowUp("F-1", "R-1003", "symptoms", day, day + timedelta(days=14), "open", T0)
    )
    await campaigns.record_results(
        uow, cid, [row(0, "R-1003"), row(1, "R-1004")], now=NOW
    )  # R-1004 is not followed up: nothing of theirs
    [f] = uow.follow_ups.rows.values()
    assert f.last_test_negative is True and f.last_test_at == NOW - timedelta(minutes=30)


async def test_samples_recorded_meanwhile_by_another_request_are_checked_again():
    uow = await community(FakeUnitOfWork())
    cid = (await started(uow))["campaign_id"]
    real, tries = uow.campaigns.add_results, []

    async def racing(results):
        tries.append(len(results))
        if len(tries) == 1:  # the other request's commit: the same samples, just before ours
            await real(results)
            raise camp.RecordedMeanwhile("sample recorded meanwhile")
        await real(results)

    uow.campaigns.add_results = racing  # type: ignore[method-assign]
    got = await campaigns.record_results(uow, cid, [row(0, "R-1001"), row(1, "R-1002")], now=NOW)
    assert tries == [2, 2] and got["recorded"] == 2  # rolled back, then written again
    assert set(uow.campaigns.results) == {"S-R-1001", "S-R-1002"}

    async def always(results):
        raise camp.RecordedMeanwhile("again")

    uow.campaigns.add_results = always  # type: ignore[method-assign]
    with pytest.raises(ApiError) as err:
        await campaigns.record_results(uow, cid, [row(2, "R-1003")], now=NOW)
    assert err.value.code == "busy"


# --- a lab's CSV file ----------------------------------------------------------------------------
GOOD_CSV = (
    "sample_id,person_id,result,tested_at,lab\n"
    "S-1,R-1001,negative,2026-03-12 08:30,Lab A\n"
    "S-2,R-1002,阴性,2026-03-12T00:40:00Z,Lab A\n"
    "\n"
    "S-3,R-1003,Invalid,2026-03-12T08:45:00+08:00,Lab A\n"
)


async def test_a_csv_file_is_imported_with_local_and_rfc3339_times():
    uow = await community(FakeUnitOfWork())
    cid = (await started(uow))["campaign_id"]
    got = await campaigns.import_csv(uow, cid, "lab-a.csv", text=GOOD_CSV, now=NOW)
    assert got["recorded"] == 3 and got["file"] == "lab-a.csv"
    assert uow.campaigns.results["S-1"].tested_at == datetime(2026, 3, 12, 0, 30, tzinfo=UTC)
    assert uow.campaigns.results["S-2"].result == Result.NEGATIVE
    assert uow.campaigns.results["S-3"].result == Result.INVALID
    again = await campaigns.import_csv(uow, cid, "lab-a.csv", text=GOOD_CSV, now=NOW)
    assert again["recorded"] == 0 and again["already"] == 3


async def test_every_bad_line_of_a_csv_file_is_named_as_file_and_line():
    uow = await community(FakeUnitOfWork())
    cid = (await started(uow))["campaign_id"]
    text = (
        "person_id,sample_id,result,tested_at,lab,note\n"  # any order, extra columns ignored
        "R-1001,S-1,negative,2026-03-12 08:30,Lab A,\n"
        "R-1002,S-2,maybe,2026-03-12 08:30,Lab A,\n"
        "R-1003,S 3,negative,yesterday,,\n"
        "R-9999,S-4,positive,2026-03-12 08:30,Lab A,\n"
        "R-1004,S-5,negative\n"
        "R-1004,S-1,positive,2026-03-12 08:31,Lab A,\n"
    )
    with pytest.raises(campaigns.ResultsRefused) as err:
        await campaigns.import_csv(uow, cid, "lab-a.csv", text=text, now=NOW)
    errors = [d["error"] for d in err.value.reply()["error"]["detail"]]
    assert errors == [
        "lab-a.csv:3: result 'maybe' is not positive, negative or invalid",
        "lab-a.csv:4: sample_id 'S 3' is not an id (A-Z a-z 0-9 _ -, 1-64)",
        "lab-a.csv:4: tested_at 'yesterday' is not a time: RFC 3339 "
        "(2026-03-12T07:31:05+08:00) or local YYYY-MM-DD HH:MM",
        "lab-a.csv:4: lab is empty",
        "lab-a.csv:5: R-9999 is not a known resident",
        "lab-a.csv:6: 3 values where the header has 6 columns",
        "lab-a.csv:7: sample S-1 is given again with another person or result "
        "(first at lab-a.csv:2)",
    ]
    assert uow.campaigns.results == {} and uow.outbox == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "lab.csv:1: the file is empty (a header row is needed)"),
        ("sample,person_id,result\n", "lab.csv:1: the header lacks sample_id, tested_at, lab"),
        ("sample_id,person_id,result,tested_at,lab\n", "lab.csv:1: no results in the file"),
    ],
)
async def test_a_csv_file_without_results_is_refused(text, error):
    uow = await community(FakeUnitOfWork())
    cid = (await started(uow))["campaign_id"]
    with pytest.raises(campaigns.ResultsRefused) as err:
        await campaigns.import_csv(uow, cid, "lab.csv", text=text, now=NOW)
    assert err.value.reply()["error"]["detail"][0]["error"].startswith(error)


async def test_a_file_sent_in_parts_keeps_its_line_numbers_and_needs_every_part():
    uow = await community(FakeUnitOfWork())
    cid = (await started(uow))["campaign_id"]
    lines = GOOD_CSV.splitlines(keepends=True)
    await campaigns.upload_part(uow, "U-1", 1, "".join(lines[:2]), now=NOW)
    await campaigns.upload_part(uow, "U-1", 3, "".join(lines[4:]), now=NOW)
    with pytest.raises(ApiError) as err:
        await campaigns.import_csv(uow, cid, "lab-a.csv", upload_id="U-1", parts=3, now=NOW)
    assert err.value.code == "incomplete_upload" and "missing [2]" in err.value.detail
    await campaigns.upload_part(uow, "U-1", 2, "".join(lines[2:4]).replace("阴性", "no"), now=NOW)
    with pytest.raises(campaigns.ResultsRefused) as bad:
        await campaigns.import_csv(uow, cid, "lab-a.csv", upload_id="U-1", parts=3, now=NOW)
    [fault] = bad.value.faults
    assert fault[0] == "lab-a.csv:3"  # the line in the whole file
    assert len(uow.campaigns.uploads) == 3  # kept: the office may send the part again
    await campaigns.upload_part(uow, "U-1", 2, "".join(lines[2:4]), now=NOW)
    got = await campaigns.import_csv(uow, cid, "lab-a.csv", upload_id="U-1", parts=3, now=NOW)
    assert got["recorded"] == 3 and uow.campaigns.uploads == {}


# --- reminders ---------------------------------------------------------------------------------
async def test_reminders_then_door_calls_for_whoever_is_still_untested():
    uow = await community(FakeUnitOfWork())
    cid = (await started(uow))["campaign_id"]
    early = await campaigns.remind(uow, cid, now=START - timedelta(minutes=5))
    assert early["round"] is None and "starts at" in early["note"]
    await campaigns.record_results(uow, cid, [row(0, "R-1001")], now=NOW)
    await uow.statuses.record(
        StatusDecision("R-1002", HealthStatus.HOME_QUARANTINE, "W-01", "returnee", T0)
    )
    first = await campaigns.remind(uow, cid, now=NOW)
    assert first["round"] == 1 and first["people"] == 2  # R-1003, R-1004; not R-1002 (held)
    notices = uow.events(NotificationRequested)
    assert sorted(n["recipient"]["person_id"] for n in notices) == ["R-1003", "R-1004"]
    assert notices[0]["template"] == "notice.test_campaign"
    assert notices[0]["params"] == {
        "place_name": "Donghu Garden",
        "at": "2026-03-12T00:00:00+00:00",
        "location": "the square by gate 1",
    }
    assert len({n["request_id"] for n in notices}) == 2
    soon = await campaigns.remind(uow, cid, now=NOW + timedelta(minutes=30))
    assert soon["round"] is None and "door call is due at" in soon["note"]
    # R-1003 comes down meanwhile; the door calls list the rest, by grid
    await campaigns.record_results(uow, cid, [row(1, "R-1003")], now=NOW + timedelta(hours=1))
    [second] = await campaigns.door_calls_due(lambda: uow, now=NOW + timedelta(hours=2))
    assert second["round"] == 2 and second["people"] == 2
    calls = uow.events(NotificationRequested)[2:]
    by_grid = {c["recipient"]["place_id"]: c for c in calls}
    assert set(by_grid) == {"G-01", "G-02"}
    assert by_grid["G-01"]["recipient"]["role"] == "grid_worker"
    assert by_grid["G-01"]["template"] == "task.test_campaign_door_call"
    assert by_grid["G-01"]["params"]["households"] == [
        {"household_id": "H-0101", "people": ["R-1002"]}
    ]
    assert by_grid["G-02"]["params"]["count"] == 1
    assert await campaigns.door_calls_due(lambda: uow, now=NOW + timedelta(hours=3)) == []
    shown = await campaigns.show(uow, cid)
    assert list(shown["rounds"]) == ["1", "2"]


async def test_reminder_requests_are_the_same_ids_for_the_same_campaign_and_person():
    a = await community(FakeUnitOfWork())
    b = await community(FakeUnitOfWork())
    for uow in (a, b):
        await started(uow)
        await campaigns.remind(uow, "C-01-20260312-0800", now=NOW)
    ids = [sorted(n["request_id"] for n in u.events(NotificationRequested)) for u in (a, b)]
    assert ids[0] == ids[1] and len(ids[0]) == 4
    assert [e.event_id for _, e in a.outbox] == [e.event_id for _, e in b.outbox]


async def test_a_round_done_meanwhile_is_checked_again():
    uow = await community(FakeUnitOfWork())
    cid = (await started(uow))["campaign_id"]
    real, tries = uow.campaigns.add_round, []

    async def racing(*args):
        tries.append(args[1])
        if len(tries) == 1:
            raise camp.RecordedMeanwhile("round 1 done meanwhile")
        await real(*args)

    uow.campaigns.add_round = racing  # type: ignore[method-assign]
    got = await campaigns.remind(uow, cid, now=NOW)
    assert tries == [1, 1] and got["round"] == 1
    assert len(uow.events(NotificationRequested)) == 4  # the first try's rolled back


# --- the rules alone ---------------------------------------------------------------------------
def test_a_positive_sample_outweighs_a_later_negative_and_invalid_is_pending():
    assert camp.outcome([Result.NEGATIVE, Result.POSITIVE]) == "positive"
    assert camp.outcome([Result.INVALID, Result.NEGATIVE]) == "negative"
    assert camp.outcome([Result.INVALID]) == "pending"
    assert camp.outcome([]) == "untested"


def test_times_are_rfc3339_or_the_communitys_local_clock():
    local = camp.parse_time("2026-03-12 08:30", "Asia/Shanghai")
    assert local.astimezone(UTC) == datetime(2026, 3, 12, 0, 30, tzinfo=UTC)
    assert camp.parse_time("2026-03-12T08:30:00+08:00", None) == local
    assert camp.parse_time("2026-03-12T00:30:00Z", None) == local
    with pytest.raises(ValueError):
        camp.parse_time("12/03/2026 08:30", None)
