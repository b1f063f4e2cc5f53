"""The ``gridcare`` command: what the community office, duty staff and ops type.

Every command that reads or changes a service's data asks that service's API
(``api.<service>.<op>``, core NATS request/reply); reference data and policies are
published as the office's own (``refdata.>``). NATS is found the way ``make run`` finds it:
``GRIDCARE_NATS_URL``, else ``NATS_URL``, else the embedded server (127.0.0.1:14222).
Listings take ``--json``; an error reply exits 1 and says why.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import sys
import time
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from gridcare.contracts.edge import GATE_SCAN, STAFF_ACK
from gridcare.contracts.refdata import STREAM as REFDATA
from gridcare.contracts.refdata import CommunityPolicy, ControlLevel
from gridcare.shared.envelope import Envelope
from gridcare.shared.natsconn import ensure_streams

from . import client, refdata
from .client import NoAnswer, Refused
from .devrun import (
    SERVICES,
    NatsServer,
    ServiceProcess,
    Supervisor,
    WebhookSink,
    port_open,
)
from .output import as_json, fail, no_answer, refused, stderr, stdout, table, when

app = typer.Typer(
    help="gridcare: run a residential community through an epidemic.",
    no_args_is_help=True,
    add_completion=False,
)
policy_app = typer.Typer(help="Community gate policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
level_app = typer.Typer(help="Compound control levels.", no_args_is_help=True)
app.add_typer(level_app, name="level")
permit_app = typer.Typer(help="Outing permits.", no_args_is_help=True)
app.add_typer(permit_app, name="permit")
status_app = typer.Typer(help="People's health status (screening).", no_args_is_help=True)
broadcast_app = typer.Typer(help="Notices to every resident of a place.", no_args_is_help=True)
app.add_typer(broadcast_app, name="broadcast")
app.add_typer(status_app, name="status")
quarantine_app = typer.Typer(help="Home quarantine of households.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
sites_app = typer.Typer(help="Central quarantine sites and their rooms.", no_args_is_help=True)
app.add_typer(sites_app, name="sites")
contacts_app = typer.Typer(help="Close contacts of confirmed cases.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")
compounds_app = typer.Typer(
    help="Compounds: level, last case, epidemic-free (screening).", no_args_is_help=True
)
app.add_typer(compounds_app, name="compounds")

EMBEDDED_NATS_PORT = int(os.environ.get("GRIDCARE_EMBEDDED_NATS_PORT", "14222"))
SINK_PORT = 8099  # where the sample community's chat URLs point
Json = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
Limit = Annotated[int, typer.Option(help="at most this many, newest first")]


def ask(service: str, op: str, body: dict[str, Any] | None = None) -> Any:
    """The result of an API operation, or a clear message and exit 1."""
    try:
        return client.call(service, op, body)
    except Refused as exc:
        raise refused(exc) from None
    except NoAnswer as exc:
        raise no_answer(exc) from None


def _service(name: str) -> str:
    if name not in SERVICES:
        raise fail(f"unknown service {name!r}; one of: {', '.join(SERVICES)}", 2)
    return name


# --- import ---------------------------------------------------------------------------------
@app.command("import")
def import_(
    folder: Annotated[Path, typer.Argument(help="folder with compounds.csv, residents.csv, ...")],
    check: Annotated[bool, typer.Option("--check", help="only check; publish nothing")] = False,
) -> None:
    """Check the office's CSV files and publish them as reference data (all or nothing)."""
    data = refdata.load(folder)
    for p in data.problems:
        stderr.print(f"[red]{p}[/]", highlight=False, soft_wrap=True)
    if data.problems:
        raise fail(f"{len(data.problems)} problem(s); nothing was imported.")
    counts = ", ".join(
        f"{len(rows)} {refdata.file_name(m)[:-4]}" for m, rows in data.entities.items()
    )
    stderr.print(f"checked: {counts}")
    if check:
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    async def go() -> str:
        nc = await client.connect("gridcare-import")
        try:
            js = nc.jetstream()
            await ensure_streams(js, client.settings(), (REFDATA,))
            with Progress(
                TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), console=stderr
            ) as bar:
                task = bar.add_task("publish", total=data.count())
                return await refdata.publish(js, data, lambda n: bar.advance(task, n))
        finally:
            await nc.close()

    try:
        import_id = asyncio.run(go())
    except Exception as exc:
        raise fail(
            f"publishing failed: {exc}\nRun the same import again: rows already published "
            "are simply applied again."
        ) from None
    stderr.print(f"imported {data.count()} rows (import {import_id})")


# --- run ------------------------------------------------------------------------------------
@app.command()
def run(
    var: Annotated[Path, typer.Option(help="data and logs")] = Path("var"),
    sink: Annotated[bool, typer.Option(help=f"run the local chat sink on port {SINK_PORT}")] = True,
) -> None:
    """Start the whole system: embedded NATS (unless GRIDCARE_NATS_URL/NATS_URL is set), a
    local chat sink, and the four services, each its own process, and keep them running: a
    process that exits is started again (after 1 s, doubling to 30 s while it keeps
    exiting). Ctrl-C, SIGTERM or SIGHUP, or the end of the process that started this one,
    stops all."""
    var = var.resolve()
    logs = var / "log"
    logs.mkdir(parents=True, exist_ok=True)
    env = {"GRIDCARE_VAR_DIR": str(var)}
    external = os.environ.get("GRIDCARE_NATS_URL") or os.environ.get("NATS_URL")
    server = chat = None
    if external:
        env["GRIDCARE_NATS_URL"] = external
    else:
        server = NatsServer(
            store_dir=var / "nats",
            port=EMBEDDED_NATS_PORT,
            monitor_port=EMBEDDED_NATS_PORT + 1,
            sync_interval=os.environ.get("GRIDCARE_NATS_SYNC_INTERVAL", "always"),
            server_name="gridcare-embedded",
            log_file=logs / "nats-server.log",
        )
        env["GRIDCARE_NATS_URL"] = server.url
    procs = [
        ServiceProcess(
            name,
            env,
            logs / f"{name}.log",
            int(os.environ.get(f"GRIDCARE_{name.upper()}_HTTP_PORT", port)),
        )
        for name, port in SERVICES.items()
    ]
    sup = Supervisor(
        var, procs, server, say=lambda text: stderr.print(text, soft_wrap=True, highlight=False)
    )

    def on_signal(signum: int, _frame: object) -> None:
        sup.request_stop(signal.Signals(signum).name)

    # Any of the three stops everything, at any time; the handler only asks the loop.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    try:
        sup.clear_stale()
    except RuntimeError as exc:  # a live run on the same data, or leftovers that won't stop
        raise fail(str(exc)) from None
    taken = [
        f"port {port} ({what})"
        for what, port in (
            ([("NATS", server.port), ("NATS monitoring", server.monitor_port)] if server else [])
            + [(p.name, p.http_port) for p in procs]
        )
        if port_open("127.0.0.1", port)
    ]
    if taken:
        raise fail(
            f"{', '.join(taken)} taken: is gridcare already running? Set "
            "GRIDCARE_EMBEDDED_NATS_PORT / GRIDCARE_<SERVICE>_HTTP_PORT to use others."
        )
    say = sup.say
    if server:
        say(f"NATS: {server.url} (embedded, JetStream data in {server.store_dir})")
    else:
        say(f"NATS: {external} (external)")
    if sink and not port_open("127.0.0.1", SINK_PORT):
        chat = WebhookSink(port=SINK_PORT, echo=True, log_file=logs / "chat.log").start()
        say(f"chat sink: http://127.0.0.1:{SINK_PORT}/ (alerts also in {logs}/chat.log)")

    waiting = stderr.status("waiting for the services to be ready…")
    waiting.start()

    def running() -> None:
        waiting.stop()
        say("[green]gridcare is running[/] (Ctrl-C to stop)")
        for p in procs:
            base = f"http://127.0.0.1:{p.http_port}"
            say(
                f"  {p.name:<11} pid {p.proc.pid:<7} metrics {base}/metrics  "
                f"ready {base}/readyz  log {p.log_file}"
            )
        if server:
            say(
                f"nats-server pid {server.proc.pid}, log {server.log_file}, monitoring "
                f"http://127.0.0.1:{server.monitor_port}/"
            )

    sup.on_running = running
    try:
        sup.run()
    finally:
        try:
            waiting.stop()
        except Exception:
            pass
        if chat:
            chat.stop()


