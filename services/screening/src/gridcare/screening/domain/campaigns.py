"""Nucleic-acid test campaigns (全员核酸): who is due, their results, who has not come down.

A campaign tests everyone living in one compound or one building. Who is due is fixed when
the campaign starts (every resident of the place then), except the people tested
elsewhere: in hospital or in central quarantine (the hospital or the site tests them).
Someone who moves into the place later is not due; a result of theirs is still taken
(they joined late: they came down with their new neighbours) and counted from then on.

A person's outcome is made from their samples: any positive sample makes them positive
(a positive is never undone by a later negative: the lab retests, the doctor decides);
else any negative makes them negative; only invalid samples leave them pending (they must
give a new sample). Whoever has no usable result yet (no sample, or only invalid ones) is
"untested": the reminders and the door calls are for them.

Results arrive through the API (JSON) or as a lab's CSV file; both are checked here, row
by row, every fault of every row named, before anything is written. A sample is recorded
once: the same sample again with the same person and result changes nothing (a lab's file
imported twice), with anything else it is refused (a result does not change).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from gridcare.shared.localtime import local, zone

from .status import HealthStatus


class Result(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    INVALID = "invalid"


#: How a lab may write a result (case-insensitive): ours, and the words on Chinese reports.
RESULT_WORDS: dict[str, Result] = {
    "positive": Result.POSITIVE,
    "pos": Result.POSITIVE,
    "阳性": Result.POSITIVE,
    "negative": Result.NEGATIVE,
    "neg": Result.NEGATIVE,
    "阴性": Result.NEGATIVE,
    "invalid": Result.INVALID,
    "无效": Result.INVALID,
}

PLACE_KINDS = ("compound", "building")

#: Statuses whose people are not due: they are tested where they are.
EXCLUDED: dict[HealthStatus, str] = {
    HealthStatus.IN_HOSPITAL: "tested in hospital",
    HealthStatus.CENTRAL_QUARANTINE: "tested at the quarantine site",
}

#: The columns of a lab's CSV file (a header row names them, in any order; others ignored).
CSV_COLUMNS = ("sample_id", "person_id", "result", "tested_at", "lab")

#: How far a sample's time may be ahead of the service's clock (clocks differ a little).
CLOCK_SLACK = timedelta(minutes=5)

_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})")
_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2})?")


class RecordedMeanwhile(Exception):
    """Another transaction recorded some of the same samples (or joined the same person)
    between this one's check and its write: checked again, they are recorded already."""


class CampaignError(ValueError):
    """A campaign that cannot be: ``code`` and ``field`` for the API's reply."""

    def __init__(self, code: str, detail: str, field: str = "") -> None:
        super().__init__(detail)
        self.code, self.detail, self.field = code, detail, field


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    community_id: str
    place_kind: str  # compound | building
    place_id: str
    place_name: str
    site: str  # where people go to be tested
    starts_at: datetime
    ends_at: datetime
    door_call_after_min: int  # after the residents' reminder, the door call
    created_by: str
    created_at: datetime

    def is_open(self, now: datetime) -> bool:
        return now < self.ends_at


@dataclass(frozen=True)
class Member:
    """A person of a campaign: due (``excluded`` empty) or excluded (the status then)."""

    campaign_id: str
    person_id: str
    household_id: str
    building_id: str
    excluded: str = ""  # the status that excludes them (in_hospital, central_quarantine)
    joined: str = "start"  # start | late (moved in after it started; a result brought them)

    @property
    def due(self) -> bool:
        return not self.excluded


@dataclass(frozen=True)
class Resident:
    """A resident of the place, as the reference data and the statuses have them."""

    person_id: str
    household_id: str
    building_id: str
    status: str | None = None  # in force, None: never decided (normal)
    grid_id: str | None = None


@dataclass(frozen=True)
class TestResult:
    sample_id: str
    campaign_id: str
    person_id: str
    result: Result
    tested_at: datetime
    lab: str
    recorded_at: datetime


