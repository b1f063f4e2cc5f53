"""gridcare checkpoint: gate verdicts, the entry/exit register, permits, control levels,
screening's holds, door sensors, gate health.

- ``domain/``      the rules, plain Python (scan validation, gate rules, policy and its
                   defaults, permits, holds and doors, gate health, the in-memory state)
- ``handlers.py``  the service layer: one function per command, event or query
- ``unit_of_work.py``  the repositories a handler loads through (SQL, or in memory)
- ``adapters/``    tables, SQL repositories (and the state's load), their in-memory twins
- ``entrypoints/`` the streams it consumes, heartbeats, its API, and ``scans.py``: the gate
                   scan path, the one deliberate exception (nats-py, group commit)
- ``bootstrap.py`` the wiring; ``config.py`` its own settings
"""