# --- scan -----------------------------------------------------------------------------------
@app.command()
def scan(
    gate: Annotated[str, typer.Option(help="gate id")],
    person: Annotated[str, typer.Option(help="person id")],
    temp: Annotated[float | None, typer.Option(help="temperature °C (omit: sensor failed)")] = None,
    direction: Annotated[str, typer.Option(help="in | out")] = "in",
    mask: Annotated[bool, typer.Option("--mask/--no-mask")] = True,
    code: Annotated[str, typer.Option(help="green | yellow | red | none")] = "green",
    scan_id: Annotated[str | None, typer.Option(help="default: a new one")] = None,
    raw: Annotated[str | None, typer.Option(help="send this JSON body as is")] = None,
) -> None:
    """Send one gate scan as a device would (docs/edge-contract.md §1) and print the
    reply; an error reply (invalid_scan, unavailable) exits 1."""
    body = (
        raw.encode()
        if raw
        else json.dumps(
            {
                "scan_id": scan_id or f"{gate}-{int(time.time() * 1000)}",
                "gate_id": gate,
                "direction": direction,
                "person_id": person,
                # the device's own clock, with its offset
                "scanned_at": datetime.now().astimezone().isoformat(timespec="seconds"),
                "temperature_c": temp,
                "mask": mask,
                "health_code": None if code == "none" else code,
            }
        ).encode()
    )

    async def go() -> bytes:
        nc = await client.connect()
        try:
            return await client.request(nc, GATE_SCAN.format(gate_id=gate), body, wait_s=5)
        finally:
            await nc.close()

    try:
        reply = json.loads(asyncio.run(go()))
    except NoAnswer as exc:
        raise no_answer(exc) from None
    as_json(reply)
    if "error" in reply:
        raise typer.Exit(1)


# --- policies and levels ----------------------------------------------------------------------
async def _publish_refdata(entity) -> None:
    nc = await client.connect()
    try:
        js = nc.jetstream()
        await ensure_streams(js, client.settings(), (REFDATA,))
        env = Envelope.wrap(entity, source="gridcare-cli")
        await js.publish(entity.subject(), env.to_bytes(), headers=env.headers(), timeout=10)
    finally:
        await nc.close()


