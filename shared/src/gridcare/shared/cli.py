"""The ``gridcare`` command: what the community office and ops type.

gridcare import FOLDER      check and publish reference data (CSV files)
gridcare run                start NATS (embedded) and the four services; Ctrl-C stops
gridcare scan ...           send one gate scan, as a gate device would, and show the reply
gridcare sink               a local chat-webhook sink that prints what it gets
gridcare show SERVICE TABLE show the newest rows of a service's table
gridcare dead-letters ...   list or replay what a service gave up on
gridcare db upgrade|revision  migrations
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import sys
import time
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated

import nats
import sqlalchemy as sa
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from . import refdata
from .devrun import SERVICES, NatsServer, ServiceProcess, WebhookSink, port_open
from .envelope import Envelope
from .events import CommunityPolicy, ControlLevel, ControlLevelSet
from .natsconn import connect_options, ensure_streams
from .settings import DEFAULT_HTTP_PORTS, Settings
from .store import Store, alembic_config

app = typer.Typer(
    help="gridcare: run a residential community through an epidemic.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database migrations of a service's store.", no_args_is_help=True)
app.add_typer(db_app, name="db")
policy_app = typer.Typer(help="Community gate policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
level_app = typer.Typer(help="Compound control levels.", no_args_is_help=True)
app.add_typer(level_app, name="level")
permit_app = typer.Typer(help="Outing permits.", no_args_is_help=True)
app.add_typer(permit_app, name="permit")
console = Console(stderr=True)
stdout = Console()

EMBEDDED_NATS_PORT = int(os.environ.get("GRIDCARE_EMBEDDED_NATS_PORT", "14222"))
ServiceName = Annotated[str, typer.Argument(help="checkpoint | screening | dispatch | notify")]


def _service_module(name: str, sub: str = "tables"):
    if name not in SERVICES:
        console.print(f"[red]unknown service {name!r}[/]; one of: {', '.join(SERVICES)}")
        raise typer.Exit(2)
    return importlib.import_module(f"gridcare.{name}.{sub}")


# --- import ---------------------------------------------------------------------------------
@app.command("import")
def import_(
    folder: Annotated[Path, typer.Argument(help="folder with compounds.csv, residents.csv, ...")],
    check: Annotated[bool, typer.Option("--check", help="only check; publish nothing")] = False,
) -> None:
    """Check the office's CSV files and publish them as reference data (all or nothing)."""
    data = refdata.load(folder)
    for p in data.problems:
        console.print(f"[red]{p}[/]", highlight=False, soft_wrap=True)
    if data.problems:
        console.print(f"[red]{len(data.problems)} problem(s); nothing was imported.[/]")
        raise typer.Exit(1)
    counts = ", ".join(f"{len(rows)} {m.KIND}s" for m, rows in data.entities.items())
    console.print(f"checked: {counts}")
    if check:
        return
    settings = Settings()

    async def go() -> str:
        nc = await nats.connect(
            **{**connect_options(settings, "gridcare-import"), "max_reconnect_attempts": 3}
        )
        try:
            js = nc.jetstream()
            await ensure_streams(js, settings)
            with Progress(
                TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), console=console
            ) as bar:
                task = bar.add_task("publish", total=data.count())
                return await refdata.publish(js, data, lambda n: bar.advance(task, n))
        finally:
            await nc.close()

    try:
        import_id = asyncio.run(go())
    except Exception as exc:
        console.print(
            f"[red]publishing failed: {exc!r}[/]\nRun the same import again: "
            "rows already published are simply applied again."
        )
        raise typer.Exit(1) from None
    console.print(f"imported {data.count()} rows (import {import_id})")


