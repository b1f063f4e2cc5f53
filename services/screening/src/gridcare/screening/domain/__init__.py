"""Screening's rules, as plain Python: no I/O, no SQLAlchemy, no broker.

- ``status``  the health statuses, which of them hold a person at the gate, what they read as
- ``cases``   cases: a fever at a gate opens one per person, later readings join it
"""
