"""gridcare dispatch: field tasks for grid workers (later help requests, volunteers,
shifts, group buys, recurring visits).

- ``domain/``      the rules: one task per fact, deadlines, what the worker reads
- ``handlers.py``  the service layer: one function per event or query
- ``unit_of_work.py``  the repositories a handler loads through (SQL, or in memory)
- ``adapters/``    tables, SQL repositories, their in-memory twins
- ``entrypoints/`` the streams it consumes, its API
- ``bootstrap.py`` the wiring
"""
