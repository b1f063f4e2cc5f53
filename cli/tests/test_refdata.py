"""Reference data import: checking the office's CSV files (refdata.py) and the
``gridcare import`` command, the publishing part against a real nats-server."""

from __future__ import annotations

import asyncio
import csv
import re
import shutil
import uuid
from pathlib import Path

import nats
import pytest
from nats.js.errors import NotFoundError
from typer.testing import CliRunner

from gridcare.cli import refdata
from gridcare.cli.main import app
from gridcare.contracts.refdata import ENTITIES as REF_ENTITIES
from gridcare.contracts.refdata import (
    Building,
    Channel,
    ChatGroup,
    Community,
    Compound,
    ControlLevel,
    Gate,
    Grid,
    Household,
    Resident,
    Staff,
    Volunteer,
)
from gridcare.shared.envelope import Envelope

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "community"
SAMPLE_COUNTS = {
    Community: 1,
    Compound: 2,
    Grid: 2,
    Building: 3,
    Household: 4,
    Resident: 5,
    Gate: 3,
    Volunteer: 2,
    Staff: 3,
    ChatGroup: 3,
}
SAMPLE_TOTAL = sum(SAMPLE_COUNTS.values())  # 28


# --- helpers --------------------------------------------------------------------------------
@pytest.fixture
def community(tmp_path: Path) -> Path:
    """A private copy of the sample community, free to corrupt."""
    folder = tmp_path / "community"
    shutil.copytree(SAMPLE, folder)
    return folder


def read_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def set_cell(path: Path, row_id: str, column: str, value: str) -> int:
    """Set one cell of the row whose first column is ``row_id``; returns its line number."""
    rows = read_rows(path)
    col = rows[0].index(column)
    for i, row in enumerate(rows):
        if row[0] == row_id:
            row[col] = value
            write_rows(path, rows)
            return i + 1
    raise LookupError(row_id)


def add_column(path: Path, column: str) -> None:
    """Add an empty column to a file that has not got it."""
    rows = read_rows(path)
    if column not in rows[0]:
        write_rows(path, [[*r, column if i == 0 else ""] for i, r in enumerate(rows)])


def append_line(path: Path, line: str) -> int:
    """Append a raw line; returns its line number."""
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    text += line + "\n"
    path.write_text(text, encoding="utf-8")
    return text.count("\n")


def uniquify(folder: Path, prefix: str) -> None:
    """Prefix every identifier (each ``*_id`` column, each id of a list of ids such as a
    member of staff's ``gates``) so the rows' subjects are our own."""
    for path in folder.glob("*.csv"):
        rows = read_rows(path)
        id_cols = [i for i, h in enumerate(rows[0]) if h.endswith("_id")]
        list_cols = [i for i, h in enumerate(rows[0]) if h == "gates"]
        for row in rows[1:]:
            for i in id_cols:
                if i < len(row) and row[i]:
                    row[i] = prefix + row[i]
            for i in list_cols:
                if i < len(row) and row[i]:
                    row[i] = ";".join(prefix + v for v in row[i].split(";"))
        write_rows(path, rows)


def problems(folder: Path) -> list[str]:
    return [str(p) for p in refdata.load(folder).problems]


def only_problem(folder: Path) -> str:
    found = problems(folder)
    assert len(found) == 1, found
    return found[0]


def invoke(*args: str):
    return CliRunner().invoke(app, ["import", *args])


def flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return re.sub(r"\s+", " ", text)


# --- the sample -----------------------------------------------------------------------------
def test_sample_loads_without_problems_and_right_counts(community: Path):
    data = refdata.load(community)
    assert data.problems == []
    assert {m: len(rows) for m, rows in data.entities.items()} == SAMPLE_COUNTS
    assert data.count() == SAMPLE_TOTAL


