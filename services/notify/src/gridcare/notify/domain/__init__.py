"""Notify's rules, as plain Python: no I/O, no SQLAlchemy, no broker.

- ``policy``      a community's quiet hours, hourly cap, digest period, escalation chains
- ``recipients``  who a contact is and the routes to them, in their order of preference
- ``messages``    a message's life: keys, states, failover, retries, giving up
- ``alerts``      an alert that needs a person: its chain, acknowledgement, escalation
- ``templates``   the texts, per template and language
- ``flow``        rate limits, circuit breakers, quiet hours
"""