@policy_app.command("apply")
def policy_apply(
    file: Annotated[Path, typer.Argument(help="a TOML file: see examples/policies/CM-1.toml")],
) -> None:
    """Set a community's gate policy (takes effect at every gate at once, no restart)."""
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
        unknown = sorted(set(raw) - set(CommunityPolicy.model_fields))
        if unknown:  # a typo must not silently leave a default in force
            raise fail(f"{file}: unknown setting(s): {', '.join(unknown)}")
        policy = CommunityPolicy.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise fail(f"{file}: {exc}") from None
    except ValidationError as exc:
        lines = [
            f"{file}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        raise fail("\n".join(lines)) from None
    ask("checkpoint", "policy.show", {"community_id": policy.community_id})  # known?
    try:
        asyncio.run(_publish_refdata(policy))
    except Exception as exc:
        raise fail(f"could not publish: {exc}") from None
    stderr.print(f"policy of {policy.community_id} applied")


@policy_app.command("show")
def policy_show(
    community: Annotated[str, typer.Argument(help="community id")],
    json_: Json = False,
) -> None:
    """The gate policy in force for a community (its own settings and the defaults)."""
    result = ask("checkpoint", "policy.show", {"community_id": community})
    if json_:
        return as_json(result)
    p = result["policy"]
    rows = [
        {"setting": k, "value": p[k], "from": "policy" if k in result["set"] else "default"}
        for k in p
        if k not in ("levels", "community_id")
    ]
    table(rows, [("setting", "setting"), ("value", "value"), ("from", "from")], title=community)
    levels = [{"level": lvl, **rules} for lvl, rules in p["levels"].items()]
    table(
        levels,
        [("level", "level"), ("exit", "exit"), ("visitors", "visitors"), ("fever_c", "fever °C")],
    )


@level_app.command("set")
def level_set(
    compound: Annotated[str, typer.Argument(help="compound id")],
    level: Annotated[ControlLevel, typer.Argument(help="sealed | controlled | precaution")],
    by: Annotated[str, typer.Option(help="who decides (recorded)")],
    reason: Annotated[str, typer.Option(help="why (recorded)")] = "",
) -> None:
    """Set a compound's control level; takes effect at its gates at once."""
    result = ask(
        "checkpoint",
        "level.set",
        {"compound_id": compound, "level": level.value, "set_by": by, "reason": reason},
    )
    stderr.print(f"{result['compound_id']}: {result['level']} (since {when(result['set_at'])})")


@level_app.command("show")
def level_show(
    compound: Annotated[str | None, typer.Argument(help="compound id (default: all)")] = None,
    json_: Json = False,
) -> None:
    """The control level in force at each compound, who set it and when."""
    result = ask("checkpoint", "level.show", {"compound_id": compound} if compound else {})
    if json_:
        return as_json(result)
    table(
        result["compounds"],
        [
            ("compound_id", "compound"),
            ("level", "level"),
            ("set_by", "set by"),
            ("set_at", "since"),
            ("reason", "reason"),
        ],
    )


# --- permits, overrides, the register ---------------------------------------------------------
@permit_app.command("issue")
def permit_issue(
    holder: Annotated[str, typer.Option(help="resident id")],
    until: Annotated[datetime, typer.Option(help="valid until (e.g. 2026-03-14T18:00+08:00)")],
    by: Annotated[str, typer.Option(help="who issues it")],
    kind: Annotated[str, typer.Option(help="outing | emergency | medical")] = "outing",
    uses: Annotated[int, typer.Option(help="exits allowed")] = 1,
    return_within_h: Annotated[float | None, typer.Option(help="hours to come back")] = None,
    json_: Json = False,
) -> None:
    """Issue an outing (or emergency / medical) permit; the household quota applies."""
    if until.tzinfo is None:
        until = until.astimezone()  # the office's own clock
    result = ask(
        "checkpoint",
        "permit.issue",
        {
            "holder_id": holder,
            "kind": kind,
            "uses": uses,
            "valid_until": until.isoformat(),
            "issued_by": by,
            "return_within_h": return_within_h,
        },
    )
    if json_:
        return as_json(result)
    stdout.print(
        f"permit {result['permit_id']} ({result['kind']}) for {result['holder_id']}: "
        f"{when(result['valid_from'])} to {when(result['valid_until'])}, {result['uses']} use(s)",
        highlight=False,
    )


@app.command()
def override(
    gate: Annotated[str, typer.Option(help="gate id")],
    scan_id: Annotated[str, typer.Option(help="the denied scan")],
    staff: Annotated[str, typer.Option(help="duty staff id")],
    reason: Annotated[str, typer.Option(help="why")],
) -> None:
    """Duty staff let a denied person through (recorded with who and why)."""
    result = ask(
        "checkpoint",
        "override",
        {"gate_id": gate, "scan_id": scan_id, "staff_id": staff, "reason": reason},
    )
    stderr.print(f"override of {result['scan_id']} at {result['gate_id']} recorded")


@app.command()
def out(compound: Annotated[str, typer.Argument(help="compound id")], json_: Json = False) -> None:
    """Who of a compound is out right now."""
    result = ask("checkpoint", "out", {"compound_id": compound})
    if json_:
        return as_json(result)
    table(
        result["out"],
        [("person_id", "person"), ("gate_id", "gate"), ("since", "out since")],
        title=f"{result['count']} out of {compound}",
        empty=f"nobody of {compound} is out",
    )


_PASSAGE_COLUMNS = [
    ("scanned_at", "scanned"),
    ("gate_id", "gate"),
    ("person_id", "person"),
    ("direction", "dir"),
    ("verdict", "verdict"),
    ("reasons", "reasons"),
]


@app.command()
def trace(
    gate: Annotated[str, typer.Option(help="gate of the scan")],
    scan_id: Annotated[str, typer.Option(help="the scan to trace around")],
    minutes: Annotated[float, typer.Option(help="± minutes")] = 15,
    whole_compound: Annotated[bool, typer.Option(help="every gate of the compound")] = False,
    json_: Json = False,
) -> None:
    """Who passed the gate (or any gate of its compound) within ±N minutes of a scan."""
    body = {
        "gate_id": gate,
        "scan_id": scan_id,
        "minutes": minutes,
        "whole_compound": whole_compound,
    }
    result = ask("checkpoint", "trace", body)
    while result["next"] is not None:  # a busy window comes in pages of 1000
        more = ask("checkpoint", "trace", {**body, "after": result["next"]})
        result = {**more, "passages": result["passages"] + more["passages"]}
    if json_:
        return as_json(result)
    table(
        result["passages"],
        _PASSAGE_COLUMNS,
        title=f"{when(result['from'])} to {when(result['to'])}",
    )


@app.command()
def passages(
    gate: Annotated[str | None, typer.Option(help="only this gate")] = None,
    person: Annotated[str | None, typer.Option(help="only this person")] = None,
    limit: Limit = 20,
    json_: Json = False,
) -> None:
    """The newest entries of the entry/exit register."""
    body: dict[str, Any] = {"limit": limit}
    if gate:
        body["gate_id"] = gate
    if person:
        body["person_id"] = person
    result = ask("checkpoint", "passages", body)
    if json_:
        return as_json(result)
    table(result["passages"], _PASSAGE_COLUMNS, empty="no passages")


# --- screening, dispatch, notify ---------------------------------------------------------------
@app.command()
def cases(
    person: Annotated[str | None, typer.Option(help="only this person")] = None,
    limit: Limit = 20,
    json_: Json = False,
) -> None:
    """Screening's newest cases."""
    body: dict[str, Any] = {"limit": limit, **({"person_id": person} if person else {})}
    result = ask("screening", "cases", body)
    if json_:
        return as_json(result)
    table(
        result["cases"],
        [
            ("opened_at", "opened"),
            ("person_id", "person"),
            ("kind", "kind"),
            ("status", "status"),
            ("reason", "reason"),
        ],
        empty="no cases",
    )


@app.command()
def questionnaires(
    person: Annotated[str | None, typer.Option(help="only this person")] = None,
    follow_up: Annotated[
        str | None, typer.Option(help="only this follow-up: none, call_back, urgent_call_back")
    ] = None,
    limit: Limit = 20,
    json_: Json = False,
) -> None:
    """Screening's newest PHQ-9 / GAD-7 questionnaires: score, severity, follow-up."""
    body: dict[str, Any] = {"limit": limit}
    if person:
        body["person_id"] = person
    if follow_up:
        body["follow_up"] = follow_up
    result = ask("screening", "questionnaires.list", body)
    if json_:
        return as_json(result)
    table(
        result["submissions"],
        [
            ("received_at", "received"),
            ("person_id", "person"),
            ("instrument", "instrument"),
            ("score", "score"),
            ("severity", "severity"),
            ("follow_up", "follow-up"),
            ("submission_id", "submission"),
        ],
        empty="no questionnaires",
    )


@status_app.command("set")
def status_set(
    person: Annotated[str, typer.Argument(help="resident id")],
    status: Annotated[str, typer.Argument(help="e.g. home_quarantine (see `status list`)")],
    by: Annotated[str, typer.Option(help="who decides: a staff or grid worker id (a lab's name)")],
    reason: Annotated[str, typer.Option(help="why (recorded; every step back needs one)")],
    role: Annotated[
        str | None,
        typer.Option(help="grid_worker, community_doctor, secretary or lab (default: their one)"),
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(help="until (e.g. 2026-03-26T00:00+08:00)")
    ] = None,
) -> None:
    """Take a step of a person's health status (see `status transitions`); the gates enforce
    it at once when it holds them."""
    body: dict[str, Any] = {"person_id": person, "status": status, "by": by, "reason": reason}
    if role is not None:
        body["role"] = role
    if until is not None:
        body["until"] = (until if until.tzinfo else until.astimezone()).isoformat()
    result = ask("screening", "status.set", body)
    held = "held at the gate" if result["holds_at_gate"] else "free to pass"
    was = result.get("previous_status")
    step = f"{was} -> {result['status']}" if was and was != result["status"] else result["status"]
    stderr.print(f"{result['person_id']}: {step} ({held}; as {result.get('role') or '-'})")


@status_app.command("show")
def status_show(
    person: Annotated[str, typer.Argument(help="resident id")], json_: Json = False
) -> None:
    """A person's health status and its history."""
    result = ask("screening", "status.show", {"person_id": person})
    if json_:
        return as_json(result)
    table(
        result["history"],
        [
            ("at", "since"),
            ("from", "from"),
            ("to", "to"),
            ("by", "by"),
            ("role", "role"),
            ("reason", "reason"),
        ],
        title=f"{person}: {result['status']}",
        empty=f"{person}: {result['status']} (no decision recorded)",
    )


@status_app.command("list")
def status_list(json_: Json = False) -> None:
    """The health statuses screening knows, and which of them hold a person at the gate."""
    result = ask("screening", "status.list", {})
    if json_:
        return as_json(result)
    table(
        result["statuses"],
        [("status", "status"), ("holds_at_gate", "held at gate"), ("zh", "中文")],
    )


@status_app.command("transitions")
def status_transitions(
    from_: Annotated[str | None, typer.Option("--from", help="only the steps from this")] = None,
    json_: Json = False,
) -> None:
    """The health status machine: every allowed step, who may take it, which need a reason."""
    result = ask("screening", "status.transitions", {})
    if json_:
        return as_json(result)
    rows = [t for t in result["transitions"] if from_ in (None, t["from"])]
    table(
        [{**t, "back": "back: reason" if t["back"] else ""} for t in rows],
        [("from", "from"), ("to", "to"), ("roles", "who"), ("back", ""), ("means", "means")],
        empty=f"no step from {from_}",
    )


# --- close contacts, compounds (screening) ----------------------------------------------------
@contacts_app.command("proposed")
def contacts_proposed(
    grid: Annotated[str | None, typer.Option(help="only this grid's candidates")] = None,
    case: Annotated[str | None, typer.Option(help="only this confirmed case's")] = None,
    status: Annotated[
        str, typer.Option(help="proposed (still to decide), confirmed, rejected or all")
    ] = "proposed",
    json_: Json = False,
) -> None:
    """Close-contact candidates of confirmed cases, for a grid worker to confirm or reject."""
    body: dict[str, Any] = {"status": status}
    if grid:
        body["grid_id"] = grid
    if case:
        body["case_person_id"] = case
    result = ask("screening", "contacts.proposed", body)
    if json_:
        return as_json(result)
    table(
        result["proposals"],
        [
            ("case_person_id", "case"),
            ("candidate_id", "candidate"),
            ("household_id", "household"),
            ("grid_id", "grid"),
            ("reason", "reason"),
            ("status", "status"),
            ("decided_by", "by"),
            ("decision_reason", "why"),
        ],
        empty="no candidates",
    )


def _decide(op: str, case: str, candidate: str, by: str, reason: str) -> None:
    body = {"case_person_id": case, "candidate_id": candidate, "by": by, "reason": reason}
    result = ask("screening", op, body)
    why = f": {result['decision_reason']}" if result.get("decision_reason") else ""
    stderr.print(
        f"{result['candidate_id']} (contact of {result['case_person_id']}): "
        f"{result['status']} by {result['decided_by']}{why}"
    )


@contacts_app.command("confirm")
def contacts_confirm(
    case: Annotated[str, typer.Argument(help="the confirmed case's resident id")],
    candidate: Annotated[str, typer.Argument(help="the candidate's resident id")],
    by: Annotated[str, typer.Option(help="the grid worker's id")],
    reason: Annotated[str, typer.Option(help="a note (recorded)")] = "",
) -> None:
    """Confirm a candidate: they become a close contact (held at the gate at once)."""
    _decide("contacts.confirm", case, candidate, by, reason)


@contacts_app.command("reject")
def contacts_reject(
    case: Annotated[str, typer.Argument(help="the confirmed case's resident id")],
    candidate: Annotated[str, typer.Argument(help="the candidate's resident id")],
    by: Annotated[str, typer.Option(help="the grid worker's id")],
    reason: Annotated[str, typer.Option(help="why not a close contact (required)")],
) -> None:
    """Reject a candidate, with a reason (kept)."""
    _decide("contacts.reject", case, candidate, by, reason)


@compounds_app.command("show")
def compounds_show(
    compound: Annotated[str | None, typer.Argument(help="compound id (default: all)")] = None,
    json_: Json = False,
) -> None:
    """Each compound's level as screening decided it, its last new confirmed case, the days
    without one and whether it is epidemic-free (无疫小区)."""
    result = ask("screening", "compounds.show", {"compound_id": compound} if compound else {})
    if json_:
        return as_json(result)
    rows = [
        {
            **c,
            "free": f"since {when(c['epidemic_free_since'])}"
            if c["epidemic_free"]
            else (f"on {when(c['epidemic_free_on'])}" if c["epidemic_free_on"] else ""),
        }
        for c in result["compounds"]
    ]
    table(
        rows,
        [
            ("compound_id", "compound"),
            ("level", "level"),
            ("set_by", "set by"),
            ("last_case_at", "last case"),
            ("days_without_case", "days without"),
            ("free", "epidemic-free"),
            ("reason", "reason"),
        ],
    )


@compounds_app.command("level")
def compounds_level(
    compound: Annotated[str, typer.Argument(help="compound id")],
    level: Annotated[ControlLevel, typer.Argument(help="sealed | controlled | precaution")],
    by: Annotated[str, typer.Option(help="who decides (recorded)")],
    reason: Annotated[str, typer.Option(help="why (recorded)")],
) -> None:
    """Set a compound's level through screening (CompoundLevelChanged; the gates enforce it)."""
    result = ask(
        "screening",
        "compounds.level.set",
        {"compound_id": compound, "level": level.value, "by": by, "reason": reason},
    )
    stderr.print(f"{result['compound_id']}: {result['level']} (since {when(result['set_at'])})")


@app.command()
def tasks(
    assignee: Annotated[str | None, typer.Option(help="only this worker's")] = None,
    limit: Limit = 20,
    json_: Json = False,
) -> None:
    """Dispatch's newest field tasks."""
    body: dict[str, Any] = {"limit": limit, **({"assignee_id": assignee} if assignee else {})}
    result = ask("dispatch", "tasks", body)
    if json_:
        return as_json(result)
    table(
        result["tasks"],
        [
            ("created_at", "created"),
            ("kind", "kind"),
            ("person_id", "person"),
            ("household_id", "household"),  # a quarantine support's, a door alert's
            ("assignee_id", "worker"),
            ("due_by", "due by"),
            ("status", "status"),
        ],
        empty="no tasks",
    )


@app.command()
def deliveries(
    limit: Limit = 20,
    to: Annotated[str | None, typer.Option(help="one recipient's")] = None,
    json_: Json = False,
) -> None:
    """Notify's newest messages: to whom, how, in what state."""
    result = ask("notify", "deliveries", {"limit": limit, "recipient_id": to})
    if json_:
        return as_json(result)
    table(
        result["deliveries"],
        [
            ("created_at", "at"),
            ("recipient_id", "to"),
            ("template", "what"),
            ("channel", "via"),
            ("status", "status"),
            ("attempts", "tries"),
            ("alert_id", "alert"),
        ],
        empty="no deliveries",
    )


@app.command()
def message(
    notification_id: Annotated[str, typer.Argument(help="a message's id (deliveries --json)")],
    json_: Json = False,
) -> None:
    """One message: its text, its routes and its whole history (receipts included)."""
    result = ask("notify", "message", {"notification_id": notification_id})
    if json_:
        return as_json(result)
    stdout.print(f"to {result['recipient_name']} ({result['recipient_id']}), {result['status']}")
    stdout.print(result["body"], highlight=False, soft_wrap=True)
    table(
        result["history"],
        [("at", "at"), ("status", "status"), ("channel", "via"), ("detail", "detail")],
    )


@app.command()
def ack(
    alert_id: Annotated[str, typer.Argument(help="the id in brackets in the alert, e.g. K3XQ7M2A")],
    as_: Annotated[str, typer.Option("--as", help="your person id (you must have had it)")],
) -> None:
    """Acknowledge an alert, as a member of staff (what their app sends: the edge
    contract §5.1, staff.<person_id>.ack)."""

    async def go() -> bytes:
        nc = await client.connect()
        try:
            body = json.dumps({"alert_id": alert_id}).encode()
            return await client.request(nc, STAFF_ACK.format(person_id=as_), body)
        finally:
            await nc.close()

    try:
        reply = json.loads(asyncio.run(go()))
    except NoAnswer as exc:
        raise no_answer(exc) from None
    as_json(reply)
    if "error" in reply:
        raise typer.Exit(1)


@broadcast_app.command("start")
def broadcast_start(
    place: Annotated[str, typer.Argument(help="compound | building | grid | community")],
    place_id: Annotated[str, typer.Argument(help="its id")],
    template: Annotated[str, typer.Option(help="e.g. notice.text, notice.test_campaign")],
    param: Annotated[
        list[str] | None, typer.Option(help="a template parameter, name=value (repeat)")
    ] = None,
    priority: Annotated[str, typer.Option(help="urgent | normal | bulk")] = "normal",
    by: Annotated[str, typer.Option(help="who sends it")] = "office",
    wait: Annotated[bool, typer.Option(help="follow it with a progress bar")] = True,
) -> None:
    """Send a notice to every resident of a place, each in their language.

    It goes on (and resumes after a restart) whether or not you wait for it."""
    params: dict[str, Any] = {}
    for p in param or []:
        name, sep, value = p.partition("=")
        if not sep:
            raise fail(f"--param {p!r}: write name=value", 2)
        params[name.strip()] = value
    body = {"place": place, "place_id": place_id, "template": template, "params": params}
    started = ask("notify", "broadcast.start", {**body, "priority": priority, "by": by})
    bid = started["broadcast_id"]
    stderr.print(f"broadcast {bid} started")
    if wait:
        _follow(bid)


@broadcast_app.command("status")
def broadcast_status(
    broadcast_id: Annotated[str, typer.Argument()],
    follow: Annotated[bool, typer.Option(help="a progress bar until it is done")] = False,
    json_: Json = False,
) -> None:
    """How far a broadcast is."""
    if follow:
        return _follow(broadcast_id)
    result = ask("notify", "broadcast.status", {"broadcast_id": broadcast_id})
    if json_:
        return as_json(result)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result["counts"].items())) or "none yet"
    stdout.print(
        f"{broadcast_id}: {result['status']}, {result['recipients']} recipients; {counts}"
        + ("; done" if result["done"] else "")
    )


