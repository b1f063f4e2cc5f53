"""The gate rules of the edge contract §1 as pure functions: ``parse_scan`` and ``decide``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gridcare.checkpoint.domain import (
    ALLOW_MESSAGE,
    MESSAGES,
    InvalidScan,
    Permit,
    Policy,
    ScanRequest,
    Situation,
    Verdict,
    decide,
    evaluate,
    parse_scan,
)
from gridcare.checkpoint.domain.health import BadHeartbeat, parse_heartbeat
from gridcare.checkpoint.domain.scan import fingerprint
from gridcare.checkpoint.entrypoints.scans import reply_body, verdict_body
from gridcare.contracts.edge import DoorOpened
from gridcare.contracts.refdata import ControlLevel

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 3, 12, 7, 31, 30, tzinfo=CST)
MAX_FUTURE = timedelta(minutes=5)
MAX_AGE = timedelta(days=28)  # the register's retention
RISK = "Wuhan-Jiangan"
POLICY = Policy(risk_regions=frozenset({RISK}))
UNSET = object()  # leave the field out of the body

SEALED, CONTROLLED, PRECAUTION = (
    ControlLevel.SEALED,
    ControlLevel.CONTROLLED,
    ControlLevel.PRECAUTION,
)
REFER_REASONS = {"no_temperature", "no_code", "unknown_person"}
VERDICTS = ("allow", "refer", "deny")  # least to most severe


def body(**fields: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "scan_id": "g1-000123",
        "gate_id": "g1",
        "direction": "in",
        "person_id": "R-1001",
        "scanned_at": "2026-03-12T07:31:05+08:00",
        "temperature_c": 36.6,
        "mask": True,
        "health_code": "green",
    }
    d.update(fields)
    return {k: v for k, v in d.items() if v is not UNSET}


def raw(**fields: Any) -> bytes:
    return json.dumps(body(**fields)).encode()


def parse(data: bytes | dict, gate: str = "g1", policy: Policy = POLICY) -> ScanRequest:
    if isinstance(data, dict):
        data = json.dumps(data).encode()
    return parse_scan(data, gate, NOW, MAX_FUTURE, policy)


def invalid(data: bytes | dict, gate: str = "g1", policy: Policy = POLICY) -> list[dict]:
    with pytest.raises(InvalidScan) as exc:
        parse(data, gate, policy)
    return exc.value.detail


def fields_of(detail: list[dict]) -> list[str]:
    return [d["field"] for d in detail]


def scan(**fields: Any) -> ScanRequest:
    return parse(body(**fields))


def visitor(**fields: Any) -> dict[str, Any]:
    v = {"name": "Zhang San", "phone": "+86 135 0000 0000", "from_region": "Shanghai"}
    v.update(fields)
    return {k: val for k, val in v.items() if val is not UNSET}


def resident(level: ControlLevel = PRECAUTION) -> Situation:
    return Situation(compound_id="C-01", control_level=level, is_resident=True)


def outsider(level: ControlLevel = PRECAUTION) -> Situation:
    return Situation(compound_id="C-01", control_level=level, is_resident=False)


def verdict_of(
    s: ScanRequest, who: Situation | None = None, policy: Policy = POLICY
) -> tuple[str, tuple[str, ...]]:
    v = decide(s, who or resident(), policy)
    return v.verdict, v.reasons


# --- parse_scan: valid requests -------------------------------------------------------------
def test_valid_scan_is_parsed():
    s = scan()
    assert s.scan_id == "g1-000123"
    assert s.gate_id == "g1"
    assert s.direction == "in"
    assert s.person_id == "R-1001"
    assert s.scanned_at == datetime(2026, 3, 12, 7, 31, 5, tzinfo=CST)
    assert s.temperature_c == 36.6
    assert s.mask is True
    assert s.health_code == "green"
    assert s.visitor is None


def test_optional_fields_may_be_null_or_absent():
    for value in (None, UNSET):
        s = scan(temperature_c=value, health_code=value, visitor=value)
        assert (s.temperature_c, s.health_code, s.visitor) == (None, None, None)


def test_integer_temperature_is_a_number():
    assert scan(temperature_c=37).temperature_c == 37.0


@pytest.mark.parametrize("t", [30, 30.0, 45, 45.0])
def test_temperature_range_bounds_are_valid(t):
    assert scan(temperature_c=t).temperature_c == t


def test_unknown_fields_are_ignored():
    s = parse(
        body(
            firmware="1.2.3",
            extra={"nested": [1, 2, None]},
            battery=0.7,
            visitor=visitor(negative_test_at="2026-03-11T09:00:00+08:00", age=33),
        )
    )
    assert not hasattr(s, "firmware")
    assert s.visitor is not None
    assert s.visitor.negative_test_at == datetime(2026, 3, 11, 9, tzinfo=CST)


@pytest.mark.parametrize(
    "ts",
    [
        "2026-03-11T23:31:05Z",
        "2026-03-11T23:31:05+00:00",
        "2026-03-11T18:31:05-05:00",
        "2026-03-12T07:35:29+08:00",  # just inside the allowed clock skew
        "2025-01-01T00:00:00.123456+08:00",
    ],
)
def test_timestamps_with_an_offset_are_accepted(ts):
    assert scan(scanned_at=ts).scanned_at.utcoffset() is not None


# --- parse_scan: invalid requests -----------------------------------------------------------
def test_invalid_scan_reply_shape():
    with pytest.raises(InvalidScan) as exc:
        parse(body(mask="yes"))
    assert exc.value.reply() == {
        "error": {
            "code": "invalid_scan",
            "detail": [{"field": "mask", "error": exc.value.detail[0]["error"]}],
        }
    }
    assert "mask" in str(exc.value)


def test_gate_id_must_match_the_subject():
    detail = invalid(body(gate_id="g2"), gate="g1")
    assert fields_of(detail) == ["gate_id"]
    assert "'g1'" in detail[0]["error"]


@pytest.mark.parametrize("t", [29.9, 45.1, 0, -3, 98.6, 310.15])
def test_temperature_outside_30_45_is_invalid(t):
    detail = invalid(body(temperature_c=t))
    assert fields_of(detail) == ["temperature_c"]
    assert "outside 30-45" in detail[0]["error"]


def test_temperature_range_comes_from_the_policy():
    policy = Policy(min_valid_c=34, max_valid_c=42)
    assert fields_of(invalid(body(temperature_c=33.9), policy=policy)) == ["temperature_c"]
    assert parse(body(temperature_c=34), policy=policy).temperature_c == 34


@pytest.mark.parametrize("t", ["36.6", True, False, [36.6], {"c": 36.6}])
def test_temperature_must_be_a_json_number(t):
    assert fields_of(invalid(body(temperature_c=t))) == ["temperature_c"]


@pytest.mark.parametrize("m", ["true", "false", 1, 0, "yes", None])
def test_mask_must_be_a_json_boolean(m):
    assert fields_of(invalid(body(mask=m))) == ["mask"]


@pytest.mark.parametrize(
    "ts", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T20:00:00-04:01"]
)
def test_a_timestamp_that_falls_off_the_calendar_in_utc_is_named(ts):
    """Not an OverflowError (the responder's ``unavailable``, which a device retries for
    ever): the field is named, like any other bad value."""
    assert fields_of(invalid(body(scanned_at=ts))) == ["scanned_at"]
    detail = invalid(body(visitor=visitor(negative_test_at=ts)))
    assert fields_of(detail) == ["visitor.negative_test_at"]


def test_scanned_at_too_far_in_the_future():
    ahead = (NOW + MAX_FUTURE + timedelta(seconds=1)).isoformat()
    detail = invalid(body(scanned_at=ahead))
    assert detail == [{"field": "scanned_at", "error": "too far in the future"}]
    # the same instant written in another offset is just as far ahead
    ahead_utc = (NOW + MAX_FUTURE + timedelta(seconds=1)).astimezone(UTC).isoformat()
    assert fields_of(invalid(body(scanned_at=ahead_utc))) == ["scanned_at"]
    assert scan(scanned_at=(NOW + MAX_FUTURE).isoformat()).scanned_at == NOW + MAX_FUTURE


def test_scanned_at_older_than_the_register_keeps():
    """A device replaying its buffer after an outage is recorded with its own time; a scan
    older than the register keeps (a clock that says 1970) is invalid, and says why."""

    def parse_aged(ts: datetime) -> ScanRequest:
        return parse_scan(raw(scanned_at=ts.isoformat()), "g1", NOW, MAX_FUTURE, POLICY, MAX_AGE)

    replayed = NOW - MAX_AGE + timedelta(seconds=1)
    assert parse_aged(replayed).scanned_at == replayed
    for ts in (NOW - MAX_AGE - timedelta(seconds=1), datetime(1970, 1, 1, tzinfo=UTC)):
        with pytest.raises(InvalidScan) as exc:
            parse_aged(ts)
        assert exc.value.detail == [
            {"field": "scanned_at", "error": "older than the register keeps (28 days)"}
        ]
    # named along with the other bad fields
    with pytest.raises(InvalidScan) as exc:
        parse_scan(
            raw(scanned_at="1970-01-01T08:00:00+08:00", temperature_c=51, gate_id="g2"),
            "g1",
            NOW,
            MAX_FUTURE,
            POLICY,
            MAX_AGE,
        )
    assert sorted(fields_of(exc.value.detail)) == ["gate_id", "scanned_at", "temperature_c"]


@pytest.mark.parametrize(
    "ts",
    [
        "2026-03-12T07:31:05",
        "2026-03-12",
        "07:31:05+08:00",
        "yesterday",
        "",
        "2026-13-01T00:00:00+08:00",
    ],
)
def test_scanned_at_without_an_offset_or_malformed_is_invalid(ts):
    assert fields_of(invalid(body(scanned_at=ts))) == ["scanned_at"]


@pytest.mark.parametrize("ts", [1773271865, 1773271865.5, "1773271865"])
def test_scanned_at_must_be_rfc3339_not_a_unix_time(ts):
    """the edge contract: timestamps are RFC 3339 with an offset; a bare number has none."""
    assert fields_of(invalid(body(scanned_at=ts))) == ["scanned_at"]


@pytest.mark.parametrize("field", ["scan_id", "gate_id", "person_id"])
@pytest.mark.parametrize(
    "bad", ["", "a b", "R.1001", "R*", "R>", "王芳", "x" * 65, "g1\n", 7, None]
)
def test_ids_must_be_tokens(field, bad):
    assert fields_of(invalid(body(**{field: bad}))) == [field]


def test_id_of_64_characters_is_a_token():
    assert scan(scan_id="A" * 64).scan_id == "A" * 64


@pytest.mark.parametrize("field", ["direction", "health_code"])
@pytest.mark.parametrize("bad", ["IN", "sideways", "", 1, True])
def test_enumerations_are_exact(field, bad):
    assert fields_of(invalid(body(**{field: bad}))) == [field]


@pytest.mark.parametrize(
    "data", [b"not json", b"{", b"", b"\xff\xfe{}", b"{'a': 1}", b'{"scan_id": "x"} trailing']
)
def test_non_json_body(data):
    assert invalid(data) == [{"field": "(body)", "error": "not a JSON object"}]


@pytest.mark.parametrize(
    "data", [b"[]", b'[{"scan_id": "g1-1"}]', b"null", b'"scan"', b"42", b"true"]
)
def test_json_that_is_not_an_object(data):
    assert invalid(data) == [{"field": "(body)", "error": "not a JSON object"}]


def test_missing_required_fields_are_each_named():
    detail = invalid(b"{}")
    assert sorted(fields_of(detail)) == sorted(
        ["scan_id", "gate_id", "direction", "person_id", "scanned_at", "mask"]
    )
    assert all(d["error"] for d in detail)


def test_every_bad_field_is_named_at_once():
    detail = invalid(body(direction="up", mask="y", person_id="", temperature_c="hot"))
    assert sorted(fields_of(detail)) == ["direction", "mask", "person_id", "temperature_c"]


def test_context_checks_are_all_named_at_once():
    later = (NOW + timedelta(hours=1)).isoformat()
    detail = invalid(body(gate_id="g9", temperature_c=12.0, scanned_at=later), gate="g1")
    assert sorted(fields_of(detail)) == ["gate_id", "scanned_at", "temperature_c"]


def test_gate_mismatch_is_named_along_with_other_bad_fields():
    detail = invalid(body(gate_id="g9", mask="y", temperature_c=50), gate="g1")
    assert sorted(fields_of(detail)) == ["gate_id", "mask", "temperature_c"]


def test_bad_visitor_fields_are_named_with_their_path():
    detail = invalid(
        body(visitor=visitor(name="", negative_test_at="2026-03-11T09:00:00", from_region=UNSET))
    )
    assert sorted(fields_of(detail)) == [
        "visitor.from_region",
        "visitor.name",
        "visitor.negative_test_at",
    ]


@pytest.mark.parametrize("v", ["Zhang San", ["Zhang San"], 1, True])
def test_visitor_that_is_not_an_object_is_named(v):
    """The detail must name the bad field (``visitor``), not blame the whole body."""
    assert fields_of(invalid(body(visitor=v))) == ["visitor"]


# --- decide ---------------------------------------------------------------------------------
def test_plain_allow():
    v = decide(scan(), resident(), POLICY)
    assert v == Verdict("allow", ())
    assert list(v.reasons) == []
    assert v.message() == {"zh": "请通行", "en": "Please pass"} == ALLOW_MESSAGE


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (36.6, ("allow", ())),
        (37.2, ("allow", ())),
        (37.29, ("allow", ())),
        (37.3, ("deny", ("fever",))),
        (37.31, ("deny", ("fever",))),
        (39.5, ("deny", ("fever",))),
        (45, ("deny", ("fever",))),
    ],
)
def test_fever_at_and_above_37_3(t, expected):
    assert verdict_of(scan(temperature_c=t)) == expected


def test_fever_threshold_comes_from_the_policy():
    policy = Policy(fever_c=37.0)
    assert verdict_of(scan(temperature_c=37.0), policy=policy) == ("deny", ("fever",))
    assert verdict_of(scan(temperature_c=36.9), policy=policy) == ("allow", ())


@pytest.mark.parametrize("t", [None, UNSET])
def test_no_temperature_is_referred(t):
    assert verdict_of(scan(temperature_c=t)) == ("refer", ("no_temperature",))


def test_no_mask_is_denied():
    assert verdict_of(scan(mask=False)) == ("deny", ("no_mask",))


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("green", ("allow", ())),
        ("yellow", ("deny", ("code_yellow",))),
        ("red", ("deny", ("code_red",))),
        (None, ("refer", ("no_code",))),
        (UNSET, ("refer", ("no_code",))),
    ],
)
def test_health_code(code, expected):
    assert verdict_of(scan(health_code=code)) == expected


@pytest.mark.parametrize("level", list(ControlLevel))
@pytest.mark.parametrize("direction", ["in", "out"])
def test_unknown_person_is_referred(level, direction):
    v, reasons = verdict_of(scan(direction=direction), outsider(level))
    assert "unknown_person" in reasons
    assert "visitor_not_allowed" not in reasons
    if level is PRECAUTION or (direction == "in"):
        assert (v, reasons) == ("refer", ("unknown_person",))


def test_sealed_compound():
    assert verdict_of(scan(direction="out"), resident(SEALED)) == ("deny", ("sealed",))
    assert verdict_of(scan(direction="in"), resident(SEALED)) == ("allow", ())
    guest = scan(direction="in", visitor=visitor())
    assert verdict_of(guest, outsider(SEALED)) == ("deny", ("visitor_not_allowed",))
    leaving = scan(direction="out", visitor=visitor())
    assert verdict_of(leaving, outsider(SEALED)) == ("deny", ("sealed", "visitor_not_allowed"))


def test_controlled_compound():
    assert verdict_of(scan(direction="out"), resident(CONTROLLED)) == ("deny", ("permit_required",))
    assert verdict_of(scan(direction="in"), resident(CONTROLLED)) == ("allow", ())
    guest = scan(direction="in", visitor=visitor())
    assert verdict_of(guest, outsider(CONTROLLED)) == ("deny", ("visitor_not_allowed",))
    leaving = scan(direction="out", visitor=visitor())
    assert verdict_of(leaving, outsider(CONTROLLED)) == ("deny", ("visitor_not_allowed",))


def test_precaution_residents_pass_both_ways():
    for direction in ("in", "out"):
        assert verdict_of(scan(direction=direction), resident(PRECAUTION)) == ("allow", ())


def test_precaution_visitor_from_elsewhere_is_allowed():
    assert verdict_of(scan(visitor=visitor(from_region="Shanghai")), outsider()) == ("allow", ())


@pytest.mark.parametrize(
    ("tested_at", "expected"),
    [
        (UNSET, ("deny", ("visitor_risk_area",))),
        (None, ("deny", ("visitor_risk_area",))),
        ("2026-03-11T07:31:05+08:00", ("allow", ())),  # 24 h before the scan
        ("2026-03-10T07:31:05+08:00", ("allow", ())),  # exactly 48 h
        ("2026-03-09T23:31:05Z", ("allow", ())),  # 48 h, written in UTC
        ("2026-03-10T07:31:04+08:00", ("deny", ("visitor_risk_area",))),  # 48 h and 1 s
        ("2026-02-01T00:00:00+08:00", ("deny", ("visitor_risk_area",))),
    ],
)
def test_precaution_visitor_from_a_risk_region(tested_at, expected):
    s = scan(visitor=visitor(from_region=RISK, negative_test_at=tested_at))
    assert verdict_of(s, outsider(PRECAUTION)) == expected


def test_visitor_test_validity_comes_from_the_policy():
    policy = Policy(risk_regions=frozenset({RISK}), visitor_test_validity_h=12)
    s = scan(visitor=visitor(from_region=RISK, negative_test_at="2026-03-11T07:31:05+08:00"))
    assert verdict_of(s, outsider(), policy) == ("deny", ("visitor_risk_area",))
    assert verdict_of(s, outsider(), Policy()) == ("allow", ())  # no risk region configured


def test_risk_region_is_checked_on_entry_only():
    s = scan(direction="out", visitor=visitor(from_region=RISK))
    assert verdict_of(s, outsider(PRECAUTION)) == ("allow", ())


def test_resident_carrying_visitor_details_is_a_resident():
    s = scan(visitor=visitor(from_region=RISK))
    assert verdict_of(s, resident(PRECAUTION)) == ("allow", ())
    assert verdict_of(s, resident(SEALED)) == ("allow", ())


def test_verdict_is_the_most_severe_and_every_reason_is_listed():
    s = scan(temperature_c=None, health_code=None)
    assert verdict_of(s) == ("refer", ("no_temperature", "no_code"))
    s = scan(temperature_c=None, health_code=None, mask=False)
    assert verdict_of(s) == ("deny", ("no_temperature", "no_mask", "no_code"))
    s = scan(temperature_c=38.2, mask=False, health_code="red", direction="out")
    assert verdict_of(s, resident(SEALED)) == ("deny", ("fever", "no_mask", "code_red", "sealed"))
    s = scan(temperature_c=None, health_code=None, direction="out")
    assert verdict_of(s, outsider(SEALED)) == (
        "deny",
        ("no_temperature", "no_code", "unknown_person", "sealed"),
    )


def test_message_is_bilingual_and_follows_the_reasons():
    v = decide(scan(temperature_c=38.0, health_code=None), resident(), POLICY)
    assert v.reasons == ("fever", "no_code")
    msg = v.message()
    assert set(msg) == {"zh", "en"}
    assert msg["zh"] == MESSAGES["fever"][0] + "；" + MESSAGES["no_code"][0]
    assert msg["en"] == MESSAGES["fever"][1] + "; " + MESSAGES["no_code"][1]


def test_every_reason_has_a_message_in_both_languages():
    for reason, (zh, en) in MESSAGES.items():
        assert zh and en, reason
        assert Verdict("deny", (reason,)).message() == {"zh": zh, "en": en}


# --- properties -----------------------------------------------------------------------------
CONTRACT_FIELDS = (
    "scan_id",
    "gate_id",
    "direction",
    "person_id",
    "scanned_at",
    "temperature_c",
    "mask",
    "health_code",
    "visitor",
)
TZS = [UTC, CST, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]

no_surrogates = st.characters(exclude_categories=("Cs",))
tokens = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def instants(lo: timedelta, hi: timedelta) -> st.SearchStrategy[datetime]:
    """Aware datetimes between NOW+lo and NOW+hi, written in assorted offsets."""
    base = NOW.astimezone(UTC).replace(tzinfo=None)
    return st.builds(
        lambda dt, tz: dt.replace(tzinfo=UTC).astimezone(tz),
        st.datetimes(min_value=base + lo, max_value=base + hi),
        st.sampled_from(TZS),
    )


# Any instant of the calendar written with any offset RFC 3339 allows (whole minutes,
# -14:00 to +14:00): near year 1 or 9999 some of them fall off the calendar in UTC.
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
any_instants = st.builds(
    lambda dt, tz: dt.replace(tzinfo=tz).isoformat(),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))
    | st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)]),
    offsets,
)

valid_visitors = st.fixed_dictionaries(
    {
        "name": st.text(no_surrogates, min_size=1, max_size=100),
        "phone": st.text(no_surrogates, min_size=3, max_size=32),
        "from_region": st.sampled_from([RISK, "Shanghai", "Elsewhere"]),
    },
    optional={
        "negative_test_at": st.none()
        | instants(-timedelta(days=5), timedelta(0)).map(datetime.isoformat),
        "note": json_values,
    },
)

valid_bodies = st.fixed_dictionaries(
    {
        "scan_id": tokens,
        "gate_id": st.sampled_from(["g1"]),
        "direction": st.sampled_from(["in", "out"]),
        "person_id": tokens,
        "scanned_at": instants(-timedelta(days=400), MAX_FUTURE).map(datetime.isoformat),
        "mask": st.booleans(),
    },
    optional={
        "temperature_c": st.none()
        | st.floats(30, 45)
        | st.integers(30, 45)
        | st.sampled_from([37.2, 37.3]),
        "health_code": st.sampled_from(["green", "yellow", "red", None]),
        "visitor": st.none() | valid_visitors,
        "firmware": json_values,
    },
)


def field_values(name: str) -> st.SearchStrategy[Any]:
    """A valid-looking or a random value for one contract field."""
    valid = {
        "scan_id": tokens,
        "gate_id": st.sampled_from(["g1", "g2"]),
        "direction": st.sampled_from(["in", "out", "IN"]),
        "person_id": tokens,
        "scanned_at": instants(-timedelta(days=2), timedelta(hours=1)).map(datetime.isoformat)
        | st.datetimes().map(datetime.isoformat)
        | any_instants,
        "temperature_c": st.none() | st.floats(25, 50) | st.integers(20, 50),
        "mask": st.booleans(),
        "health_code": st.sampled_from(["green", "yellow", "red", None, "blue"]),
        "visitor": st.none()
        | valid_visitors
        | st.dictionaries(
            st.sampled_from(["name", "phone", "from_region", "negative_test_at"]),
            json_values | any_instants,
        ),
    }[name]
    return valid | json_values


any_bodies = st.builds(
    lambda contract, extra: {**extra, **contract},
    st.fixed_dictionaries({}, optional={f: field_values(f) for f in CONTRACT_FIELDS}),
    st.dictionaries(st.text(max_size=12), json_values, max_size=3),
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_invalid_reply(exc: InvalidScan) -> None:
    reply = exc.reply()
    assert set(reply) == {"error"}
    assert set(reply["error"]) == {"code", "detail"}
    assert reply["error"]["code"] == "invalid_scan"
    detail = reply["error"]["detail"]
    assert isinstance(detail, list) and detail
    for d in detail:
        assert set(d) == {"field", "error"}
        assert isinstance(d["field"], str) and d["field"]
        assert isinstance(d["error"], str) and d["error"]
    json.dumps(reply)  # it goes back to the device as is


@SETTINGS
@given(data=any_bodies, gate=st.sampled_from(["g1", "g2", ""]))
def test_parse_scan_accepts_or_names_the_bad_fields(data, gate):
    payload = json.dumps(data).encode()
    try:
        s = parse_scan(payload, gate, NOW, MAX_FUTURE, POLICY, MAX_AGE)
    except InvalidScan as exc:
        check_invalid_reply(exc)
        return
    assert isinstance(s, ScanRequest)
    assert s.gate_id == gate
    assert s.temperature_c is None or 30 <= s.temperature_c <= 45
    assert NOW - MAX_AGE <= s.scanned_at <= NOW + MAX_FUTURE
    assert s.scanned_at.utcoffset() is not None


@SETTINGS
@given(payload=st.binary(max_size=200))
def test_parse_scan_never_fails_otherwise_on_any_bytes(payload):
    try:
        parse_scan(payload, "g1", NOW, MAX_FUTURE, POLICY)
    except InvalidScan as exc:
        check_invalid_reply(exc)


@SETTINGS
@given(data=valid_bodies, level=st.sampled_from(list(ControlLevel)), is_resident=st.booleans())
def test_decide_on_any_valid_scan(data, level, is_resident):
    s = parse_scan(json.dumps(data).encode(), "g1", NOW, MAX_FUTURE, POLICY)
    who = Situation(compound_id="C-01", control_level=level, is_resident=is_resident)
    v = decide(s, who, POLICY)

    assert v.verdict in VERDICTS
    assert all(r in MESSAGES for r in v.reasons)
    assert len(set(v.reasons)) == len(v.reasons)
    worst = max(
        (("refer" if r in REFER_REASONS else "deny") for r in v.reasons),
        key=VERDICTS.index,
        default="allow",
    )
    assert v.verdict == worst
    assert (v.verdict == "allow") == (v.reasons == ())
    msg = v.message()
    assert set(msg) == {"zh", "en"} and msg["zh"] and msg["en"]

    # the person-independent rules, straight from the edge contract
    t = s.temperature_c
    assert ("fever" in v.reasons) == (t is not None and t >= 37.3)
    assert ("no_temperature" in v.reasons) == (t is None)
    assert ("no_mask" in v.reasons) == (not s.mask)
    assert ("code_red" in v.reasons) == (s.health_code == "red")
    assert ("code_yellow" in v.reasons) == (s.health_code == "yellow")
    assert ("no_code" in v.reasons) == (s.health_code is None)
    assert ("unknown_person" in v.reasons) == (not is_resident and s.visitor is None)
    assert ("sealed" in v.reasons) == (level is SEALED and s.direction == "out")
    if level is not PRECAUTION and not is_resident and s.visitor is not None:
        assert "visitor_not_allowed" in v.reasons
    if is_resident:
        assert not {"visitor_not_allowed", "visitor_risk_area", "unknown_person"} & set(v.reasons)


# --- what a scan said: its fingerprint ----------------------------------------------------
def test_a_scans_fingerprint_is_what_the_device_said():
    first = scan()
    assert fingerprint(first) == fingerprint(scan(firmware="1.2"))  # unknown fields: no
    # the same instant in another offset, the same number as an int: the same scan
    assert fingerprint(first) == fingerprint(scan(scanned_at="2026-03-11T23:31:05Z"))
    assert fingerprint(scan(temperature_c=37)) == fingerprint(scan(temperature_c=37.0))
    others = [
        scan(person_id="R-1002"),
        scan(direction="out"),
        scan(scanned_at="2026-03-12T07:31:06+08:00"),
        scan(temperature_c=36.7),
        scan(temperature_c=None),
        scan(mask=False),
        scan(health_code="yellow"),
        scan(health_code=None),
        scan(visitor=visitor()),
        scan(visitor=visitor(phone="+86 135 0000 0001")),
    ]
    prints = {fingerprint(s) for s in [first, *others]}
    assert len(prints) == len(others) + 1
    # the same number in every process: the register keeps it (a retry after a restart)
    assert fingerprint(first) == 2367237535


# --- ages on our clock -------------------------------------------------------------------------
def out_on_a_permit(return_by: datetime) -> Situation:
    """A resident of a controlled compound out on an outing permit until ``return_by``."""
    permit = Permit(
        permit_id="p-1",
        kind="outing",
        valid_from=NOW - timedelta(hours=5),
        valid_until=NOW + timedelta(hours=5),
        uses_left=0,
        state="out",
        return_by=return_by,
    )
    return Situation(
        compound_id="C-01", control_level=CONTROLLED, is_resident=True, permits=(permit,)
    )


def test_a_return_is_overdue_by_when_it_came_in_not_by_the_devices_clock():
    """``return_by`` counts from when the exit came in (our clock): so does the return."""
    who = out_on_a_permit(return_by=NOW)
    # the device says an hour early, but it reached us after return_by (a replayed buffer)
    early_clock = scan(direction="in", scanned_at=(NOW - timedelta(hours=1)).isoformat())
    d = evaluate(early_clock, who, POLICY, received_at=NOW + timedelta(minutes=1))
    assert d.verdict.reasons == ("overdue_return",) and d.closes_permit is not None
    # the device's clock is ahead, but it reached us in time
    late_clock = scan(direction="in", scanned_at=(NOW + timedelta(minutes=4)).isoformat())
    d = evaluate(late_clock, who, POLICY, received_at=NOW - timedelta(minutes=1))
    assert d.verdict.reasons == () and d.closes_permit is not None


def neighbour(level: ControlLevel = PRECAUTION) -> Situation:
    """A resident of another compound of the community: known, not resident here."""
    return Situation(compound_id="C-01", control_level=level, is_resident=False, is_known=True)


@pytest.mark.parametrize("direction", ["in", "out"])
def test_known_neighbour_without_visitor_details_passes_in_precaution(direction):
    assert decide(scan(direction=direction), neighbour(), POLICY).verdict == "allow"


@pytest.mark.parametrize("level", [SEALED, CONTROLLED])
def test_known_neighbour_is_a_visitor_under_controls(level):
    v = decide(scan(direction="in"), neighbour(level), POLICY)
    assert v.verdict == "deny" and "visitor_not_allowed" in v.reasons


# --- the reply as sent -----------------------------------------------------------------------
@given(
    verdict=st.sampled_from(["allow", "deny", "refer"]),
    reasons=st.lists(st.sampled_from(sorted(MESSAGES)), unique=True, max_size=6),
    scan_id=st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z"),
)
def test_verdict_body_is_the_reply_as_json(verdict, reasons, scan_id):
    """The responder assembles a verdict reply from cached pieces; it must be exactly the
    JSON of the reply."""
    v = Verdict(verdict, tuple(reasons))
    decided = datetime.now(UTC).isoformat()
    body = verdict_body(scan_id, v, decided)
    reply = {
        "scan_id": scan_id,
        "verdict": verdict,
        "reasons": reasons,
        "message": v.message(),
        "decided_at": decided,
    }
    assert json.loads(body) == reply
    assert body == reply_body(reply)


# --- the other device messages: heartbeats (§2) and door events (§3) ---------------------------
@pytest.mark.parametrize("ts", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_heartbeat_or_door_event_off_the_calendar_is_bad_input(ts):
    """A bad heartbeat is recorded as one, and a bad door event is dead-lettered at once
    (a validation error): neither may raise anything else."""
    hb = json.dumps({"gate_id": "g1", "sent_at": ts}).encode()
    with pytest.raises(BadHeartbeat, match="sent_at"):
        parse_heartbeat(hb, "g1", {"g1": "C-01"})
    with pytest.raises(ValidationError, match="opened_at"):
        DoorOpened.model_validate({"event_id": "d-1", "household_id": "H-1", "opened_at": ts})
