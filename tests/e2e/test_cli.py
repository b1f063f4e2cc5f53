"""The office tool against the running system: it speaks only to the services' APIs,
finds NATS as ``make run`` does, prints tables that read at 80 columns (or JSON), refuses
unknown ids, and exits non-zero on any error reply."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from system import write_community
from typer.testing import CliRunner

from gridcare.cli.main import app

pytestmark = pytest.mark.e2e


async def gridcare(system, *args: str, nats_env: str = "GRIDCARE_NATS_URL"):
    """Run one command as an operator would (80 columns); returns the result."""
    env = {"COLUMNS": "80", "GRIDCARE_NATS_URL": None, "NATS_URL": None}
    env[nats_env] = system.nats.url

    def run():
        return CliRunner().invoke(app, list(args), env=env)

    return await asyncio.to_thread(run)


def lines_fit(text: str) -> bool:
    return all(len(line) <= 80 for line in text.splitlines())


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_the_office_tool_on_the_service_apis(system, sink, tmp_path):
    system.residents = len(write_community(tmp_path / "community", sink))
    # `gridcare import` honours NATS_URL (as the README tells users to set)
    done = await gridcare(system, "import", str(tmp_path / "community"), nats_env="NATS_URL")
    assert done.exit_code == 0, done.output
    await system.wait_projected()

    # a scan: the verdict exits 0, an error reply exits 1
    ok = await gridcare(system, "scan", "--gate", "g1", "--person", "R-1001", "--temp", "38.2")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["reasons"] == ["fever"]
    bad = await gridcare(system, "scan", "--gate", "g1", "--person", "R-1001", "--temp", "51")
    assert bad.exit_code == 1 and json.loads(bad.stdout)["error"]["code"] == "invalid_scan"

    # unknown ids are refused, with a clear message
    for args, code in (
        (("level", "set", "C-99", "sealed", "--by", "ops"), "unknown_compound"),
        (("level", "show", "C-99"), "unknown_compound"),
        (("policy", "show", "CM-9"), "unknown_community"),
        (("out", "C-99"), "unknown_compound"),
        (
            ("status", "set", "R-9999", "confirmed", "--by", "Dr", "--reason", "lab"),
            "unknown_person",
        ),
        (
            (
                "permit",
                "issue",
                "--holder",
                "R-9999",
                "--until",
                "2030-01-01T00:00+08:00",
                "--by",
                "o",
            ),
            "unknown_person",
        ),
        (("dead-letters", "checkpoint", "--replay", "4242"), "unknown_dead_letter"),
        (("outbox", "screening", "--replay", "4242"), "unknown_outbox_row"),
    ):
        refused = await gridcare(system, *args)
        assert refused.exit_code == 1, (args, refused.output)
        assert f"refused: {code}" in refused.output, (args, refused.output)

    # the level and the policy in force
    sealed = await gridcare(system, "level", "set", "C-01", "sealed", "--by", "Secretary Wang")
    assert sealed.exit_code == 0, sealed.output
    shown = await gridcare(system, "level", "show", "--json")
    levels = {c["compound_id"]: c for c in json.loads(shown.stdout)["compounds"]}
    assert levels["C-01"]["level"] == "sealed" and levels["C-02"]["level"] == "controlled"
    assert levels["C-01"]["set_at"].endswith("+08:00")  # the community's clock
    policy = await gridcare(system, "policy", "show", "CM-1")
    assert policy.exit_code == 0 and "37.3" in policy.stdout and lines_fit(policy.stdout)
    lifted = await gridcare(system, "level", "set", "C-01", "precaution", "--by", "Secretary Wang")
    assert lifted.exit_code == 0

    # screening decides who is held; the gate enforces it
    held = await gridcare(
        system, "status", "set", "R-1002", "home_quarantine", "--by", "W-01", "--reason", "returnee"
    )
    assert held.exit_code == 0 and "held at the gate" in held.output

    async def denied():
        out = await gridcare(
            system, "scan", "--gate", "g1", "--person", "R-1002", "--direction", "out"
        )
        return "quarantine" in json.loads(out.stdout).get("reasons", [])

    await system.wait_for(denied, timeout=10, what="the hold enforced at the gate")

    async def delivered():
        out = await gridcare(system, "deliveries", "--json")
        return [d for d in json.loads(out.stdout)["deliveries"] if d["status"] == "sent"]

    await system.wait_for(delivered, what="the fever alert delivered")

    # every listing: a table that reads at 80 columns, times on the local clock; or JSON
    for args in (
        ("passages",),
        ("cases",),
        ("tasks",),
        ("deliveries",),
        ("out", "C-01"),
        ("level", "show"),
        ("status", "show", "R-1002"),
        ("status", "list"),
        ("dead-letters", "notify"),
        ("outbox", "checkpoint"),
        ("health",),
    ):
        table = await gridcare(system, *args)
        assert table.exit_code == 0, (args, table.output)
        assert lines_fit(table.stdout), (args, table.stdout)
        assert "+00:00" not in table.stdout and "UTC" not in table.stdout
        as_json = await gridcare(system, *args, "--json")
        assert as_json.exit_code == 0, (args, as_json.output)
        json.loads(as_json.stdout)
    passages = await gridcare(system, "passages")
    assert re.search(r"\bR-1001\b", passages.stdout) and "fever" in passages.stdout
    cases = json.loads((await gridcare(system, "cases", "--json")).stdout)["cases"]
    assert [c["person_id"] for c in cases] == ["R-1001"]
    assert cases[0]["opened_at"].endswith("+08:00")

    # a service that does not answer: a clear error, exit 1
    system.procs["dispatch"].stop()
    gone = await gridcare(system, "tasks")
    assert gone.exit_code == 1 and "nobody answers api.dispatch.tasks" in gone.output
    health = await gridcare(system, "health")
    assert health.exit_code == 1 and "dispatch" in health.stdout