@broadcast_app.command("cancel")
def broadcast_cancel(broadcast_id: Annotated[str, typer.Argument()]) -> None:
    """Stop a broadcast: whoever has not had it yet will not."""
    result = ask("notify", "broadcast.cancel", {"broadcast_id": broadcast_id})
    stderr.print(f"broadcast {broadcast_id} cancelled; {result['cancelled']} not sent")


def _follow(broadcast_id: str) -> None:
    """A live progress bar of a broadcast (Ctrl-C stops watching, not the broadcast)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            console=stderr,
        ) as bar:
            task = bar.add_task(broadcast_id, total=None, note="")
            while True:
                st = ask("notify", "broadcast.status", {"broadcast_id": broadcast_id})
                counts = st["counts"]
                failed = counts.get("failed", 0)
                note = f"failed {failed}" if failed else ""
                total = st["recipients"] or None
                bar.update(task, total=total, completed=st["finished"], note=note)
                if st["done"]:
                    break
                time.sleep(0.5)
    except KeyboardInterrupt:
        stderr.print(
            f"stopped watching; the broadcast goes on: gridcare broadcast status {broadcast_id}"
            f" --follow, or gridcare broadcast cancel {broadcast_id}"
        )
        return
    stderr.print(f"broadcast {broadcast_id}: {st['status']}, {st['counts']}")


# --- every service ----------------------------------------------------------------------------
@app.command("dead-letters")
def dead_letters(
    service: Annotated[str, typer.Argument(help="checkpoint | screening | dispatch | notify")],
    replay: Annotated[int | None, typer.Option(help="republish this dead letter's message")] = None,
    limit: Limit = 50,
    json_: Json = False,
) -> None:
    """List a service's dead letters, or replay one to its original subject."""
    _service(service)
    if replay is not None:
        result = ask(service, "dead_letters.replay", {"id": replay})
        stderr.print(f"replayed dead letter {replay} to {result['subject']}")
        return
    result = ask(service, "dead_letters.list", {"limit": limit})
    if json_:
        return as_json(result)
    rows = [{**r, "reason": r["reason"][:200]} for r in result["dead_letters"]]
    table(
        rows,
        [
            ("id", "id"),
            ("created_at", "at"),
            ("consumer", "consumer"),
            ("deliveries", "tries"),
            ("reason", "reason"),
            ("replayed_at", "replayed"),
        ],
        empty=f"{service} has no dead letters",
    )


