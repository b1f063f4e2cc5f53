"""Reference data from the CSV files a community office already keeps.

One file per kind in a folder, named ``<kind>s.csv`` (``communities.csv``,
``compounds.csv``, ``residents.csv``, ``chat_groups.csv``, ..., but ``staff.csv``); the
header row names the columns, which are the fields of the models in
``gridcare.contracts.refdata`` (see ``docs/reference-data.md``).
Import is all or nothing: every file is read and every row checked (types, duplicates,
references between files) before anything is published; each bad row is reported as
``file:line: reason``. Rows are then published, compacted per entity, on
``refdata.<kind>.<id>``; re-importing a file updates what changed.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nats.js import JetStreamContext
from pydantic import ValidationError

from gridcare.contracts.refdata import (
    ENTITIES as REF_ENTITIES,
)
from gridcare.contracts.refdata import (
    Building,
    Channel,
    ChatGroup,
    Community,
    Compound,
    Gate,
    Grid,
    Household,
    RefEntity,
    Resident,
    Staff,
    Volunteer,
)
from gridcare.shared.envelope import Envelope, new_id, stable_id

# Which field of a kind points at which other kind.
REFERENCES: dict[type[RefEntity], dict[str, type[RefEntity]]] = {
    Compound: {"community_id": Community},
    Grid: {"community_id": Community},
    Volunteer: {"community_id": Community},
    Building: {"compound_id": Compound, "grid_id": Grid},
    Household: {"building_id": Building},
    Resident: {"household_id": Household},
    Gate: {"compound_id": Compound},
    Staff: {"community_id": Community},
    ChatGroup: {"community_id": Community},
    Channel: {"community_id": Community},
}
# Which list field of a kind names rows of which other kind (each value is checked).
LIST_REFERENCES: dict[type[RefEntity], dict[str, type[RefEntity]]] = {
    Staff: {"gates": Gate},
}
# A chat group's place_id names a row of the kind its place says.
PLACE_KINDS: dict[str, type[RefEntity]] = {
    "community": Community,
    "compound": Compound,
    "building": Building,
    "grid": Grid,
}
BY_KIND = {m.KIND: m for m in REF_ENTITIES}
PLURALS = {"community": "communities", "staff": "staff"}


def file_name(model: type[RefEntity]) -> str:
    return f"{PLURALS.get(model.KIND, model.KIND + 's')}.csv"


def columns(model: type[RefEntity]) -> tuple[list[str], list[str]]:
    """(required, optional) column names of a kind's file."""
    required, optional = [], []
    for name, info in model.model_fields.items():
        (required if info.is_required() else optional).append(name)
    return required, optional


@dataclass
class Problem:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class Dataset:
    entities: dict[type[RefEntity], dict[str, RefEntity]] = field(default_factory=dict)
    lines: dict[tuple[type[RefEntity], str], tuple[str, int]] = field(default_factory=dict)
    rejected: dict[type[RefEntity], set[str]] = field(default_factory=dict)  # ids of bad rows
    problems: list[Problem] = field(default_factory=list)

    def count(self) -> int:
        return sum(len(v) for v in self.entities.values())

    def ordered(self) -> Iterable[RefEntity]:
        """Parents before children, so projections meet the compound before its gates."""
        for model in REF_ENTITIES:
            yield from self.entities.get(model, {}).values()


def _format_error(err: dict) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else err["msg"]


def read_file(path: Path, model: type[RefEntity], data: Dataset) -> None:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        data.problems.append(
            Problem(
                name,
                1,
                f"not UTF-8 ({exc.reason} at byte {exc.start}); save the sheet as 'CSV UTF-8'",
            )
        )
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        data.problems.append(Problem(name, 1, "empty file: a header row is required"))
        return
    header = [h.strip() for h in header]
    while header and header[-1] == "":  # spreadsheets often leave a trailing comma
        header.pop()
    required, optional = columns(model)
    missing = [c for c in required if c not in header]
    unknown = [h for h in header if h not in required and h not in optional]
    if missing:
        data.problems.append(Problem(name, 1, f"missing column(s): {', '.join(missing)}"))
    if unknown:
        data.problems.append(
            Problem(
                name,
                1,
                f"unknown column(s): {', '.join(unknown)} "
                f"(known: {', '.join(required + optional)})",
            )
        )
    if missing or unknown:
        return
    rows = data.entities.setdefault(model, {})
    rejected = data.rejected.setdefault(model, set())
    while True:
        line_no = reader.line_num + 1  # a quoted cell may span lines: count physical lines
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            data.problems.append(Problem(name, line_no, f"not valid CSV: {exc}"))
            return
        if not any(v.strip() for v in values):
            continue
        while len(values) > len(header) and values[-1].strip() == "":
            values.pop()  # the trailing comma again
        if len(values) != len(header):
            data.problems.append(
                Problem(name, line_no, f"{len(values)} values for {len(header)} columns")
            )
            continue
        raw = {h: v.strip() for h, v in zip(header, values, strict=True) if v.strip() != ""}
        try:
            entity = model.model_validate(raw)
        except ValidationError as exc:
            rejected.add(raw.get(model.ID_FIELD, ""))
            for err in exc.errors(include_url=False):
                data.problems.append(Problem(name, line_no, _format_error(err)))
            continue
        key = entity.entity_id
        if key in rows:
            first = data.lines[(model, key)][1]
            data.problems.append(
                Problem(
                    name, line_no, f"duplicate {model.ID_FIELD} {key!r} (first on line {first})"
                )
            )
            continue
        rows[key] = entity
        data.lines[(model, key)] = (name, line_no)