@dataclass(frozen=True)
class ResultRow:
    """One result as given (a CSV line or an API item): ``where`` names it in errors."""

    where: str  # "results.csv:12" or "results.3"
    sample_id: str
    person_id: str
    result: Result
    tested_at: datetime
    lab: str


def new_campaign(
    *,
    campaign_id: str,
    community_id: str,
    place_kind: str,
    place_id: str,
    place_name: str,
    site: str,
    starts_at: datetime,
    ends_at: datetime,
    door_call_after_min: int,
    created_by: str,
    now: datetime,
) -> Campaign:
    if place_kind not in PLACE_KINDS:
        raise CampaignError("invalid_place", f"a campaign is per {' or '.join(PLACE_KINDS)}")
    if ends_at <= starts_at:
        raise CampaignError("invalid_window", "ends_at must be after starts_at", "ends_at")
    if ends_at <= now:
        raise CampaignError("invalid_window", "ends_at is already past", "ends_at")
    if door_call_after_min < 1:
        raise CampaignError("invalid_request", "at least 1 minute", "door_call_after_min")
    return Campaign(
        campaign_id=campaign_id,
        community_id=community_id,
        place_kind=place_kind,
        place_id=place_id,
        place_name=place_name or place_id,
        site=site,
        starts_at=starts_at,
        ends_at=ends_at,
        door_call_after_min=door_call_after_min,
        created_by=created_by,
        created_at=now,
    )


def members_at_start(campaign: Campaign, residents: Iterable[Resident]) -> list[Member]:
    """Every resident of the place now: due, or excluded by their status."""
    out = []
    for r in residents:
        excluded = r.status if r.status in {s.value for s in EXCLUDED} else ""
        out.append(
            Member(campaign.campaign_id, r.person_id, r.household_id, r.building_id, excluded)
        )
    return out


def outcome(results: Iterable[Result]) -> str:
    """``positive`` | ``negative`` | ``pending`` (only invalid samples) | ``untested``."""
    seen = set(results)
    if Result.POSITIVE in seen:
        return "positive"
    if Result.NEGATIVE in seen:
        return "negative"
    return "pending" if seen else "untested"


def counts(members: Iterable[Member], results: Mapping[str, list[Result]]) -> dict[str, int]:
    """A campaign's numbers. ``due``: the people it is for; ``tested``: those of them with a
    sample; of those ``positive``, ``negative``, ``pending`` (invalid samples only: to be
    sampled again); ``not_tested``: due and no sample yet. ``excluded`` are not due (tested
    elsewhere); ``joined_late`` (moved in, then tested) are counted in ``due``."""
    c = dict.fromkeys(
        (
            "due",
            "tested",
            "positive",
            "negative",
            "pending",
            "not_tested",
            "excluded",
            "joined_late",
        ),
        0,
    )
    for m in members:
        if not m.due:
            c["excluded"] += 1
            continue
        c["due"] += 1
        c["joined_late"] += m.joined == "late"
        got = outcome(results.get(m.person_id, ()))
        if got == "untested":
            c["not_tested"] += 1
        else:
            c["tested"] += 1
            c[got] += 1
    return c


def untested(members: Iterable[Member], results: Mapping[str, list[Result]]) -> list[Member]:
    """The due people with no usable result yet (no sample, or invalid ones only), by
    building, household and person."""
    out = [
        m
        for m in members
        if m.due and outcome(results.get(m.person_id, ())) in ("untested", "pending")
    ]
    return sorted(out, key=lambda m: (m.building_id, m.household_id, m.person_id))


