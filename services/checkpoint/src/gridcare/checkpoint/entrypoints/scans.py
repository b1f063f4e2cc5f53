"""The gate scan path (the edge contract §1): the one deliberate exception to the shape.

Every other entry point is a FastStream subscriber that hands a command to the service
layer. This one is gridcare's hottest path (a district's morning rush: ``bench/``), so:

- it subscribes with nats-py directly (FastStream's per-message overhead would cost most of
  the throughput), on ``gate.*.scan`` in a queue group;
- it decides from memory (``domain.state.GateState``, kept current by the handlers after
  each commit) with the domain's own rules (``domain.scan``, ``domain.rules``), in the
  subscription callback, with no task or future per scan;
- it writes the register by group commit (:class:`Register`): scans queue while the
  previous batch commits, the whole queue is written in one transaction (passages, permit
  changes, their rare outbox events such as a fever), and only then are the replies sent.
  A verdict a device has seen is never lost; a device retry (same gate and ``scan_id``) is
  answered from a cache of recent scans, or from the register: never decided twice. A
  "retry" whose content differs from what was recorded (the id reused: a device's counter
  reset, say) gets the recorded reply too, and is logged and counted: each scan's
  fingerprint (``domain.scan.fingerprint``, a CRC) is kept beside its reply and in the
  register, so telling the two apart costs a hash and a compare, no I/O.

The transaction is a :meth:`Store.blocking_write`: on SQLite a blocking connection on the
event loop's own thread, with the passages inserted through the DBAPI cursor in one
``executemany`` (:class:`BulkInsert`). That blocks the loop for the commit (a fraction of a
millisecond), and it is still the fastest way measured (bench/): aiosqlite pays a thread hop
per statement, and a writer thread, or a commit in a thread, waits for the GIL behind the
busy loop (up to the 5 ms switch interval). On PostgreSQL it runs through the async engine.
A scan already in the register (a retry the cache did not catch, e.g. after a restart)
violates the register's unique key; the batch is then written again leaving such scans out,
and they get their stored reply.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import Executable

from gridcare.contracts.checkpoint import FeverDetected, QuarantineBreachAttempted
from gridcare.contracts.edge import GATE_SCAN_ALL
from gridcare.shared import outbox
from gridcare.shared.aio import Linger
from gridcare.shared.envelope import Envelope, Event, stable_id, utcnow
from gridcare.shared.service import Service
from gridcare.shared.store import BulkInsert

from ..adapters import tables as T
from ..domain.holds import Hold
from ..domain.permits import Permit
from ..domain.rules import Situation, Verdict, evaluate
from ..domain.scan import InvalidScan, ScanRequest, fingerprint, parse_scan
from ..domain.state import GateState
from .devices import Devices

log = logging.getLogger(__name__)
QUEUE_GROUP = "gridcare-checkpoint"
NAME = "checkpoint"
RECENT_SCANS = 200_000  # replies kept in memory for device retries
RECENT_WINDOW = timedelta(minutes=15)  # ... and loaded back from the register at start
DRAIN_TIMEOUT_S = 15.0  # at a stop, for the scans already received to be decided


UNAVAILABLE = {
    "error": {
        "code": "unavailable",
        "detail": [{"field": "(service)", "error": "could not record the scan; retry"}],
    }
}


def reply_body(reply: dict[str, Any]) -> bytes:
    return json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode()


UNAVAILABLE_BODY = reply_body(UNAVAILABLE)


@functools.cache
def _message(verdict: Verdict) -> dict[str, str]:
    """``verdict.message()``, built once per verdict (read only: it is shared)."""
    return verdict.message()


@functools.cache
def _verdict_middle(verdict: Verdict) -> str:
    """The part of a verdict reply that depends on the verdict alone (JSON)."""
    whole = {"verdict": verdict.verdict, "reasons": list(verdict.reasons)}
    whole["message"] = _message(verdict)
    return json.dumps(whole, ensure_ascii=False, separators=(",", ":"))[1:-1]


def verdict_body(scan_id: str, verdict: Verdict, decided_iso: str) -> bytes:
    """``reply_body`` of a verdict, from cached pieces: the same JSON, a few times faster.
    ``scan_id`` (a Token) and an ISO time never need escaping."""
    return (
        f'{{"scan_id":"{scan_id}",{_verdict_middle(verdict)},"decided_at":"{decided_iso}"}}'
    ).encode()


def verdict_of(body: bytes) -> str:
    """The metric label of a stored reply (a retry's)."""
    return json.loads(body).get("verdict", "invalid")


# --- the register: group commit --------------------------------------------------------
# The columns the register writes (``id`` is the database's).
PASSAGE_COLUMNS = tuple(c.name for c in T.passages.columns if c.name != "id")
# a commit starting within this of the previous one means traffic is steady: linger
BUSY_GAP_S = 0.01
PASSAGES = BulkInsert(T.passages, PASSAGE_COLUMNS, json_text={"reply", "reasons"})


@dataclass
class Entry:
    passage: dict[str, Any]  # a row of T.passages (its "reply" column is the reply)
    events: list[tuple[str, Envelope]]  # (subject, envelope) to go out through the outbox
    effects: list[Executable] = field(default_factory=list)  # e.g. a permit's new state
    undo: list[Callable[[], None]] = field(default_factory=list)  # if it is not written
    waiters: list[Any] = field(default_factory=list)  # who gets the reply (the responder's)
    reply_body: bytes = b""  # the reply as sent (and stored), JSON
    # the fingerprint of the scan the register holds under this key, when it held one already
    stored_fingerprint: int | None = None

    @property
    def fingerprint(self) -> int:
        """What this scan said (``domain.scan.fingerprint``), as written to the register."""
        return self.passage["fingerprint"]

    @property
    def key(self) -> tuple[str, str]:
        return self.passage["gate_id"], self.passage["scan_id"]


# A scan answered: its reply (JSON) and the fingerprint of what the register holds for it.
Answered = tuple[bytes, int | None]
# settle(entry, reply, written): reply is None when the batch could not be written.
Settle = Callable[[Entry, dict[str, Any] | None, bool], Awaitable[None]]
Result = tuple[dict[str, Any] | None, bool]  # (the reply, written now) of one scan


@cache
def reasons_json(reasons: tuple[str, ...]) -> str:
    """The ``reasons`` column (JSON text): a few distinct values, each encoded once."""
    return json.dumps(list(reasons), ensure_ascii=False)


class Register:
    def __init__(
        self,
        svc: Service,
        settle: Settle,
        max_batch: int = 1000,
        linger_s: float = 0.0,
        small_batch: int = 32,
    ) -> None:
        self.svc = svc
        self.settle = settle
        self.max_batch = max_batch
        self.linger = Linger(linger_s, BUSY_GAP_S, small_batch)
        self._queue: list[Entry] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._outbox = BulkInsert(svc.store.tables.outbox, outbox.COLUMNS)
        m = svc.metrics
        self.batch_size = m.histogram(
            "register_batch_size",
            "Scans written per register commit",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
        )
        self.commit_seconds = m.histogram(
            "register_commit_duration_seconds",
            "Time of one register commit",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="register-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task:
            await self._task

    def submit(self, entry: Entry) -> None:
        """Queue ``entry``; ``settle`` is called once it is written (or could not be)."""
        self._queue.append(entry)
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping or self._queue:
            await self._wake.wait()
            self._wake.clear()
            # steady traffic, small batches: let the next scans join this commit (a commit
            # costs about as much CPU as a dozen verdicts); an isolated scan goes at once
            await self.linger.before_commit(len(self._queue), self._stopping)
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                try:
                    results = await self._commit(batch)
                except Exception:
                    log.exception("register commit failed for %d scans", len(batch))
                    results = [(None, False)] * len(batch)
                for entry, (reply, written) in zip(batch, results, strict=True):
                    try:
                        await self.settle(entry, reply, written)
                    except Exception:
                        log.exception("could not settle scan %s", entry.key)
                if any(e.events for e in batch):  # the outbox has rows (a fever, say)
                    self.svc.relay.wake()

    async def _commit(self, batch: list[Entry]) -> list[Result]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        store = self.svc.store
        try:
            out = await store.blocking_write(partial(self._write, batch, {}))
        except store.integrity_errors:  # a scan is in the register already: leave it out
            stored = await store.blocking_write(partial(self._stored, batch))
            out = await store.blocking_write(partial(self._write, batch, stored))
        self.batch_size.observe(len(batch))
        self.commit_seconds.observe(loop.time() - t0)
        return out

    # --- in the transaction ---------------------------------------------------------------
    @staticmethod
    def _stored(batch: list[Entry], conn: sa.Connection) -> dict[tuple[str, str], Any]:
        """The scans of ``batch`` the register holds already: their replies (and what they
        said, on each entry: ``stored_fingerprint``)."""
        p = T.passages.c
        rows = conn.execute(
            sa.select(p.gate_id, p.scan_id, p.reply, p.fingerprint).where(
                sa.tuple_(p.gate_id, p.scan_id).in_([e.key for e in batch])
            )
        )
        found = {(g, sid): (reply, fp) for g, sid, reply, fp in rows}
        for e in batch:
            if e.key in found:
                e.stored_fingerprint = found[e.key][1]
        return {key: reply for key, (reply, _) in found.items()}

    def _write(self, batch: list[Entry], stored: dict, conn: sa.Connection) -> list[Result]:
        new = [e for e in batch if e.key not in stored]
        if new:
            PASSAGES.execute(
                conn,
                (
                    {
                        **e.passage,
                        "reply": e.reply_body.decode(),
                        "reasons": reasons_json(tuple(e.passage["reasons"])),
                    }
                    for e in new
                ),
            )
            for e in new:
                for stmt in e.effects:
                    conn.execute(stmt)
            events = [pair for e in new for pair in e.events]
            if events:
                now = utcnow()
                self._outbox.execute(
                    conn, (outbox.row(env, subject, now) for subject, env in events)
                )
        return [
            (stored[e.key], False) if e.key in stored else (e.passage["reply"], True) for e in batch
        ]


# --- the responder ---------------------------------------------------------------------------
class ScanResponder:
    def __init__(self, svc: Service, state: GateState, devices: Devices) -> None:
        self.svc = svc
        self.state = state
        self.devices = devices  # invalid scans are counted per gate
        self.register = Register(svc, settle=self._settle, linger_s=svc.settings.register_linger_s)
        self.max_future = timedelta(seconds=svc.settings.scan_max_future_s)
        # a scan older than the register keeps is invalid (a device's replayed buffer is not)
        self.max_age = timedelta(days=svc.settings.register_retention_days)
        self._sub = None
        self._nc: Any = None  # svc.nc, looked up once (it goes through FastStream's config)
        # (gate, scan_id) -> (the reply, the fingerprint of the scan recorded; None for a
        # row older than fingerprints), or the Entry still being written (retries wait on it)
        self._recent: OrderedDict[tuple[str, str], Entry | Answered] = OrderedDict()
        m = svc.metrics
        self.verdicts = m.counter("scans_total", "Gate scans answered, by verdict", ["verdict"])
        self._verdicts = {
            v: self.verdicts.labels(v) for v in ("allow", "deny", "refer", "invalid", "error")
        }
        self.latency = m.histogram(
            "scan_duration_seconds",
            "Time from request to reply",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )

    async def load_recent(self) -> None:
        """The replies a device may still retry: scans made in the last minutes (an older
        one a device replays is found in the register, on its unique key)."""
        p = T.passages.c
        since = utcnow() - RECENT_WINDOW
        async with self.svc.store.sessions() as s:
            rows = await s.execute(
                sa.select(p.gate_id, p.scan_id, p.reply, p.fingerprint)
                .where(p.scanned_at >= since)
                .order_by(p.id)
            )
            for gate, scan_id, reply, fp in rows:
                self._remember((gate, scan_id), (reply_body(reply), fp))

    async def subscribe(self) -> None:
        self.register.start()
        self._nc = self.svc.nc
        self._sub = await self._nc.subscribe(
            GATE_SCAN_ALL,
            queue=QUEUE_GROUP,
            cb=self._on_msg,
            pending_msgs_limit=200_000,
        )
        await self._nc.flush()  # the server has the subscription before we say ready

    async def drain(self) -> None:
        """Stop taking scans; decide, write and answer every one already received.

        nats-py's subscription drain: the server is told to send no more, a round trip
        makes sure everything it sent before is here, and every message waiting in the
        subscription's queue goes through :meth:`_on_msg` (decided and queued for the
        register) before it returns. (An unsubscribe drops that queue and whatever is
        still on its way: in ``tests/e2e/test_scan_drain.py``, 280 to 1,296 of 6,000 scans
        waiting at the SIGTERM went unanswered.) Then the register writes what is queued
        and sends the replies, on the connection that stays open until the service's stop
        hooks are done (``Service._end``)."""
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await asyncio.wait_for(sub.drain(), DRAIN_TIMEOUT_S)
            except Exception:  # closed, or the server did not answer: devices will retry
                log.warning("the scan subscription did not drain", exc_info=True)
        await self.register.stop()

    # --- the path of one scan --------------------------------------------------------------
    async def _on_msg(self, msg) -> None:
        t0 = time.perf_counter()
        try:
            outcome = self.prepare(msg.subject, msg.data)
        except InvalidScan as exc:
            parts = msg.subject.split(".")
            gate = parts[1] if len(parts) == 3 else ""
            self.devices.refused("scan", self.devices.device(gate, self.state.gate_compound))
            await self._send(msg, reply_body(exc.reply()), "invalid", t0)
            return
        except Exception:
            log.exception("scan failed")
            await self._send(msg, UNAVAILABLE_BODY, "error", t0)
            return
        if isinstance(outcome, bytes):  # a retry of a scan already answered
            await self._send(msg, outcome, verdict_of(outcome), t0)
        else:
            outcome.waiters.append((msg, t0))
            if len(outcome.waiters) == 1:  # not a retry of a scan still being written
                self.register.submit(outcome)

    def prepare(self, subject: str, body: bytes) -> Entry | bytes:
        """Validate and decide; the reply (JSON) of an earlier scan with this gate and
        ``scan_id``, or the new Entry. Raises :class:`InvalidScan`."""
        parts = subject.split(".")
        subject_gate = parts[1] if len(parts) == 3 else ""
        gate_compound = self.state.gate_compound.get(subject_gate, "")
        scan = parse_scan(
            body,
            subject_gate,
            utcnow(),
            self.max_future,
            self.state.policy(gate_compound),
            self.max_age,
        )
        if not gate_compound:
            raise InvalidScan([{"field": "gate_id", "error": f"unknown gate {scan.gate_id!r}"}])
        key = (scan.gate_id, scan.scan_id)
        fp = fingerprint(scan)
        seen = self._recent.get(key)
        if seen is not None:  # the device retried (or reused the id: answered the same)
            if isinstance(seen, Entry):
                if seen.fingerprint != fp:
                    self._conflict(key)
                return seen
            body, recorded = seen
            if recorded is not None and recorded != fp:
                self._conflict(key)
            return body
        entry = self._decide(scan, gate_compound, fp)
        self._remember(key, entry)
        return entry

    def _conflict(self, key: tuple[str, str]) -> None:
        """A scan_id seen before with other content: answered with the recorded verdict
        (the contract), logged and counted."""
        self.devices.conflict("scan", key[0], f"gate {key[0]}: scan_id {key[1]!r}")

    async def _settle(self, entry: Entry, reply: dict[str, Any] | None, written: bool) -> None:
        """The register wrote ``entry`` (or found it there already, or failed): answer."""
        if not written:
            for fn in entry.undo:
                fn()
        if reply is None:
            self._recent.pop(entry.key, None)
            body, label = UNAVAILABLE_BODY, "error"
        else:
            if written:
                body, recorded = entry.reply_body, entry.fingerprint
            else:  # the register had it (a retry after a restart): its reply, its content
                body, recorded = reply_body(reply), entry.stored_fingerprint
                if recorded is not None and recorded != entry.fingerprint:
                    self._conflict(entry.key)
            # atoms in a tuple: the collector stops walking these entries of the cache
            self._recent[entry.key] = (body, recorded)
            label = reply.get("verdict", "invalid")
            if written and label == "allow":
                self.state.let_through(entry.passage)
        for msg, t0 in entry.waiters:
            await self._send(msg, body, label, t0)

    async def _send(self, msg, body: bytes, label: str, t0: float) -> None:
        self._verdicts[label].inc()
        self.latency.observe(time.perf_counter() - t0)
        if not msg.reply:
            return
        try:
            await self._nc.publish(msg.reply, body)
        except Exception:  # the connection went away: the device will retry
            log.warning("could not send a scan reply", exc_info=True)

    def _remember(self, key: tuple[str, str], value: Entry | Answered) -> None:
        self._recent[key] = value
        self._recent.move_to_end(key)
        while len(self._recent) > RECENT_SCANS:
            self._recent.popitem(last=False)

    def _decide(self, scan: ScanRequest, compound: str, fp: int) -> Entry:
        st = self.state
        home = st.home_compound(scan.person_id)
        held = st.held.get(scan.person_id)
        is_resident = home == compound
        who = Situation(
            compound_id=compound,
            control_level=st.level(compound),
            is_resident=is_resident,
            is_known=home is not None,
            held=held.status if held else None,
            permits=st.permits_of(scan.person_id) if is_resident else (),
        )
        decided_at = utcnow()  # our clock: what counts for ages (return_by, retention)
        decision = evaluate(scan, who, st.policy(compound), decided_at)
        verdict = decision.verdict
        decided_iso = decided_at.isoformat()
        reasons = list(verdict.reasons)
        reply = {
            "scan_id": scan.scan_id,
            "verdict": verdict.verdict,
            "reasons": reasons,
            "message": _message(verdict),
            "decided_at": decided_iso,
        }
        # Permit effects are applied to memory now (so a second exit cannot use the same
        # last use) and written with the passage; undone if the passage is not written.
        effects, undo, permit_id = [], [], None
        for before, after in self._permit_changes(decision, scan, decided_at):
            effects.append(
                sa.update(T.permits)
                .where(T.permits.c.permit_id == after.permit_id)
                .values(
                    uses_left=after.uses_left,
                    state=after.state,
                    return_by=after.return_by,
                    exited_at=scan.scanned_at if after.state == "out" else T.permits.c.exited_at,
                )
            )
            undo.append(partial(st.put_permit, scan.person_id, before))
            permit_id = after.permit_id
        passage = {
            "gate_id": scan.gate_id,
            "scan_id": scan.scan_id,
            "compound_id": compound,
            "person_id": scan.person_id,
            "direction": scan.direction,
            "verdict": verdict.verdict,
            "reasons": reasons,
            "temperature_c": scan.temperature_c,
            "scanned_at": scan.scanned_at,
            "decided_at": decided_at,
            "reply": reply,
            "permit_id": permit_id,
            "fingerprint": fp,
        }
        entry = Entry(passage, self._events(scan, who, reasons, held), effects, undo)
        entry.reply_body = verdict_body(scan.scan_id, verdict, decided_iso)
        return entry

    def _permit_changes(self, decision, scan: ScanRequest, received_at: datetime):
        """An exit uses a permit (out until ``return_by``, counted from when the exit was
        received), a return closes one."""
        changes: list[tuple[Permit, Permit]] = []
        if decision.uses_permit is not None:
            p = decision.uses_permit
            changes.append((p, self.state.use_permit(p, received_at)))
        if decision.closes_permit is not None:
            p = decision.closes_permit
            changes.append((p, self.state.close_permit(p)))
        return changes

    def _events(
        self, scan: ScanRequest, who: Situation, reasons: list[str], held: Hold | None
    ) -> list[tuple[str, Envelope]]:
        """The scan's own events (rare); the passage goes out with its batch."""
        events: list[Event] = []
        if "fever" in reasons and scan.temperature_c is not None:
            events.append(
                FeverDetected(
                    scan_id=scan.scan_id,
                    gate_id=scan.gate_id,
                    compound_id=who.compound_id,
                    person_id=scan.person_id,
                    is_resident=who.is_resident,
                    temperature_c=scan.temperature_c,
                    scanned_at=scan.scanned_at,
                )
            )
        if "quarantine" in reasons and held:
            events.append(
                QuarantineBreachAttempted(
                    via="gate",
                    compound_id=who.compound_id,
                    person_id=scan.person_id,
                    household_id=held.household_id,
                    status=held.status,
                    status_label=held.label,
                    gate_id=scan.gate_id,
                    ref=f"scan:{scan.gate_id}:{scan.scan_id}",
                    at=scan.scanned_at,
                )
            )
        if not events:
            return []
        correlation = stable_id("scan", scan.gate_id, scan.scan_id)
        return [
            (
                ev.subject(),
                Envelope.wrap(
                    ev,
                    source=NAME,
                    event_id=stable_id(ev.TYPE, scan.gate_id, scan.scan_id),
                    correlation_id=correlation,
                ),
            )
            for ev in events
        ]