def test_sample_values_are_parsed(community: Path):
    data = refdata.load(community)
    r1001 = data.entities[Resident]["R-1001"]
    assert r1001.phone == "+8613900001001"  # spaces removed
    assert r1001.household_id == "H-0101"
    assert r1001.vulnerabilities == []
    r1003 = data.entities[Resident]["R-1003"]
    assert r1003.phone is None  # an empty cell is "not given"
    assert r1003.vulnerabilities == ["elderly_alone", "chronic_illness"]
    assert data.entities[Compound]["C-02"].control_level is ControlLevel.CONTROLLED
    assert data.entities[Grid]["G-02"].worker_language == "en"
    assert data.lines[(Resident, "R-1003")] == (str(community / "residents.csv"), 4)


def test_ordered_puts_parents_before_children(community: Path):
    (community / "channels.csv").write_text(CHANNELS_CSV, encoding="utf-8")  # every kind
    kinds = [e.KIND for e in refdata.load(community).ordered()]
    firsts = [kinds.index(m.KIND) for m in REF_ENTITIES]
    assert firsts == sorted(firsts)
    assert len(kinds) == SAMPLE_TOTAL + 2


def test_utf8_bom_blank_lines_and_padding_are_accepted(community: Path):
    path = community / "residents.csv"
    text = path.read_text(encoding="utf-8")
    text = text.replace("R-2001,H-0201,", "  R-2001 , H-0201 ,")
    path.write_text("\ufeff" + text + "\n,,,,,\n\n", encoding="utf-8")  # as Excel saves it
    data = refdata.load(community)
    assert data.problems == []
    assert data.entities[Resident]["R-2001"].household_id == "H-0201"
    assert len(data.entities[Resident]) == 5


def test_a_folder_with_some_files_checks_only_those(community: Path):
    for name in ("communities", "compounds", "grids", "buildings", "gates", "volunteers"):
        (community / f"{name}.csv").unlink()
    # households.csv points at buildings that are not part of this import: not checked
    # staff.csv names gates, chat_groups.csv compounds: not part of it either
    data = refdata.load(community)
    assert data.problems == []
    assert {m: len(rows) for m, rows in data.entities.items()} == {
        Household: 4,
        Resident: 5,
        Staff: 3,
        ChatGroup: 3,
    }


# --- bad rows: file:line: reason ------------------------------------------------------------
def test_bad_phone(community: Path):
    path = community / "residents.csv"
    line = set_cell(path, "R-1002", "phone", "call me")
    assert line == 3
    p = only_problem(community)
    assert p.startswith(f"{path}:3: phone: ")
    assert "not a phone number" in p


def test_bad_grid_worker_phone(community: Path):
    path = community / "grids.csv"
    set_cell(path, "G-02", "worker_phone", "12")
    found = problems(community)
    assert any(
        p.startswith(f"{path}:3: worker_phone: ") and "not a phone number" in p for p in found
    ), found


@pytest.mark.parametrize("bad", ["R 1001", "R/1001", "王芳", "x" * 65, "R-1001!"])
def test_bad_token_id(community: Path, bad: str):
    path = community / "residents.csv"
    set_cell(path, "R-1001", "resident_id", bad)
    p = only_problem(community)
    assert p.startswith(f"{path}:2: resident_id: ")
    assert "pattern" in p


def test_bad_control_level(community: Path):
    path = community / "compounds.csv"
    set_cell(path, "C-02", "control_level", "lockdown")
    found = problems(community)
    assert any(
        p.startswith(f"{path}:3: control_level: ") and "'sealed', 'controlled' or 'precaution'" in p
        for p in found
    ), found


def test_a_bad_parent_row_is_not_reported_as_missing_in_its_children(community: Path):
    """C-02 is in compounds.csv (line 3), only its control_level is wrong: the office must
    be told about that one cell, not that buildings.csv and gates.csv name a compound
    that "is not in compounds.csv" (it is)."""
    path = community / "compounds.csv"
    set_cell(path, "C-02", "control_level", "lockdown")
    found = problems(community)
    assert [p for p in found if "is not in compounds.csv" in p] == [], found
    assert len(found) == 1, found


def test_missing_required_value(community: Path):
    path = community / "gates.csv"
    set_cell(path, "g2", "name", "  ")
    assert only_problem(community) == f"{path}:3: name: Field required"


