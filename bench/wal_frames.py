"""WAL pages written per register commit, with and without each secondary index.

    .venv/bin/python bench/wal_frames.py

Every page a commit touches is written to SQLite's WAL and later copied back by a
checkpoint (inside some commit, blocking the checkpoint's event loop for a few ms per 1000
pages), so pages per commit decide how often the scan path stalls. This builds the
register's tables as the migrations do (passages with its three secondary indexes, the
passage feed's cursor, the outbox with its pending index) in a temp file, fills 100,000
passages, then makes 500 commits shaped like the checkpoint's at 2,000 scans/s (3 passages
each; the passage feed moving its cursor every 7 commits) and counts the WAL frames they
wrote. It repeats that with an outbox row per commit (how passages were announced before
the feed: the relay marking rows sent every 7 commits), without the per-person index and
without the time index, to show what each costs. Pure sqlite3, no service.
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
from pathlib import Path

REPLY = (
    '{"scan_id":"s-000123","verdict":"allow","reasons":[],'
    '"message":{"zh":"请通行","en":"Please pass"},"decided_at":"2026-11-25T07:31:05.123+00:00"}'
)
INSERT = (
    "INSERT INTO passages (gate_id, scan_id, compound_id, person_id, direction, verdict, "
    "reasons, temperature_c, scanned_at, decided_at, reply, permit_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
VARIANTS = {
    "as shipped (passage feed)": set(),
    "an outbox row per commit (before the feed)": {"outbox"},
    "without ix_passages_compound_person": {"person"},
    "without ix_passages_scanned_at": {"time"},
    "without either": {"person", "time"},
}


def passage(seq: int, rnd: random.Random, hour: int) -> tuple:
    at = f"2026-11-25 {hour:02d}:31:05.{seq % 1_000_000:06d}"
    person = f"R-B{rnd.randint(1, 2000):04d}"
    gate = rnd.choice(("g1", "g2"))
    return (gate, f"t-{seq:09d}", "C-01", person, "in", "allow", "[]", 36.5, at, at, REPLY, None)


def frames_per_commit(folder: Path, variant: set[str], commits: int = 500) -> float:
    """``variant``: "outbox" adds an outbox row per commit; "person"/"time" leave out that
    index."""
    db = folder / f"wal-{'-'.join(sorted(variant)) or 'all'}.db"
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA wal_autocheckpoint=0")  # count every frame; checkpoint by hand
    c.execute(
        "CREATE TABLE passages (id INTEGER PRIMARY KEY AUTOINCREMENT, gate_id VARCHAR(64), "
        "scan_id VARCHAR(64), compound_id VARCHAR(64), person_id VARCHAR(64), "
        "direction VARCHAR(3), verdict VARCHAR(8), reasons JSON, temperature_c FLOAT, "
        "scanned_at DATETIME, decided_at DATETIME, reply JSON, permit_id VARCHAR(64), "
        "CONSTRAINT uq_passages_gate_scan UNIQUE (gate_id, scan_id))"
    )
    if "time" not in variant:
        c.execute("CREATE INDEX ix_passages_scanned_at ON passages (scanned_at)")
    if "person" not in variant:
        c.execute(
            "CREATE INDEX ix_passages_compound_person "
            "ON passages (compound_id, person_id, scanned_at)"
        )
    c.execute(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id VARCHAR(64), "
        "subject VARCHAR(200), payload BLOB, headers JSON, created_at DATETIME, "
        "sent_at DATETIME, attempts INTEGER, last_error TEXT)"
    )
    c.execute("CREATE INDEX ix_outbox_pending ON outbox (sent_at, id)")
    c.execute(
        "CREATE TABLE passage_feed (name VARCHAR(32) PRIMARY KEY, sent_to BIGINT, "
        "pending_to BIGINT)"
    )
    c.execute("INSERT INTO passage_feed VALUES ('passages', 0, 0)")
    rnd = random.Random(7)
    seq = 0
    c.execute("BEGIN")
    for _ in range(100_000):
        seq += 1
        c.execute(INSERT, passage(seq, rnd, 7))
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for k in range(commits):
        c.execute("BEGIN")
        for _ in range(3):
            seq += 1
            c.execute(INSERT, passage(seq, rnd, 8))
        if "outbox" in variant:
            c.execute(
                "INSERT INTO outbox (event_id, subject, payload, headers, created_at, attempts) "
                "VALUES (?, 'checkpoint.passages.recorded', ?, '{}', '2026-11-25 08:31:05', 0)",
                (f"e{k}", b"x" * 900),
            )
        c.execute("COMMIT")
        if k % 7 == 6:
            if "outbox" in variant:
                c.execute(
                    "UPDATE outbox SET sent_at = '2026-11-25 08:31:06', attempts = attempts + 1 "
                    "WHERE sent_at IS NULL"
                )
            else:
                c.execute(
                    "UPDATE passage_feed SET sent_to = pending_to, pending_to = ? "
                    "WHERE name = 'passages'",
                    (seq,),
                )
    frames = c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    c.close()
    return frames / commits


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        for name, variant in VARIANTS.items():
            f = frames_per_commit(Path(tmp), variant)
            base = base or f
            print(f"{name:38} {f:5.1f} WAL pages per commit ({f / base:.0%})")


if __name__ == "__main__":
    main()