@app.command("outbox")
def outbox_rows(
    service: Annotated[str, typer.Argument(help="checkpoint | screening | dispatch | notify")],
    replay: Annotated[int | None, typer.Option(help="put this set-aside row back in line")] = None,
    limit: Limit = 50,
    json_: Json = False,
) -> None:
    """List the events a service's outbox set aside (it could not publish them), or put one
    back in line once the cause is fixed."""
    _service(service)
    if replay is not None:
        result = ask(service, "outbox.replay", {"id": replay})
        stderr.print(f"outbox row {replay} ({result['subject']}) is back in line")
        return
    result = ask(service, "outbox.list", {"limit": limit})
    if json_:
        return as_json(result)
    rows = [{**r, "reason": (r["reason"] or "")[:200]} for r in result["parked"]]
    table(
        rows,
        [
            ("id", "id"),
            ("parked_at", "set aside"),
            ("subject", "subject"),
            ("attempts", "tries"),
            ("reason", "reason"),
        ],
        empty=f"{service} has no outbox rows set aside",
    )


@app.command()
def health(
    service: Annotated[str | None, typer.Argument(help="one service (default: all)")] = None,
    json_: Json = False,
) -> None:
    """Each service's readiness, outbox backlog and dead letters; exit 1 if one is not
    ready or does not answer."""
    names = [_service(service)] if service else list(SERVICES)
    rows, ok = [], True
    for name in names:
        try:
            h = client.call(name, "health")
        except (Refused, NoAnswer) as exc:
            rows.append({"service": name, "ready": False, "problem": str(exc)})
            ok = False
            continue
        bad = [f"{k}: {v}" for k, v in h["checks"].items() if v != "ok"]
        ok = ok and h["ready"]
        rows.append({**h, "problem": "; ".join(bad)})
    if json_:
        as_json(rows)
    else:
        table(
            rows,
            [
                ("service", "service"),
                ("ready", "ready"),
                ("outbox_pending", "outbox"),
                ("outbox_parked", "set aside"),
                ("dead_letters_not_replayed", "dead letters"),
                ("uptime_s", "up (s)"),
                ("problem", "problem"),
            ],
        )
    if not ok:
        raise typer.Exit(1)


# --- quarantine: households at home, central sites (screening) ------------------------------
Role = Annotated[
    str | None,
    typer.Option(help="secretary | community_doctor | grid_worker (default: your one role)"),
]


def _until(until: datetime | None) -> dict[str, Any]:
    if until is None:
        return {}
    return {"until": (until if until.tzinfo else until.astimezone()).isoformat()}


def _members(result: dict[str, Any]) -> None:
    table(
        result["members"],
        [("person_id", "person"), ("status", "status"), ("changed", "changed")],
        title=f"{result['household_id']}: {result['status']} until {when(result['until'])}",
    )


@quarantine_app.command("start")
def quarantine_start(
    household: Annotated[str, typer.Argument(help="household id")],
    by: Annotated[str, typer.Option(help="your staff id (recorded)")],
    reason: Annotated[str, typer.Option(help="why (recorded)")],
    role: Role = None,
    until: Annotated[
        datetime | None, typer.Option(help="planned end (default: 14 local days)")
    ] = None,
) -> None:
    """Put every member of a household into home quarantine (held at the gates at once; a
    member confirmed, in hospital or at a central site keeps it)."""
    body = {"household_id": household, "by": by, "reason": reason, "role": role, **_until(until)}
    _members(ask("screening", "quarantine.household.start", body))


@quarantine_app.command("end")
def quarantine_end(
    household: Annotated[str, typer.Argument(help="household id")],
    by: Annotated[str, typer.Option(help="your staff id (recorded)")],
    reason: Annotated[str, typer.Option(help="why (recorded)")],
    role: Role = None,
) -> None:
    """End a household's quarantine: the members at home are released."""
    body = {"household_id": household, "by": by, "reason": reason, "role": role}
    _members(ask("screening", "quarantine.household.end", body))


@quarantine_app.command("list")
def quarantine_list(json_: Json = False) -> None:
    """The households in home quarantine and until when, the soonest to end first."""
    result = ask("screening", "quarantine.households", {})
    if json_:
        return as_json(result)
    rows = [
        {**h, "members": [f"{m['person_id']} {m['status']}" for m in h["members"]]}
        for h in result["households"]
    ]
    table(
        rows,
        [
            ("household_id", "household"),
            ("started_at", "since"),
            ("until", "until"),
            ("days_left", "days left"),
            ("members", "members"),
            ("reason", "reason"),
        ],
        empty="no household in home quarantine",
    )