@pytest.mark.parametrize(
    ("line", "n"),
    [
        ("R-4001,H-0101,Too Many,+86 139 0000 4001,zh,,,,extra", 9),
        ("R-4001,H-0101,Too Few", 3),
    ],
)
def test_wrong_number_of_values(community: Path, line: str, n: int):
    path = community / "residents.csv"
    line_no = append_line(path, line)
    assert line_no == 7
    assert only_problem(community) == f"{path}:7: {n} values for 8 columns"


def test_duplicate_id_names_the_first_line(community: Path):
    path = community / "residents.csv"
    append_line(path, "R-2001,H-0101,Someone Else,,zh,,,")
    assert only_problem(community) == (
        f"{path}:7: duplicate resident_id 'R-2001' (first on line 5)"
    )
    # the first row wins; the duplicate is not kept
    assert refdata.load(community).entities[Resident]["R-2001"].name == "Chen Jie 陈杰"


@pytest.mark.parametrize(
    ("file", "row_id", "column", "target"),
    [
        ("residents", "R-2001", "household_id", "households"),
        ("households", "H-0201", "building_id", "buildings"),
        ("buildings", "B-02", "compound_id", "compounds"),
        ("buildings", "B-03", "grid_id", "grids"),
        ("gates", "g3", "compound_id", "compounds"),
        ("staff", "S-01", "community_id", "communities"),
        ("chat_groups", "CG-C01", "community_id", "communities"),
    ],
)
def test_reference_to_a_missing_row(
    community: Path, file: str, row_id: str, column: str, target: str
):
    path = community / f"{file}.csv"
    line = set_cell(path, row_id, column, "NOPE-1")
    assert only_problem(community) == (f"{path}:{line}: {column} 'NOPE-1' is not in {target}.csv")


def test_missing_required_column(community: Path):
    path = community / "gates.csv"
    write_rows(path, [row[:2] for row in read_rows(path)])  # drop "name"
    assert only_problem(community) == f"{path}:1: missing column(s): name"


def test_unknown_column(community: Path):
    path = community / "households.csv"
    write_rows(path, [[*row, "floor" if i == 0 else "1"] for i, row in enumerate(read_rows(path))])
    p = only_problem(community)
    assert p.startswith(f"{path}:1: unknown column(s): floor (known: ")
    assert "household_id, building_id, unit" in p


def test_optional_column_may_be_left_out(community: Path):
    path = community / "compounds.csv"
    write_rows(path, [row[:3] for row in read_rows(path)])  # no control_level column
    data = refdata.load(community)
    assert data.problems == []
    assert data.entities[Compound]["C-02"].control_level is ControlLevel.PRECAUTION


def test_non_utf8_file(community: Path):
    path = community / "residents.csv"
    path.write_bytes(path.read_text(encoding="utf-8").encode("gbk"))
    p = only_problem(community)
    assert p.startswith(f"{path}:1: not UTF-8 (")
    assert "CSV UTF-8" in p


def test_empty_file(community: Path):
    path = community / "gates.csv"
    path.write_text("", encoding="utf-8")
    assert only_problem(community) == f"{path}:1: empty file: a header row is required"