# --- results as given -----------------------------------------------------------------------
def parse_time(text: str, zone_name: str | None) -> datetime:
    """RFC 3339 (any offset), or ``YYYY-MM-DD HH:MM[:SS]`` on the community's clock."""
    text = text.strip()
    if _RFC3339.fullmatch(text):
        t = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        return t.astimezone(UTC)
    if _LOCAL.fullmatch(text):
        naive = datetime.fromisoformat(text)
        return naive.replace(tzinfo=zone(zone_name))
    raise ValueError(
        f"tested_at {text!r} is not a time: RFC 3339 (2026-03-12T07:31:05+08:00) or "
        "local YYYY-MM-DD HH:MM"
    )


def parse_result(text: str) -> Result:
    word = text.strip().lower()
    if word not in RESULT_WORDS:
        raise ValueError(f"result {text.strip()!r} is not positive, negative or invalid")
    return RESULT_WORDS[word]


@dataclass
class Parsed:
    rows: list[ResultRow] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # ("file:line", what)


def parse_csv(text: str, file_name: str, zone_name: str | None) -> Parsed:
    """A lab's CSV file: a header naming the columns, then one sample a line. Every fault
    of every line is named as ``file:line: what is wrong``; blank lines are skipped."""
    out = Parsed()
    text = text.removeprefix("\ufeff")  # spreadsheets' byte-order mark
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        out.errors.append((f"{file_name}:1", "the file is empty (a header row is needed)"))
        return out
    except csv.Error as exc:
        out.errors.append((f"{file_name}:1", f"not CSV ({exc})"))
        return out
    names = [h.strip().lower() for h in header]
    missing = [c for c in CSV_COLUMNS if c not in names]
    if missing:
        out.errors.append(
            (
                f"{file_name}:1",
                f"the header lacks {', '.join(missing)} (the columns are {', '.join(CSV_COLUMNS)})",
            )
        )
        return out
    at = {c: names.index(c) for c in CSV_COLUMNS}
    line = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.errors.append((f"{file_name}:{reader.line_num}", f"not CSV ({exc})"))
            break
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        where = f"{file_name}:{line}"
        if len(values) < len(names):
            out.errors.append(
                (where, f"{len(values)} values where the header has {len(names)} columns")
            )
            continue
        row, problems = _row(where, {c: values[i] for c, i in at.items()}, zone_name)
        if problems:
            out.errors.extend((where, p) for p in problems)
        else:
            out.rows.append(row)
    if not out.rows and not out.errors:
        out.errors.append((f"{file_name}:{line}", "no results in the file"))
    return out


def _row(where: str, v: Mapping[str, str], zone_name: str | None) -> tuple[ResultRow, list[str]]:
    problems = []
    sample_id, person_id, lab = v["sample_id"].strip(), v["person_id"].strip(), v["lab"].strip()
    if not _TOKEN.fullmatch(sample_id):
        problems.append(f"sample_id {sample_id!r} is not an id (A-Z a-z 0-9 _ -, 1-64)")
    if not _TOKEN.fullmatch(person_id):
        problems.append(f"person_id {person_id!r} is not an id (A-Z a-z 0-9 _ -, 1-64)")
    result = tested_at = None
    try:
        result = parse_result(v["result"])
    except ValueError as exc:
        problems.append(str(exc))
    try:
        tested_at = parse_time(v["tested_at"], zone_name)
    except ValueError as exc:
        problems.append(str(exc))
    if not lab or len(lab) > 200:
        problems.append("lab is empty" if not lab else "lab is longer than 200 characters")
    if problems:
        return None, problems  # type: ignore[return-value]
    return ResultRow(where, sample_id, person_id, result, tested_at, lab), []  # type: ignore[arg-type]


@dataclass
class Checked:
    """Rows to record (``new``), rows recorded already (``already``), people to add as
    joined late, and every fault (``errors``)."""

    new: list[ResultRow] = field(default_factory=list)
    already: list[ResultRow] = field(default_factory=list)
    late: list[Resident] = field(default_factory=list)
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (where, field, what)