@sites_app.command("add")
def sites_add(
    site: Annotated[str, typer.Argument(help="site id, e.g. HOTEL-1")],
    name: Annotated[str, typer.Option(help="its name")],
    community: Annotated[str, typer.Option(help="community id")],
    by: Annotated[str, typer.Option(help="who adds it (recorded)")],
    rooms: Annotated[int | None, typer.Option(help="this many rooms, numbered 1..n")] = None,
    room: Annotated[list[str] | None, typer.Option(help="a room by name (repeat)")] = None,
    address: Annotated[str, typer.Option(help="its address")] = "",
) -> None:
    """A central quarantine site (a requisitioned hotel): one person a room."""
    body: dict[str, Any] = {
        "site_id": site, "name": name, "address": address, "community_id": community, "by": by,
    }  # fmt: skip
    if room:
        body["rooms"] = room
    if rooms is not None:
        body["room_count"] = rooms
    result = ask("screening", "sites.add", body)
    stderr.print(f"site {result['site_id']}: {result['rooms']} rooms")


@sites_app.command("add-rooms")
def sites_add_rooms(
    site: Annotated[str, typer.Argument(help="site id")],
    count: Annotated[int | None, typer.Option(help="this many, numbered on")] = None,
    room: Annotated[list[str] | None, typer.Option(help="a room by name (repeat)")] = None,
) -> None:
    """More rooms for a site."""
    body: dict[str, Any] = {"site_id": site}
    if room:
        body["rooms"] = room
    if count is not None:
        body["count"] = count
    result = ask("screening", "sites.rooms.add", body)
    stderr.print(f"site {site}: added {', '.join(result['added'])}; {result['rooms']} rooms")


def _people_file(path: Path) -> list[str]:
    """One person id a line (the first column of a CSV; a ``person_id`` header, blank lines
    and ``#`` comments skipped); every bad line named as file:line."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise fail(f"{path}: {exc.strerror or exc}", 2) from None
    people, bad = [], []
    for n, line in enumerate(lines, start=1):
        value = line.split(",", 1)[0].strip().strip('"')
        if not value or value.startswith("#") or (n == 1 and value.lower() == "person_id"):
            continue
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
            bad.append(f"{path}:{n}: {value!r} is not a person id")
        elif value in people:
            bad.append(f"{path}:{n}: {value} is named twice")
        else:
            people.append(value)
    if bad:
        raise fail("\n".join(bad), 2)
    if not people:
        raise fail(f"{path}: no person ids", 2)
    return people


@sites_app.command("intake")
def sites_intake(
    site: Annotated[str, typer.Argument(help="site id")],
    file: Annotated[Path, typer.Argument(help="a CSV file: a person id a line")],
    by: Annotated[str, typer.Option(help="your staff id (recorded)")],
    reason: Annotated[str, typer.Option(help="why (recorded)")],
    role: Role = None,
    intake_id: Annotated[
        str | None, typer.Option(help="default: from the site and the file's people")
    ] = None,
    json_: Json = False,
) -> None:
    """Take a batch into a site, all or nothing (each a room and central quarantine); the
    same file again changes nothing."""
    people = _people_file(file)
    digest = hashlib.sha256(f"{site}\n{chr(10).join(sorted(people))}".encode()).hexdigest()
    body = {
        "site_id": site, "people": people, "by": by, "reason": reason, "role": role,
        "intake_id": intake_id or f"{site}-{digest[:16]}",
    }  # fmt: skip
    result = ask("screening", "sites.intake", body)
    if json_:
        return as_json(result)
    table(result["assigned"], [("person_id", "person"), ("room_id", "room")])
    stderr.print(
        f"{site}: {len(result['assigned'])} taken in (intake {result['intake_id']}); "
        f"{result['free']} rooms free",
        soft_wrap=True,
    )


@sites_app.command("transfer")
def sites_transfer(
    from_site: Annotated[str, typer.Argument(help="from this site")],
    to_site: Annotated[str, typer.Argument(help="to this site")],
    people: Annotated[list[str], typer.Argument(help="person ids")],
    by: Annotated[str, typer.Option(help="your staff id (recorded)")],
    reason: Annotated[str, typer.Option(help="why (recorded)")],
) -> None:
    """Move people to another site, all or nothing."""
    body = {
        "from_site": from_site, "to_site": to_site, "people": people, "by": by, "reason": reason,
    }  # fmt: skip
    result = ask("screening", "sites.transfer", body)
    table(result["moved"], [("person_id", "person"), ("room_id", f"room at {to_site}")])


@sites_app.command("discharge")
def sites_discharge(
    site: Annotated[str, typer.Argument(help="site id")],
    people: Annotated[list[str], typer.Argument(help="person ids")],
    to: Annotated[str, typer.Option(help="released | home_quarantine | normal | in_hospital")],
    by: Annotated[str, typer.Option(help="your staff id (recorded)")],
    reason: Annotated[str, typer.Option(help="why (recorded)")],
    role: Role = None,
) -> None:
    """People leave a site: their rooms are freed, each to the status given."""
    body = {
        "site_id": site, "people": people, "to": to, "by": by, "reason": reason, "role": role,
    }  # fmt: skip
    result = ask("screening", "sites.discharge", body)
    table(result["discharged"], [("person_id", "person"), ("status", "status")])


@sites_app.command("occupancy")
def sites_occupancy(
    site: Annotated[str | None, typer.Argument(help="one site (default: all)")] = None,
    who: Annotated[bool, typer.Option("--who", help="who is in which room")] = False,
    json_: Json = False,
) -> None:
    """Each site's rooms, occupied and free (and, with --who, who is in which room)."""
    result = ask("screening", "sites.occupancy", {"site_id": site} if site else {})
    if json_:
        return as_json(result)
    table(
        result["sites"],
        [
            ("site_id", "site"),
            ("name", "name"),
            ("rooms", "rooms"),
            ("occupied", "occupied"),
            ("free", "free"),
        ],
        empty="no quarantine sites",
    )
    if who:
        for s in result["sites"]:
            table(
                s["occupants"],
                [("room_id", "room"), ("person_id", "person"), ("since", "since")],
                title=s["site_id"],
                empty=f"{s['site_id']}: nobody",
            )


# --- test campaigns (screening) ----------------------------------------------------------------
campaigns_app = typer.Typer(help="Nucleic-acid test campaigns (screening).", no_args_is_help=True)
app.add_typer(campaigns_app, name="campaigns")
#: A lab's file goes in parts of at most this many bytes (one NATS message is 1 MB at most).
CAMPAIGN_PART_BYTES = 512 * 1024


def _moment(value: str, option: str) -> str:
    """RFC 3339 for the API: as given with an offset, else on this computer's clock."""
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise fail(
            f"{option} {value!r}: write e.g. 2026-03-12T08:00+08:00 or 2026-03-12 08:00", 2
        ) from None
    return (t if t.tzinfo else t.astimezone()).isoformat()


def _counts_line(counts: dict[str, int]) -> str:
    return (
        f"due {counts['due']}: tested {counts['tested']} (positive {counts['positive']}, "
        f"negative {counts['negative']}, pending {counts['pending']}), not tested "
        f"{counts['not_tested']}; excluded {counts['excluded']}, joined late "
        f"{counts['joined_late']}"
    )