def test_empty_folder(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("not reference data")
    p = only_problem(tmp_path)
    assert p.startswith(f"{tmp_path}:0: no reference data files (expected communities.csv, ")
    assert "volunteers.csv" in p


def test_not_a_folder(tmp_path: Path):
    assert only_problem(tmp_path / "missing") == f"{tmp_path / 'missing'}:0: not a folder"


def test_line_numbers_count_physical_lines_after_a_multiline_cell(community: Path):
    """A cell with a line break (Alt+Enter in a spreadsheet) is legal CSV; the rows after
    it must still be reported on the line the office sees in its editor."""
    path = community / "residents.csv"
    text = path.read_text(encoding="utf-8")
    text = text.replace("R-1002,H-0101,Wang Lei 王磊,", 'R-1002,H-0101,"Wang Lei\n王磊",')
    path.write_text(text, encoding="utf-8")
    # physical lines: 1 header, 2 R-1001, 3-4 R-1002, 5 R-1003, 6 R-2001, 7 R-3001
    line = append_line(path, "R-4001,H-0101,Bad Phone,nope,zh,,,")
    assert line == 8
    p = only_problem(community)
    assert p.startswith(f"{path}:8: phone: "), p


def test_every_problem_is_reported_sorted(community: Path):
    set_cell(community / "volunteers.csv", "V-01", "phone", "none")
    set_cell(community / "residents.csv", "R-3001", "language", "English!")
    set_cell(community / "residents.csv", "R-1002", "phone", "xx")
    append_line(community / "gates.csv", "g1,C-02,Duplicate gate")
    data = refdata.load(community)
    found = [(Path(p.file).name, p.line) for p in data.problems]
    assert found == [
        ("gates.csv", 5),
        ("residents.csv", 3),
        ("residents.csv", 6),
        ("volunteers.csv", 2),
    ]


# --- who can be reached how: staff, chat groups, channel providers -------------------------
CHANNELS_CSV = (
    "channel_id,community_id,kind,url,rate_per_s,max_segments\n"
    "SMS-1,CM-1,sms,https://sms.example.cn/send?to={phone}&name={name},20,3\n"
    "MAIL-1,CM-1,email,mailtos://office:secret@smtp.example.cn?to={email},,\n"
)


def other_community(folder: Path) -> None:
    """A second community, CM-2, with compound C-09, building B-09, grid G-09, gate g9."""
    append_line(folder / "communities.csv", "CM-2,Xihu Community 西湖社区,Asia/Shanghai")
    append_line(folder / "compounds.csv", "C-09,CM-2,Xihu Garden,precaution")
    append_line(folder / "grids.csv", "G-09,CM-2,Grid 9,W-09,Sun Li,+86 138 0000 0009,zh,")
    append_line(folder / "buildings.csv", "B-09,C-09,G-09,Building 9")
    append_line(folder / "gates.csv", "g9,C-09,West gate,")


def test_file_names_of_the_new_kinds():
    assert refdata.file_name(Staff) == "staff.csv"
    assert refdata.file_name(ChatGroup) == "chat_groups.csv"
    assert refdata.file_name(Channel) == "channels.csv"
    assert refdata.file_name(Community) == "communities.csv"
    assert refdata.file_name(Gate) == "gates.csv"


def test_sample_staff_groups_and_channels_of_people(community: Path):
    data = refdata.load(community)
    ds = data.entities[Staff]["DS-01"]
    assert ds.roles == ["duty_staff"] and ds.gates == ["g1", "g2"]
    assert ds.channels == ["chat", "sms"] and ds.phone == "+8613600000003"
    assert ds.chat_url == "http://127.0.0.1:8099/hooks/staff-DS-01"
    secretary = data.entities[Staff]["S-01"]
    assert secretary.roles == ["secretary"] and secretary.email == "wang.hua@donghu.example.cn"
    assert secretary.gates == [] and secretary.language == "zh"
    group = data.entities[ChatGroup]["CG-B01"]
    assert (group.community_id, group.place, group.place_id) == ("CM-1", "building", "B-01")
    r3001 = data.entities[Resident]["R-3001"]
    assert r3001.email == "james.hill@example.com" and r3001.channels == ["email", "sms"]
    r1001 = data.entities[Resident]["R-1001"]
    assert r1001.email is None and r1001.channels == []  # the columns are optional
    grid = data.entities[Grid]["G-01"]
    assert grid.worker_email is None and grid.worker_channels == []
    assert [e.KIND for e in data.ordered()][-6:] == ["staff"] * 3 + ["chat_group"] * 3


def test_a_good_channels_file_and_extra_columns_import(community: Path):
    (community / "channels.csv").write_text(CHANNELS_CSV, encoding="utf-8")
    for name, columns in (
        ("volunteers", ("email", "channels")),
        ("grids", ("worker_email", "worker_channels")),
    ):
        for column in columns:
            add_column(community / f"{name}.csv", column)
    set_cell(community / "volunteers.csv", "V-02", "email", "anna.liu@example.com")
    set_cell(community / "volunteers.csv", "V-02", "channels", "email;chat")
    set_cell(community / "grids.csv", "G-02", "worker_email", "Tom.Baker@Example.COM")
    set_cell(community / "grids.csv", "G-02", "worker_channels", "email;sms;chat")
    set_cell(community / "chat_groups.csv", "CG-C02", "place", "community")
    set_cell(community / "chat_groups.csv", "CG-C02", "place_id", "CM-1")
    append_line(
        community / "chat_groups.csv", "CG-G01,CM-1,grid,G-01,Grid 1 第一网格群,wecombot://k"
    )
    data = refdata.load(community)
    assert data.problems == []
    sms, mail = data.entities[Channel]["SMS-1"], data.entities[Channel]["MAIL-1"]
    assert (sms.kind, sms.rate_per_s, sms.max_segments) == ("sms", 20.0, 3)
    assert (mail.kind, mail.rate_per_s, mail.max_segments) == ("email", None, None)
    assert data.entities[Volunteer]["V-02"].channels == ["email", "chat"]
    assert data.entities[Grid]["G-02"].worker_email == "Tom.Baker@example.com"
    assert data.entities[ChatGroup]["CG-G01"].place == "grid"
    assert len(data.entities[ChatGroup]) == 4


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("secretary;mayor", "roles: Value error, unknown role 'mayor' (one of secretary, "),
        ("duty_staff;duty_staff", "roles: Value error, role 'duty_staff' given more than once"),
        (";", "roles: List should have at least 1 item after validation, not 0"),
    ],
)
def test_staff_roles_are_known_ones(community: Path, value: str, reason: str):
    path = community / "staff.csv"
    line = set_cell(path, "D-01", "roles", value)
    assert line == 3
    p = only_problem(community)
    assert p.startswith(f"{path}:3: {reason}"), p