def check_rows(
    campaign: Campaign,
    rows: list[ResultRow],
    *,
    members: Mapping[str, Member],
    residents_now: Mapping[str, Resident],
    known: set[str],
    recorded: Mapping[str, TestResult],
    now: datetime,
    zone_name: str | None,
) -> Checked:
    """Check results against the campaign: the person is of it (``members``), or lives in
    its place now (``residents_now``: joins late), or is refused (``known``: a resident
    elsewhere, else unknown); a sample is new, recorded already the same way, or refused
    (a result never changes); its time is within the campaign's days and not ahead of now."""
    out = Checked()
    seen: dict[str, ResultRow] = {}
    late: dict[str, Resident] = {}
    earliest = local(campaign.starts_at, zone_name).replace(hour=0, minute=0, second=0)
    earliest = earliest.replace(microsecond=0)
    for row in rows:
        faults: list[tuple[str, str]] = []
        if row.person_id not in members and row.person_id not in residents_now:
            if row.person_id in known:
                faults.append(
                    (
                        "person_id",
                        f"{row.person_id} does not live in {campaign.place_kind} "
                        f"{campaign.place_id} (campaign {campaign.campaign_id})",
                    )
                )
            else:
                faults.append(("person_id", f"{row.person_id} is not a known resident"))
        if row.tested_at > now + CLOCK_SLACK:
            faults.append(("tested_at", f"tested_at {row.tested_at.isoformat()} is in the future"))
        elif row.tested_at < earliest:
            faults.append(
                (
                    "tested_at",
                    f"tested_at {local(row.tested_at, zone_name):%Y-%m-%d %H:%M} is before the "
                    f"campaign's first day ({earliest:%Y-%m-%d})",
                )
            )
        before = recorded.get(row.sample_id)
        first = seen.get(row.sample_id)
        if before is not None and (
            before.person_id != row.person_id
            or before.result != row.result
            or before.campaign_id != campaign.campaign_id
        ):
            faults.append(
                (
                    "sample_id",
                    f"sample {row.sample_id} is recorded already ({before.person_id}, "
                    f"{before.result.value}, campaign {before.campaign_id}): a result "
                    "does not change",
                )
            )
        elif first is not None and (first.person_id != row.person_id or first.result != row.result):
            faults.append(
                (
                    "sample_id",
                    f"sample {row.sample_id} is given again with another person or result "
                    f"(first at {first.where})",
                )
            )
        if faults:
            out.errors.extend((row.where, f, what) for f, what in faults)
            continue
        if first is not None:
            continue  # the same sample twice in one batch: once
        seen[row.sample_id] = row
        if before is not None:
            out.already.append(row)
            continue
        out.new.append(row)
        if row.person_id not in members and row.person_id not in late:
            late[row.person_id] = residents_now[row.person_id]
    out.late = list(late.values())
    return out


def late_member(campaign: Campaign, r: Resident) -> Member:
    excluded = r.status if r.status in {s.value for s in EXCLUDED} else ""
    return Member(
        campaign.campaign_id, r.person_id, r.household_id, r.building_id, excluded, "late"
    )


# --- reminders ------------------------------------------------------------------------------
def next_round(
    campaign: Campaign, rounds: Mapping[int, datetime], now: datetime
) -> tuple[int | None, str]:
    """Which reminder round is due now: 1 (each untested resident), 2 (their grid workers
    call at the door, ``door_call_after_min`` after round 1), or None and why not."""
    if now < campaign.starts_at:
        return None, f"the campaign starts at {campaign.starts_at.isoformat()}"
    if not campaign.is_open(now):
        return None, "the campaign has ended"
    if 1 not in rounds:
        return 1, ""
    if 2 in rounds:
        return None, "both rounds are done (residents reminded, door calls asked)"
    door_at = rounds[1] + timedelta(minutes=campaign.door_call_after_min)
    if now < door_at:
        return None, f"the door call is due at {door_at.isoformat()}"
    return 2, ""
