"""Notify's rules, as plain Python: no I/O, no SQLAlchemy, no broker.

- ``deliveries``  one delivery per (message, recipient, channel): intent, attempts, outcome
- ``messages``    what a recipient reads: the language chosen, gate alerts on the local clock
"""