def test_staff_gates_must_be_in_gates_csv(community: Path):
    path = community / "staff.csv"
    line = set_cell(path, "DS-01", "gates", "g1;g7;g8")
    assert line == 4
    assert problems(community) == [
        f"{path}:4: gates 'g7' is not in gates.csv",
        f"{path}:4: gates 'g8' is not in gates.csv",
    ]


def test_staff_gates_are_not_checked_without_gates_csv(community: Path):
    (community / "gates.csv").unlink()
    set_cell(community / "staff.csv", "DS-01", "gates", "g1;g7")
    assert problems(community) == []


def test_a_bad_gate_row_is_not_reported_again_in_staff(community: Path):
    path = community / "gates.csv"
    set_cell(path, "g2", "name", "")
    assert only_problem(community) == f"{path}:3: name: Field required"


def test_staff_gates_must_be_of_their_community(community: Path):
    other_community(community)
    path = community / "staff.csv"
    set_cell(path, "DS-01", "gates", "g1;g9")
    assert only_problem(community) == f"{path}:4: gates 'g9' is of community 'CM-2', not 'CM-1'"


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("channels", "chat;fax", "channels: Value error, unknown channel 'fax' (one of chat, "),
        ("channels", "sms;sms", "channels: Value error, channel 'sms' given more than once"),
        ("channels", "email", "Value error, channels names email but the person has no email"),
        ("email", "wang.hua@", "email: Value error, not an e-mail address"),
        ("phone", "", "Value error, channels names sms but the person has no phone"),
        ("language", "Chinese", "language: String should match pattern"),
        ("chat_url", "127.0.0.1:8099/hooks", "chat_url: Value error, not a URL"),
    ],
)
def test_bad_staff_cell(community: Path, column: str, value: str, reason: str):
    path = community / "staff.csv"
    set_cell(path, "DS-01", column, value)
    p = only_problem(community)
    assert p.startswith(f"{path}:4: {reason}"), p


@pytest.mark.parametrize(
    ("file", "row_id", "column", "value", "reason"),
    [
        ("residents", "R-1001", "channels", "sms;pager", "channels: Value error, unknown channel"),
        ("residents", "R-1001", "channels", "email", "Value error, channels names email but "),
        ("residents", "R-1003", "channels", "sms", "Value error, channels names sms but the "),
        ("residents", "R-3001", "email", "james hill@example.com", "email: Value error, not an"),
        ("volunteers", "V-01", "channels", "wechat", "channels: Value error, unknown channel"),
        ("volunteers", "V-01", "email", "xu@qiang", "email: Value error, not an e-mail address"),
        ("grids", "G-01", "worker_channels", "email", "Value error, channels names email but "),
        ("grids", "G-01", "worker_email", "li mei", "worker_email: Value error, not an e-mail"),
    ],
)
def test_bad_contact_cell(
    community: Path, file: str, row_id: str, column: str, value: str, reason: str
):
    path = community / f"{file}.csv"
    add_column(path, column)  # volunteers.csv and grids.csv have none of them
    line = set_cell(path, row_id, column, value)
    p = only_problem(community)
    assert p.startswith(f"{path}:{line}: {reason}"), p