# --- run ------------------------------------------------------------------------------------
@app.command()
def run(
    var: Annotated[Path, typer.Option(help="data and logs")] = Path("var"),
) -> None:
    """Start the whole system: embedded NATS (unless GRIDCARE_NATS_URL/NATS_URL is set) and
    the four services, each its own process. Ctrl-C stops everything cleanly."""
    var = var.resolve()
    logs = var / "log"
    env = {"GRIDCARE_VAR_DIR": str(var)}
    external = os.environ.get("GRIDCARE_NATS_URL") or os.environ.get("NATS_URL")
    server = None
    if external:
        env["GRIDCARE_NATS_URL"] = external
        console.print(f"NATS: {external} (external)")
    else:
        if port_open("127.0.0.1", EMBEDDED_NATS_PORT):
            console.print(
                f"[red]port {EMBEDDED_NATS_PORT} is taken[/]: is gridcare already "
                "running? Set GRIDCARE_EMBEDDED_NATS_PORT to use another."
            )
            raise typer.Exit(1)
        server = NatsServer(
            store_dir=var / "nats",
            port=EMBEDDED_NATS_PORT,
            monitor_port=EMBEDDED_NATS_PORT + 1,
            sync_interval=os.environ.get("GRIDCARE_NATS_SYNC_INTERVAL", "always"),
            server_name="gridcare-embedded",
            log_file=logs / "nats-server.log",
        )
        logs.mkdir(parents=True, exist_ok=True)
        server.start()
        env["GRIDCARE_NATS_URL"] = server.url
        console.print(f"NATS: {server.url} (embedded, JetStream data in {var / 'nats'})")

    procs = [
        ServiceProcess(
            name,
            env,
            logs / f"{name}.log",
            int(os.environ.get(f"GRIDCARE_{name.upper()}_HTTP_PORT", DEFAULT_HTTP_PORTS[name])),
        )
        for name in SERVICES
    ]

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # Ctrl-C and SIGTERM both stop everything, any time
    signal.signal(signal.SIGINT, stop)
    try:
        for p in procs:
            if port_open("127.0.0.1", p.http_port):
                raise RuntimeError(f"HTTP port {p.http_port} for {p.name} is taken")
            p.start()
        with console.status("waiting for the services to be ready…"):
            for p in procs:
                p.wait_ready(120)
        console.print("[green]gridcare is running[/] (Ctrl-C to stop)")
        for p in procs:
            base = f"http://127.0.0.1:{p.http_port}"
            console.print(
                f"  {p.name:<11} pid {p.proc.pid:<7} metrics {base}/metrics  "
                f"ready {base}/readyz  log {p.log_file}",
                highlight=False,
                soft_wrap=True,
            )
        if server:
            console.print(
                f"nats-server log: {server.log_file}; monitoring: "
                f"http://127.0.0.1:{server.monitor_port}/"
            )
        while True:  # supervise: a service that dies is restarted
            time.sleep(0.5)
            for p in procs:
                if not p.alive:
                    console.print(
                        f"[yellow]{p.name} exited ({p.proc.returncode}); "
                        f"restarting — see {p.log_file}[/]"
                    )
                    time.sleep(1)
                    p.start()
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        console.print("stopping…")
        for p in procs:
            if p.alive:
                p.proc.send_signal(signal.SIGTERM)
        for p in procs:
            p.stop()
        if server:
            server.stop()
        console.print("stopped.")


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
    """Send one gate scan as a device would (CONTRACT.md §1) and print the reply."""
    settings = Settings()
    body = (
        raw.encode()
        if raw
        else json.dumps(
            {
                "scan_id": scan_id or f"{gate}-{int(time.time() * 1000)}",
                "gate_id": gate,
                "direction": direction,
                "person_id": person,
                "scanned_at": datetime.now(timezone(timedelta(hours=8))).isoformat(
                    timespec="seconds"
                ),
                "temperature_c": temp,
                "mask": mask,
                "health_code": None if code == "none" else code,
            }
        ).encode()
    )

    async def go() -> bytes:
        nc = await nats.connect(
            **{**connect_options(settings, "gridcare-cli"), "max_reconnect_attempts": 1}
        )
        try:
            return (await nc.request(f"gate.{gate}.scan", body, timeout=5)).data
        finally:
            await nc.close()

    try:
        reply = asyncio.run(go())
    except Exception as exc:
        console.print(f"[red]no reply: {exc!r}[/]")
        raise typer.Exit(1) from None
    stdout.print_json(reply.decode())


# --- office and duty staff: policy, levels, permits, register ------------------------------
async def _publish_refdata(settings: Settings, entity) -> None:
    nc = await nats.connect(
        **{**connect_options(settings, "gridcare-cli"), "max_reconnect_attempts": 1}
    )
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        env = Envelope.wrap(entity, source="gridcare-cli")
        await js.publish(entity.subject(), env.to_bytes(), headers=env.headers(), timeout=10)
    finally:
        await nc.close()


def _publish_or_exit(entity) -> None:
    try:
        asyncio.run(_publish_refdata(Settings(), entity))
    except Exception as exc:
        console.print(f"[red]could not publish: {exc!r}[/]")
        raise typer.Exit(1) from None