@campaigns_app.command("start")
def campaigns_start(
    place_kind: Annotated[str, typer.Argument(help="compound | building")],
    place_id: Annotated[str, typer.Argument(help="its id")],
    starts_at: Annotated[str, typer.Option(help="e.g. 2026-03-12T08:00+08:00")],
    ends_at: Annotated[str, typer.Option(help="e.g. 2026-03-12T18:00+08:00")],
    site: Annotated[str, typer.Option(help="where people go to be tested")],
    by: Annotated[str, typer.Option(help="who starts it (recorded)")],
    campaign_id: Annotated[
        str | None, typer.Option("--id", help="default: <place>-<local start YYYYMMDD-HHMM>")
    ] = None,
    name: Annotated[str, typer.Option(help="how notices name the place")] = "",
    door_call_after: Annotated[
        int, typer.Option(help="minutes after the reminder until the door calls")
    ] = 120,
    json_: Json = False,
) -> None:
    """Start a campaign: every resident of the place now is due (not those in hospital or
    central quarantine, who are tested there)."""
    body: dict[str, Any] = {
        "place_kind": place_kind,
        "place_id": place_id,
        "starts_at": _moment(starts_at, "--starts-at"),
        "ends_at": _moment(ends_at, "--ends-at"),
        "site": site,
        "by": by,
        "place_name": name,
        "door_call_after_min": door_call_after,
        **({"campaign_id": campaign_id} if campaign_id else {}),
    }
    result = ask("screening", "campaigns.start", body)
    if json_:
        return as_json(result)
    new = "started" if result["new"] else "exists already"
    stderr.print(f"campaign {result['campaign_id']} {new}: {_counts_line(result['counts'])}")


@campaigns_app.command("list")
def campaigns_list(limit: Limit = 20, json_: Json = False) -> None:
    """The newest campaigns."""
    result = ask("screening", "campaigns.list", {"limit": limit})
    if json_:
        return as_json(result)
    table(
        result["campaigns"],
        [
            ("campaign_id", "campaign"),
            ("place_kind", "of"),
            ("place_id", "place"),
            ("starts_at", "from"),
            ("ends_at", "until"),
            ("site", "site"),
        ],
        empty="no campaigns",
    )


@campaigns_app.command("show")
def campaigns_show(campaign_id: Annotated[str, typer.Argument()], json_: Json = False) -> None:
    """A campaign's counts: due, tested (positive, negative, pending), not tested."""
    result = ask("screening", "campaigns.show", {"campaign_id": campaign_id})
    if json_:
        return as_json(result)
    stdout.print(
        f"{result['campaign_id']}: {result['place_kind']} {result['place_id']} "
        f"({result['place_name']}) at {result['site']}, {when(result['starts_at'])} to "
        f"{when(result['ends_at'])}"
    )
    stdout.print(_counts_line(result["counts"]))
    rounds = result["rounds"]
    stdout.print(
        "reminders: "
        + (
            "; ".join(
                f"{'residents' if n == '1' else 'door calls'} {when(at)}"
                for n, at in rounds.items()
            )
            or "none yet"
        )
    )


@campaigns_app.command("untested")
def campaigns_untested(
    campaign_id: Annotated[str, typer.Argument()],
    building: Annotated[str | None, typer.Option(help="only this building's")] = None,
    limit: Annotated[int, typer.Option(help="list at most this many")] = 2000,
    json_: Json = False,
) -> None:
    """Who is due and not tested yet (pending: only invalid samples), by building and
    household."""
    body: dict[str, Any] = {"campaign_id": campaign_id, "limit": limit}
    if building:
        body["building_id"] = building
    result = ask("screening", "campaigns.untested", body)
    if json_:
        return as_json(result)
    rows = [
        {"building_id": b["building_id"], "household_id": h["household_id"], **p}
        for b in result["buildings"]
        for h in b["households"]
        for p in h["people"]
    ]
    table(
        rows,
        [
            ("building_id", "building"),
            ("household_id", "household"),
            ("person_id", "person"),
            ("outcome", "outcome"),
        ],
        title=f"{campaign_id}: {result['count']} not tested"
        + (f" (the first {result['listed']} listed)" if result["listed"] < result["count"] else ""),
        empty=f"{campaign_id}: everyone due has been tested",
    )


def _results_reply(result: dict[str, Any]) -> None:
    stderr.print(
        f"{result['recorded']} recorded, {result['already']} recorded already"
        + (f", {len(result['joined_late'])} joined late" if result["joined_late"] else "")
    )
    for p in result["positives"]:
        quarantined = "household quarantined" if p.get("household_quarantined") else ""
        stderr.print(
            f"[red]positive[/] {p['person_id']} ({p['sample_id']}): {p['status']}"
            f"{', ' + p['household_id'] + ' ' + quarantined if quarantined else ''}"
        )
    for p in result["not_changed"]:
        stderr.print(f"[yellow]positive[/] {p['person_id']}: status not changed ({p['refused']})")


@campaigns_app.command("add")
def campaigns_add(
    campaign_id: Annotated[str, typer.Argument()],
    sample: Annotated[str, typer.Option(help="the sample's id (a result is kept once)")],
    person: Annotated[str, typer.Option(help="resident id")],
    result: Annotated[str, typer.Option(help="positive | negative | invalid")],
    lab: Annotated[str, typer.Option(help="the lab")],
    tested_at: Annotated[str, typer.Option(help="when sampled (default: now)")] = "",
    json_: Json = False,
) -> None:
    """Record one result (a positive confirms the person and quarantines the household)."""
    at = _moment(tested_at, "--tested-at") if tested_at else datetime.now().astimezone().isoformat()
    one = {"sample_id": sample, "person_id": person, "result": result, "tested_at": at, "lab": lab}
    body = {"campaign_id": campaign_id, "results": [one]}
    result = ask("screening", "campaigns.results.add", body)
    if json_:
        return as_json(result)
    _results_reply(result)


@campaigns_app.command("import")
def campaigns_import(
    campaign_id: Annotated[str, typer.Argument()],
    file: Annotated[Path, typer.Argument(help="the lab's CSV: sample_id,person_id,result,...")],
    json_: Json = False,
) -> None:
    """Import a lab's CSV file (columns sample_id, person_id, result, tested_at, lab): all or
    nothing, every bad line named as file:line. A large file goes in parts (a progress bar),
    then is checked and written at once."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise fail(f"{file}: {exc.strerror}", 2) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(f"{file}: not UTF-8 text (byte {exc.start})", 2) from None
    body: dict[str, Any] = {"campaign_id": campaign_id, "file_name": str(file)}
    try:
        if len(data) <= CAMPAIGN_PART_BYTES:
            body["csv"] = text
        else:
            body.update(_upload(text))
        with stderr.status(f"checking and recording {file}"):
            result = asyncio.run(_long_call("campaigns.results.import", body))
    except Refused as exc:
        if exc.code != "results_refused":
            raise refused(exc) from None
        for d in exc.detail:
            stderr.print(d["error"], highlight=False, soft_wrap=True, markup=False)
        raise fail(f"{file}: nothing imported ({len(exc.detail)} faults)") from None
    except NoAnswer as exc:
        raise no_answer(exc) from None
    if json_:
        return as_json(result)
    _results_reply(result)


def _upload(text: str) -> dict[str, Any]:
    """The file in parts cut at line ends, each sent as it is, with a progress bar."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    parts, cur, size = [], [], 0
    for line in text.splitlines(keepends=True):
        n = len(line.encode())
        if cur and size + n > CAMPAIGN_PART_BYTES:
            parts.append("".join(cur))
            cur, size = [], 0
        cur.append(line)
        size += n
    if cur:
        parts.append("".join(cur))
    upload_id = f"U-{os.urandom(12).hex()}"

    async def send(bar: Progress, task: Any) -> None:
        nc = await client.connect()
        try:
            for i, part in enumerate(parts, 1):
                body = {"upload_id": upload_id, "part": i, "text": part}
                raw = await client.request(
                    nc, "api.screening.campaigns.results.upload", json.dumps(body).encode()
                )
                reply = json.loads(raw)
                if "error" in reply:
                    raise Refused(reply["error"]["code"], reply["error"].get("detail") or [])
                bar.update(task, advance=len(part.encode()))
        finally:
            await nc.close()

    with Progress(TextColumn("sending"), BarColumn(), DownloadColumn(), console=stderr) as bar:
        task = bar.add_task("upload", total=sum(len(p.encode()) for p in parts))
        asyncio.run(send(bar, task))
    return {"upload_id": upload_id, "parts": len(parts)}


