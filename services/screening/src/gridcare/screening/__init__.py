"""gridcare screening: the health registry (cases; later check-ins, four categories,
quarantine, test campaigns, close contacts).

- ``domain/``      the rules, plain Python (statuses and what holds at the gate, cases)
- ``handlers/``    the service layer: one function per command or event, a module a part
- ``unit_of_work.py``  the repositories a handler loads through (SQL, or in memory)
- ``adapters/``    tables, SQL repositories, their in-memory twins
- ``entrypoints/`` the streams it consumes, its API
- ``bootstrap.py`` the wiring
"""
