"""Each service's AsyncAPI document: generated from the code (``make asyncapi``), valid
against the official AsyncAPI 3.0.0 schema, and the checked-in copy is current.

The schema is ``asyncapi-3.0.0.schema.json`` here: ``schemas/3.0.0-without-$id.json`` of
the npm package ``@asyncapi/specs`` 6.11.1 (Apache-2.0, ``asyncapi-schema.LICENSE``),
self-contained (draft-07, every ``$ref`` inside the file), so the test needs no network.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
from functools import cache
from pathlib import Path

import pytest
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.exceptions import NoSuchResource

HERE = Path(__file__).parent
DOCS = HERE.parents[1] / "docs" / "asyncapi"
SCHEMA = HERE / "asyncapi-3.0.0.schema.json"
SCHEMA_SHA256 = "abe96881dbfaad495ccbb6bd8d3fb43ca18a13b9d7564849ccb66f39d5e5b20f"
SERVICES = ("checkpoint", "screening", "dispatch", "notify")


def _offline(uri: str):
    raise NoSuchResource(ref=uri)  # every $ref must resolve inside the file


@cache
def validator() -> Draft7Validator:
    raw = SCHEMA.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256, "the schema file was changed"
    schema = json.loads(raw)
    # The schema checks components.messages / .schemas entries only under keys matching
    # ^[\w\d.\-_]+$ and lets others through unchecked; FastStream names them
    # "<channel>:<Message>". Check every entry, whatever its key.
    for entry in schema["definitions"]["components"]["properties"].values():
        patterns = entry.get("patternProperties", {})
        if len(patterns) == 1 and "additionalProperties" not in entry:
            entry["additionalProperties"] = copy.deepcopy(next(iter(patterns.values())))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, registry=Registry(retrieve=_offline))


def errors(doc: dict) -> list[str]:
    def leaves(e):
        if not e.context:
            return [e]
        found = [x for sub in e.context for x in leaves(sub)]
        useful = [x for x in found if not (x.validator == "required" and "'$ref'" in x.message)]
        return useful or [e]

    return sorted(
        {
            f"/{'/'.join(map(str, x.absolute_path))}: {x.message}"
            for top in validator().iter_errors(doc)
            for x in leaves(top)
        }
    )


@cache
def generated(service: str) -> dict:
    """The document as ``faststream docs gen --factory gridcare.<service>.bootstrap:asyncapi``
    writes it."""
    app = importlib.import_module(f"gridcare.{service}.bootstrap").asyncapi()
    return app.schema.to_specification().to_jsonable()


@pytest.mark.parametrize("service", SERVICES)
def test_the_document_is_valid_asyncapi(service):
    doc = generated(service)
    assert doc["asyncapi"] == "3.0.0"
    assert errors(doc) == []


def test_a_broken_document_is_refused():
    doc = copy.deepcopy(generated("screening"))
    del doc["info"]["title"]
    name = next(iter(doc["components"]["messages"]))
    doc["components"]["messages"][name]["payload"] = "not a schema"
    found = errors(doc)
    assert any("'title' is a required property" in e for e in found)
    assert any("components/messages" in e for e in found)


@pytest.mark.parametrize("service", SERVICES)
def test_the_checked_in_document_is_current(service):
    path = DOCS / f"{service}.json"
    assert path.exists(), f"{path} is missing: run `make asyncapi`"
    assert json.loads(path.read_text(encoding="utf-8")) == generated(service), (
        f"{path} is stale: run `make asyncapi` and commit the result"
    )


@pytest.mark.parametrize(
    ("service", "subjects"),
    [
        (
            "checkpoint",
            {"gate.*.scan", "gate.*.heartbeat", "door.*.opened", "refdata.>", "screening.>"},
        ),
        ("screening", {"refdata.>", "checkpoint.fever.detected.*"}),
        ("dispatch", {"screening.case.opened.*", "checkpoint.quarantine.breach.*"}),
        (
            "notify",
            {"notify.requested.urgent", "notify.requested.retry", "staff.*.ack", "refdata.>"},
        ),
    ],
)
def test_the_document_names_what_the_service_takes_answers_and_publishes(service, subjects):
    doc = generated(service)
    addresses = {c["address"] for c in doc["channels"].values()}
    assert subjects <= addresses
    assert f"api.{service}.health" in addresses and f"api.{service}.dead_letters.list" in addresses
    sends = [o for o in doc["operations"].values() if o["action"] == "send"]
    assert sends, "its events are documented as published"