async def _long_call(op: str, body: dict[str, Any]) -> Any:
    """An operation that may take a while (a whole file checked and written, a reminder to
    each of 20,000 residents): up to 5 minutes for the answer."""
    nc = await client.connect()
    try:
        raw = await client.request(nc, f"api.screening.{op}", json.dumps(body).encode(), wait_s=300)
    finally:
        await nc.close()
    reply = json.loads(raw)
    if "error" in reply:
        raise Refused(reply["error"]["code"], reply["error"].get("detail") or [])
    return reply["result"]


@campaigns_app.command("remind")
def campaigns_remind(campaign_id: Annotated[str, typer.Argument()]) -> None:
    """The reminder round due: each untested resident first, then (after the campaign's
    door-call delay) their grid workers, to call at the door."""
    try:
        with stderr.status(f"{campaign_id}: the reminder round due"):
            result = asyncio.run(_long_call("campaigns.remind", {"campaign_id": campaign_id}))
    except Refused as exc:
        raise refused(exc) from None
    except NoAnswer as exc:
        raise no_answer(exc) from None
    if result["round"] is None:
        stderr.print(f"{campaign_id}: no reminder due ({result['note']})")
    elif result["round"] == 1:
        stderr.print(f"{campaign_id}: {result['requests']} residents reminded")
    else:
        grids = ", ".join(
            f"{g['grid_id'] or 'no grid'} {g['households']} households" for g in result["grids"]
        )
        stderr.print(f"{campaign_id}: door calls asked of {result['requests']}: {grids}")


# --- the office's queries (screening) ----------------------------------------------------------
_COUNT_COLUMNS = [
    ("compound_id", "compound"),
    ("residents", "residents"),
    ("confirmed", "confirmed"),
    ("suspected", "suspected"),
    ("fever_unexcluded", "fever n.e."),
    ("close_contact", "close c."),
    ("four_categories", "4 cat."),
    ("symptomatic_follow_up", "sympt."),
    ("home_quarantine", "home q."),
    ("central_quarantine", "central q."),
    ("in_hospital", "hospital"),
    ("recovered_today", "recovered"),
    ("released_today", "released"),
]


@app.command()
def counts(
    community: Annotated[str | None, typer.Option(help="only this community")] = None,
    day: Annotated[
        str | None, typer.Option(help="a past local day, YYYY-MM-DD (default: today)")
    ] = None,
    json_: Json = False,
) -> None:
    """The four categories (四类人员: confirmed, suspected, fever not excluded, close
    contacts) per compound, with follow-up, quarantine, hospital, and who was recovered or
    released that day (screening, on the community's clock)."""
    body: dict[str, Any] = {}
    if community:
        body["community_id"] = community
    if day:
        body["day"] = day
    result = ask("screening", "office.counts", body)
    if json_:
        return as_json(result)
    rows = result["compounds"]
    days = sorted({r["day"] for r in rows})
    title = f"{', '.join(days)}, as of {when(rows[0]['as_of'])}" if rows else None
    table(
        [*rows, {**result["totals"], "compound_id": "total"}] if rows else [],
        _COUNT_COLUMNS,
        title=title,
        empty="no compounds",
    )


@app.command()
def overdue(
    kind: Annotated[str, typer.Argument(help="checkin or test")],
    community: Annotated[str | None, typer.Option(help="only this community")] = None,
    compound: Annotated[str | None, typer.Option(help="only this compound")] = None,
    grid: Annotated[str | None, typer.Option(help="only this grid")] = None,
    min_days: Annotated[int, typer.Option(help="check-ins: at least this many days missed")] = 1,
    limit: Annotated[int, typer.Option(help="at most this many people")] = 1000,
    json_: Json = False,
) -> None:
    """Who is overdue for a check-in (none today after the reminder time, or days missed)
    or a test (untested in a running campaign), with their grid worker."""
    if kind not in ("checkin", "test"):
        raise fail(f"kind {kind!r}: checkin or test", 2)
    body: dict[str, Any] = {"kind": kind, "min_days": min_days, "limit": limit}
    for key, value in (("community_id", community), ("compound_id", compound), ("grid_id", grid)):
        if value:
            body[key] = value
    result = ask("screening", "office.overdue", body)
    if json_:
        return as_json(result)
    if kind == "checkin":
        notes = [
            f"{c['community_id']} {c['day']}: reminder at {c['reminder_at']}"
            + ("" if c["reminder_passed"] else " (not yet: only missed days count)")
            for c in result["communities"]
        ]
        rows = [
            {**p, "missed": "never" if p["missed_days"] is None else p["missed_days"]}
            for p in result["people"]
        ]
        columns = [
            ("person_id", "person"),
            ("name", "name"),
            ("household_id", "household"),
            ("compound_id", "compound"),
            ("grid_worker", "grid worker"),
            ("last_checkin_day", "last check-in"),
            ("missed", "missed days"),
            ("reminded_today", "reminded"),
            ("door_visit_requested", "door visit asked"),
            ("status", "status"),
        ]
    else:
        notes = [
            f"{c['campaign_id']} ({c['place_kind']} {c['place_id']}, until "
            f"{when(c['ends_at'])}): {c['untested']} untested"
            for c in result["campaigns"]
        ] or ["no campaign running"]
        rows = result["people"]
        columns = [
            ("person_id", "person"),
            ("household_id", "household"),
            ("compound_id", "compound"),
            ("grid_worker", "grid worker"),
            ("campaign_id", "campaign"),
            ("outcome", "outcome"),
            ("status", "status"),
        ]
    for note in notes:
        stderr.print(note, highlight=False)
    table(rows, columns, title=f"{result['count']} overdue", empty="nobody is overdue")
    if result["truncated"]:
        stderr.print(f"more than {limit}: use --limit or a filter", highlight=False)


@app.command()
def timeline(
    person: Annotated[str, typer.Argument(help="resident id")],
    since: Annotated[
        str | None, typer.Option(help="from this time on, e.g. 2026-03-12 or 2026-03-12T08:00")
    ] = None,
    json_: Json = False,
) -> None:
    """One resident's check-ins, door visits, questionnaires, tests, status steps,
    quarantine, site stays, close-contact proposals and gate passages, oldest first."""
    body: dict[str, Any] = {"person_id": person}
    if since:
        body["since"] = _moment(since, "--since")
    result = ask("screening", "office.timeline", body)
    if json_:
        return as_json(result)
    title = f"{person} {result.get('name') or ''}: {result['status']}".replace("  ", " ")
    table(
        result["entries"],
        [("at", "when"), ("kind", "what"), ("summary", "")],
        title=title,
        empty=f"nothing recorded about {person}",
    )
    if result["passages_unavailable"]:
        stderr.print(
            "[yellow]gate passages not shown: the checkpoint's register did not answer "
            f"({result.get('passages_error', '')})[/]",
            highlight=False,
        )


# --- sink -----------------------------------------------------------------------------------
@app.command()
def sink(port: Annotated[int, typer.Option(help="port to listen on")] = SINK_PORT) -> None:
    """A local chat-webhook sink that prints every alert posted to it (for trying gridcare
    without a real chat group; `gridcare run` starts one). The sample points at 8099."""
    s = WebhookSink(port=port, echo=True).start()
    stderr.print(f"listening on http://127.0.0.1:{s.port}/ — Ctrl-C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        s.stop()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