@policy_app.command("apply")
def policy_apply(
    file: Annotated[Path, typer.Argument(help="a TOML file: see docs/policy.md")],
) -> None:
    """Set a community's gate policy (takes effect at every gate at once, no restart)."""
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
        unknown = sorted(set(raw) - set(CommunityPolicy.model_fields))
        if unknown:  # a typo must not silently leave a default in force
            console.print(f"[red]{file}: unknown setting(s): {', '.join(unknown)}[/]")
            raise typer.Exit(1)
        policy = CommunityPolicy.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        console.print(f"[red]{file}: {exc}[/]")
        raise typer.Exit(1) from None
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"])
            console.print(f"[red]{file}: {loc}: {err['msg']}[/]")
        raise typer.Exit(1) from None
    _publish_or_exit(policy)
    console.print(f"policy of {policy.community_id} applied")


@level_app.command("set")
def level_set(
    compound: Annotated[str, typer.Argument(help="compound id")],
    level: Annotated[ControlLevel, typer.Argument(help="sealed | controlled | precaution")],
    by: Annotated[str, typer.Option(help="who decides (recorded)")],
    reason: Annotated[str, typer.Option(help="why (recorded)")] = "",
) -> None:
    """Set a compound's control level (ops); takes effect at its gates at once."""
    try:
        ev = ControlLevelSet(
            compound_id=compound, level=level, set_by=by, reason=reason, set_at=datetime.now(UTC)
        )
    except ValidationError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    _publish_or_exit(ev)
    console.print(f"{compound}: {level.value}")


def _checkpoint_api(op: str, body: dict) -> None:
    settings = Settings()

    async def go() -> bytes:
        nc = await nats.connect(
            **{**connect_options(settings, "gridcare-cli"), "max_reconnect_attempts": 1}
        )
        try:
            msg = await nc.request(f"api.checkpoint.{op}", json.dumps(body).encode(), timeout=10)
            return msg.data
        finally:
            await nc.close()

    try:
        reply = json.loads(asyncio.run(go()))
    except Exception as exc:
        console.print(f"[red]no answer from the checkpoint: {exc!r}[/]")
        raise typer.Exit(1) from None
    stdout.print_json(data=reply)
    if "error" in reply:
        raise typer.Exit(1)


