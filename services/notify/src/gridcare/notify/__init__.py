"""gridcare notify: delivery (chat today; later SMS, templates, rate limits, escalation).

- ``domain/``      the rules: one delivery per message and recipient, what they read
- ``handlers.py``  the service layer: one function per event or query; no provider is
                   called inside a transaction
- ``unit_of_work.py``  the repositories a handler loads through (SQL, or in memory)
- ``adapters/``    tables, SQL repositories, their in-memory twins, the chat channel
- ``entrypoints/`` the streams it consumes, its API
- ``bootstrap.py`` the wiring
"""