@pytest.mark.parametrize(
    ("row_id", "place", "target"),
    [("CG-C01", "compound", "compounds"), ("CG-B01", "building", "buildings")],
)
def test_a_chat_group_place_must_be_in_its_file(
    community: Path, row_id: str, place: str, target: str
):
    path = community / "chat_groups.csv"
    line = set_cell(path, row_id, "place_id", "NOPE-1")
    assert only_problem(community) == f"{path}:{line}: place_id 'NOPE-1' is not in {target}.csv"


def test_a_grid_group_must_name_a_grid(community: Path):
    path = community / "chat_groups.csv"
    line = set_cell(path, "CG-B01", "place", "grid")  # B-01 is a building, not a grid
    assert only_problem(community) == f"{path}:{line}: place_id 'B-01' is not in grids.csv"


def test_a_chat_group_place_of_another_community(community: Path):
    other_community(community)
    path = community / "chat_groups.csv"
    set_cell(path, "CG-C02", "place_id", "C-09")
    set_cell(path, "CG-B01", "place_id", "B-09")
    append_line(path, "CG-G09,CM-1,grid,G-09,Grid 9,http://127.0.0.1:8099/hooks/grid-9")
    assert problems(community) == [
        f"{path}:3: place_id 'C-09' is of community 'CM-2', not 'CM-1'",
        f"{path}:4: place_id 'B-09' is of community 'CM-2', not 'CM-1'",
        f"{path}:5: place_id 'G-09' is of community 'CM-2', not 'CM-1'",
    ]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("place", "street", "place: Input should be 'community', 'compound', 'building' or "),
        ("place", "community", "Value error, place_id of a community's group is its "),
        ("url", "", "url: Field required"),
        ("url", "hooks/compound-C-02", "url: Value error, not a URL"),
        ("place_id", "C 02", "place_id: String should match pattern"),
    ],
)
def test_bad_chat_group_cell(community: Path, column: str, value: str, reason: str):
    path = community / "chat_groups.csv"
    set_cell(path, "CG-C02", column, value)
    p = only_problem(community)
    assert p.startswith(f"{path}:3: {reason}"), p


def test_chat_groups_are_not_checked_against_files_left_out(community: Path):
    for name in ("compounds", "buildings", "grids", "gates", "households", "residents"):
        (community / f"{name}.csv").unlink()
    set_cell(community / "chat_groups.csv", "CG-B01", "place_id", "B-77")
    assert problems(community) == []


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (
            "SMS-2,CM-1,sms,https://gw.example.cn/send?to={phone}&text={text},,",
            "url: Value error, unknown placeholder(s) {text} (only {phone}, {email}, {name})",
        ),
        (
            "SMS-2,CM-1,sms,https://gw.example.cn/send?to={phone,,",
            "url: Value error, a { or } that opens or closes no placeholder",
        ),
        ("SMS-2,CM-1,sms,,,", "url: Field required"),
        ("SMS-2,CM-1,fax,https://gw.example.cn/,,", "kind: Input should be 'sms' or 'email'"),
        ("SMS-2,CM-1,sms,https://gw.example.cn/,0,", "rate_per_s: Input should be greater than 0"),
        ("SMS-2,CM-1,sms,https://gw.example.cn/,,0", "max_segments: Input should be greater than"),
        ("MAIL-2,CM-1,email,mailto://a:b@x.cn,,2", "Value error, max_segments is for sms channels"),
        (
            "SMS-2,CM-9,sms,https://gw.example.cn/,,",
            "community_id 'CM-9' is not in communities.csv",
        ),
    ],
)
def test_bad_channel_row(community: Path, row: str, reason: str):
    path = community / "channels.csv"
    path.write_text(CHANNELS_CSV, encoding="utf-8")
    line = append_line(path, row)
    assert line == 4
    p = only_problem(community)
    assert p.startswith(f"{path}:4: {reason}"), p