def check_references(data: Dataset) -> None:
    """Every reference must name a row of the same import (when that file is part of it)."""
    for model in REF_ENTITIES:
        for key, entity in data.entities.get(model, {}).items():
            for fld, target in REFERENCES.get(model, {}).items():
                _check(data, model, key, fld, getattr(entity, fld), target)
            for fld, target in LIST_REFERENCES.get(model, {}).items():
                for value in getattr(entity, fld):
                    _check(data, model, key, fld, value, target)
                    _same_community(data, model, key, fld, value, target)
            if isinstance(entity, ChatGroup) and entity.place != "community":
                target = PLACE_KINDS[entity.place]
                _check(data, model, key, "place_id", entity.place_id, target)
                _same_community(data, model, key, "place_id", entity.place_id, target)


def _check(
    data: Dataset,
    model: type[RefEntity],
    key: str,
    fld: str,
    value: str,
    target: type[RefEntity],
) -> None:
    if target not in data.entities:
        return  # that kind is not part of this import: not checked here
    if value in data.rejected.get(target, set()):
        return  # that row's own problem is reported already
    if value not in data.entities[target]:
        fname, line = data.lines[(model, key)]
        data.problems.append(Problem(fname, line, f"{fld} {value!r} is not in {file_name(target)}"))


def community_of(data: Dataset, model: type[RefEntity], key: str) -> str | None:
    """The community a place of this import belongs to, if the import says."""
    entity = data.entities.get(model, {}).get(key)
    if entity is None:
        return None
    if isinstance(entity, Community | Compound | Grid):
        return entity.community_id
    if isinstance(entity, Building | Gate):
        return community_of(data, Compound, entity.compound_id)
    return None


def _same_community(
    data: Dataset,
    model: type[RefEntity],
    key: str,
    fld: str,
    value: str,
    target: type[RefEntity],
) -> None:
    """A place named by a row of one community must be of that community."""
    own = data.entities[model][key].community_id  # type: ignore[attr-defined]
    if Community in data.entities and own not in data.entities[Community]:
        return  # its own community is wrong: reported already
    theirs = community_of(data, target, value)
    if theirs is not None and theirs != own:
        fname, line = data.lines[(model, key)]
        data.problems.append(
            Problem(fname, line, f"{fld} {value!r} is of community {theirs!r}, not {own!r}")
        )


def load(folder: Path) -> Dataset:
    """Read and check every known file in ``folder``. Never raises for bad content."""
    data = Dataset()
    if not folder.is_dir():
        data.problems.append(Problem(str(folder), 0, "not a folder"))
        return data
    found = False
    for model in REF_ENTITIES:
        path = folder / file_name(model)
        if path.exists():
            found = True
            read_file(path, model, data)
    if not found:
        names = ", ".join(file_name(m) for m in REF_ENTITIES)
        data.problems.append(Problem(str(folder), 0, f"no reference data files (expected {names})"))
    check_references(data)
    data.problems.sort(key=lambda p: (p.file, p.line))
    return data


def envelope_for(entity: RefEntity, import_id: str, source: str = "gridcare-import") -> Envelope:
    """The event for one row. Its id is stable within one import run (a retried publish is
    de-duplicated) and new on every run (a re-import is applied again)."""
    digest = hashlib.sha256(
        json.dumps(entity.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()
    eid = stable_id(entity.KIND, entity.entity_id, digest, import_id)
    return Envelope.wrap(entity, source=source, event_id=eid, correlation_id=import_id)


async def publish(
    js: JetStreamContext,
    data: Dataset,
    progress: Callable[[int], None] = lambda n: None,
    window: int = 256,
) -> str:
    """Publish every entity, waiting for each PubAck; returns the import id.

    Publishing is retried per row a few times; if NATS stays away the error propagates and
    running the import again finishes the job (re-publishing is harmless).
    """
    import_id = new_id()
    batch: list[RefEntity] = []

    async def one(entity: RefEntity) -> None:
        env = envelope_for(entity, import_id)
        for attempt in range(5):
            try:
                await js.publish(
                    entity.subject(), env.to_bytes(), headers=env.headers(), timeout=10
                )
                return
            except Exception:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.5 * 2**attempt)

    async def flush() -> None:
        await asyncio.gather(*(one(e) for e in batch))
        progress(len(batch))
        batch.clear()

    for entity in data.ordered():
        batch.append(entity)
        if len(batch) >= window:
            await flush()
    if batch:
        await flush()
    return import_id
