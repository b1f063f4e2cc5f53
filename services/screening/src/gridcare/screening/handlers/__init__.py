"""Screening's service layer: one function per command or event, a module per part of the
registry. Each loads through the unit of work, calls the domain, commits (events to the
outbox, the message to the inbox, in the same transaction). Queries read straight from
the repositories.

- ``refdata``  screening's copy of the reference data
- ``cases``    a fever at the gate opens a case
- ``status``   each person's health status: the state machine's transitions, the history
"""