def test_new_kinds_are_all_or_nothing_too(community: Path, monkeypatch):
    """One bad chat group: the office is told where, and not one row is published."""
    monkeypatch.setenv("GRIDCARE_NATS_URL", "nats://127.0.0.1:9")  # never reached
    path = community / "chat_groups.csv"
    set_cell(path, "CG-B01", "place_id", "B-77")
    result = invoke(str(community))
    assert result.exit_code == 1, result.output
    assert f"{path}:4: place_id 'B-77' is not in buildings.csv" in result.output
    assert "1 problem(s); nothing was imported." in flat(result.output)


# --- the command ----------------------------------------------------------------------------
def test_cli_check_on_good_data(community: Path):
    result = invoke("--check", str(community))
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert (
        "checked: 1 communities, 2 compounds, 2 grids, 3 buildings, 4 households, "
        "5 residents, 3 gates, 2 volunteers, 3 staff, 3 chat_groups"
    ) in out
    assert "imported" not in out


def test_cli_reports_every_problem_and_exits_1(community: Path, monkeypatch):
    monkeypatch.setenv("GRIDCARE_NATS_URL", "nats://127.0.0.1:9")  # never reached
    set_cell(community / "residents.csv", "R-1002", "phone", "xx")
    set_cell(community / "buildings.csv", "B-03", "grid_id", "G-99")
    (community / "gates.csv").write_bytes("gate_id,compound_id,name\ng1,C-01,北门\n".encode("gbk"))
    expected = problems(community)
    assert len(expected) == 3
    for args in ([str(community)], ["--check", str(community)]):
        result = invoke(*args)
        assert result.exit_code == 1, result.output
        for p in expected:
            assert p in result.output  # each on its own, unwrapped line
        assert "3 problem(s); nothing was imported." in flat(result.output)
        assert "publishing" not in result.output
        assert "checked:" not in result.output


def test_cli_empty_folder(tmp_path: Path):
    result = invoke(str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path}:0: no reference data files" in result.output


# --- publishing, against a real nats-server -------------------------------------------------
def unique_community(community: Path) -> str:
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    uniquify(community, prefix)
    assert refdata.load(community).problems == []
    return prefix