@permit_app.command("issue")
def permit_issue(
    holder: Annotated[str, typer.Option(help="resident id")],
    until: Annotated[datetime, typer.Option(help="valid until (e.g. 2026-03-14T18:00+08:00)")],
    by: Annotated[str, typer.Option(help="who issues it")],
    kind: Annotated[str, typer.Option(help="outing | emergency | medical")] = "outing",
    uses: Annotated[int, typer.Option(help="exits allowed")] = 1,
    return_within_h: Annotated[float | None, typer.Option(help="hours to come back")] = None,
) -> None:
    """Issue an outing (or emergency / medical) permit; the household quota applies."""
    if until.tzinfo is None:
        raise typer.BadParameter("give an offset, e.g. +08:00", param_hint="--until")
    _checkpoint_api(
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


@app.command()
def override(
    gate: Annotated[str, typer.Option(help="gate id")],
    scan_id: Annotated[str, typer.Option(help="the denied scan")],
    staff: Annotated[str, typer.Option(help="duty staff id")],
    reason: Annotated[str, typer.Option(help="why")],
) -> None:
    """Duty staff let a denied person through (recorded with who and why)."""
    _checkpoint_api(
        "override", {"gate_id": gate, "scan_id": scan_id, "staff_id": staff, "reason": reason}
    )


@app.command()
def out(compound: Annotated[str, typer.Argument(help="compound id")]) -> None:
    """Who of a compound is out right now."""
    _checkpoint_api("out", {"compound_id": compound})


@app.command()
def trace(
    gate: Annotated[str, typer.Option(help="gate of the scan")],
    scan_id: Annotated[str, typer.Option(help="the scan to trace around")],
    minutes: Annotated[float, typer.Option(help="± minutes")] = 15,
    whole_compound: Annotated[bool, typer.Option(help="every gate of the compound")] = False,
) -> None:
    """Who passed the gate (or any gate of its compound) within ±N minutes of a scan."""
    _checkpoint_api(
        "trace",
        {"gate_id": gate, "scan_id": scan_id, "minutes": minutes, "whole_compound": whole_compound},
    )


# --- sink -----------------------------------------------------------------------------------
@app.command()
def sink(port: Annotated[int, typer.Option(help="port to listen on")] = 8099) -> None:
    """A local chat-webhook sink that prints every alert posted to it (for trying gridcare
    without a real chat group). The sample grids.csv points at port 8099."""
    s = WebhookSink(port=port, echo=True).start()
    console.print(f"listening on http://127.0.0.1:{s.port}/ — Ctrl-C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        s.stop()


# --- show -----------------------------------------------------------------------------------
@app.command()
def show(
    service: ServiceName,
    table: Annotated[str, typer.Argument(help="a table of that service")],
    limit: Annotated[int, typer.Option(help="newest rows")] = 20,
) -> None:
    """Print the newest rows of one of a service's tables (read-only)."""
    mod = _service_module(service)
    if table not in mod.metadata.tables:
        console.print(
            f"[red]no table {table!r}[/]; {service} has: {', '.join(sorted(mod.metadata.tables))}"
        )
        raise typer.Exit(2)
    t = mod.metadata.tables[table]

    async def go() -> list:
        store = Store(Settings().resolved_database_url(service), mod.metadata)
        try:
            async with store.sessions() as s:
                q = sa.select(t).order_by(*[c.desc() for c in t.primary_key.columns]).limit(limit)
                return (await s.execute(q)).all()
        finally:
            await store.dispose()

    rows = asyncio.run(go())
    grid = Table(title=f"{service}.{table}")
    for c in t.columns:
        grid.add_column(c.name, overflow="fold")
    for r in rows:
        grid.add_row(*("" if v is None else str(v) for v in r))
    stdout.print(grid)


# --- dead letters ---------------------------------------------------------------------------
@app.command("dead-letters")
def dead_letters(
    service: ServiceName,
    replay: Annotated[int | None, typer.Option(help="republish this dead letter's message")] = None,
) -> None:
    """List a service's dead letters, or replay one to its original subject."""
    mod = _service_module(service)
    settings = Settings()

    async def go() -> None:
        store = Store(settings.resolved_database_url(service), mod.metadata)
        t = store.tables.dead_letters
        try:
            if replay is None:
                async with store.sessions() as s:
                    rows = (await s.execute(sa.select(t).order_by(t.c.id.desc()).limit(50))).all()
                grid = Table(title=f"{service} dead letters")
                for col in (
                    "id",
                    "consumer",
                    "subject",
                    "deliveries",
                    "reason",
                    "created_at",
                    "replayed_at",
                ):
                    grid.add_column(col, overflow="fold")
                for r in rows:
                    grid.add_row(
                        str(r.id),
                        r.consumer,
                        r.subject,
                        str(r.deliveries),
                        r.reason[:300],
                        str(r.created_at),
                        str(r.replayed_at or ""),
                    )
                stdout.print(grid)
                return
            async with store.transaction() as s:
                row = (await s.execute(sa.select(t).where(t.c.id == replay))).first()
                if row is None:
                    raise typer.BadParameter(f"no dead letter {replay}")
                nc = await nats.connect(**connect_options(settings, "gridcare-cli"))
                try:
                    headers = dict(row.headers)
                    headers["Nats-Msg-Id"] = f"{row.event_id or row.id}-replay-{time.time_ns()}"
                    await nc.jetstream().publish(row.subject, row.payload, headers=headers)
                finally:
                    await nc.close()
                await s.execute(
                    sa.update(t).where(t.c.id == replay).values(replayed_at=datetime.now(UTC))
                )
            console.print(f"replayed dead letter {replay} to {row.subject}")
        finally:
            await store.dispose()

    asyncio.run(go())


# --- db -------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(service: ServiceName) -> None:
    """Bring a service's store to the newest schema (services also do this at start)."""
    mod = _service_module(service)

    async def go() -> None:
        store = Store(Settings().resolved_database_url(service), mod.metadata)
        try:
            await store.migrate(mod.MIGRATIONS)
        finally:
            await store.dispose()

    asyncio.run(go())
    console.print(f"{service}: schema up to date")


@db_app.command("revision")
def db_revision(
    service: ServiceName,
    message: Annotated[str, typer.Option("-m", "--message")],
) -> None:
    """(developers) Write a migration for the difference between the tables and the store."""
    from alembic import command

    mod = _service_module(service)
    cfg = alembic_config(mod.MIGRATIONS, mod.metadata)
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        command.revision(cfg, message=message, autogenerate=True)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
