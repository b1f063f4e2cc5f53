"""Dispatch's rules, as plain Python: no I/O, no SQLAlchemy, no broker.

- ``tasks``      what each alert means for a grid worker: one task per fact, its deadline
- ``summaries``  what the worker reads, in their community's local time
- ``holds``      what screening's decisions about a person mean: quarantine support for a
                 household held at home, a transfer for a confirmed case
"""