async def refdata_state(url: str, prefix: str) -> tuple[int, dict[str, int]]:
    """(messages in REFDATA, message count per subject of ours)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info("REFDATA", subjects_filter="refdata.>")
        except NotFoundError:
            return 0, {}
        mine = {
            s: n
            for s, n in (info.state.subjects or {}).items()
            if s.split(".")[2].startswith(prefix)
        }
        return info.state.messages, mine
    finally:
        await nc.close()


async def last_envelope(url: str, subject: str) -> Envelope:
    nc = await nats.connect(url)
    try:
        msg = await nc.jetstream().get_last_msg("REFDATA", subject)
        assert msg.subject == subject
        return Envelope.from_bytes(msg.data)
    finally:
        await nc.close()


async def cli(*args: str):
    # The command runs its own event loop (asyncio.run): give it a thread of its own.
    return await asyncio.to_thread(invoke, *args)


def expected_subjects(folder: Path) -> set[str]:
    return {e.subject() for e in refdata.load(folder).ordered()}


async def test_import_publishes_one_message_per_entity(community: Path, nats_server, monkeypatch):
    monkeypatch.setenv("GRIDCARE_NATS_URL", nats_server.url)
    prefix = unique_community(community)
    before, _ = await refdata_state(nats_server.url, prefix)

    result = await cli(str(community))
    assert result.exit_code == 0, result.output
    assert f"imported {SAMPLE_TOTAL} rows" in result.output

    after, mine = await refdata_state(nats_server.url, prefix)
    assert mine == dict.fromkeys(expected_subjects(community), 1)
    assert after - before == SAMPLE_TOTAL

    env = await last_envelope(nats_server.url, f"refdata.resident.{prefix}R-1001")
    assert env.type == Resident.TYPE
    assert env.source == "gridcare-import"
    assert env.data["resident_id"] == f"{prefix}R-1001"
    assert env.data["household_id"] == f"{prefix}H-0101"
    assert env.data["phone"] == "+8613900001001"
    gate = await last_envelope(nats_server.url, f"refdata.gate.{prefix}g3")
    assert gate.type == Gate.TYPE
    assert gate.data["compound_id"] == f"{prefix}C-02"
    assert gate.correlation_id == env.correlation_id  # the import id, shared by every row
    staff = await last_envelope(nats_server.url, f"refdata.staff.{prefix}DS-01")
    assert staff.type == Staff.TYPE
    assert staff.data["gates"] == [f"{prefix}g1", f"{prefix}g2"]
    assert staff.data["channels"] == ["chat", "sms"]
    group = await last_envelope(nats_server.url, f"refdata.chat_group.{prefix}CG-B01")
    assert group.type == ChatGroup.TYPE
    assert (group.data["place"], group.data["place_id"]) == ("building", f"{prefix}B-01")


async def test_reimport_replaces_the_changed_entity(community: Path, nats_server, monkeypatch):
    monkeypatch.setenv("GRIDCARE_NATS_URL", nats_server.url)
    prefix = unique_community(community)
    first = await cli(str(community))
    assert first.exit_code == 0, first.output
    old = await last_envelope(nats_server.url, f"refdata.resident.{prefix}R-1001")
    assert old.data["phone"] == "+8613900001001"
    total_after_first, _ = await refdata_state(nats_server.url, prefix)

    set_cell(community / "residents.csv", f"{prefix}R-1001", "phone", "+86 139 9999 0000")
    second = await cli(str(community))
    assert second.exit_code == 0, second.output

    new = await last_envelope(nats_server.url, f"refdata.resident.{prefix}R-1001")
    assert new.data["phone"] == "+8613999990000"
    assert new.event_id != old.event_id
    assert new.correlation_id != old.correlation_id  # a new import
    total, mine = await refdata_state(nats_server.url, prefix)
    assert mine == dict.fromkeys(expected_subjects(community), 1)
    assert sum(mine.values()) == SAMPLE_TOTAL
    assert total == total_after_first  # replaced, not added


async def test_the_sample_ids_carry_the_latest_import(community: Path, nats_server, monkeypatch):
    """With the sample's own ids (other tests may publish them too): the last message on a
    subject is what this import said."""
    monkeypatch.setenv("GRIDCARE_NATS_URL", nats_server.url)
    marker = f"Wang Fang {uuid.uuid4().hex[:8]}"
    set_cell(community / "residents.csv", "R-1001", "name", marker)
    result = await cli(str(community))
    assert result.exit_code == 0, result.output
    env = await last_envelope(nats_server.url, "refdata.resident.R-1001")
    assert env.data["name"] == marker
    _, per_subject = await refdata_state(nats_server.url, "R-1001")
    assert per_subject == {"refdata.resident.R-1001": 1}


async def test_nothing_is_published_when_there_is_a_problem(
    community: Path, nats_server, monkeypatch
):
    monkeypatch.setenv("GRIDCARE_NATS_URL", nats_server.url)
    prefix = unique_community(community)
    set_cell(community / "volunteers.csv", f"{prefix}V-02", "phone", "no phone")
    before, _ = await refdata_state(nats_server.url, prefix)

    result = await cli(str(community))
    assert result.exit_code == 1
    assert "1 problem(s); nothing was imported." in flat(result.output)
    after, mine = await refdata_state(nats_server.url, prefix)
    assert mine == {}
    assert after == before


async def test_check_publishes_nothing(community: Path, nats_server, monkeypatch):
    monkeypatch.setenv("GRIDCARE_NATS_URL", nats_server.url)
    prefix = unique_community(community)
    result = await cli("--check", str(community))
    assert result.exit_code == 0, result.output
    _, mine = await refdata_state(nats_server.url, prefix)
    assert mine == {}
