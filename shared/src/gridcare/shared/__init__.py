"""The gridcare library: what every gridcare service shares.

One obvious place for each rule:

- ``envelope``  the event envelope every message on a stream carries
- ``events``    the pydantic models of every internal event (the schemas services share)
- ``subjects``  every subject and stream, with its retention
- ``settings``  configuration from ``GRIDCARE_*`` environment variables
- ``natsconn``  connecting to NATS (reconnect forever, credentials, TLS) and declaring streams
- ``store``     the per-service SQLAlchemy store, its messaging tables and migrations
- ``outbox``    the transactional outbox and its relay
- ``consumer``  the reliable consumer: explicit acks, backoff, idempotency, dead letters
- ``service``   the runtime that wires one service process together (HTTP, metrics, logs)
- ``refdata``   reference data read from the office's CSV files
- ``cli``       the ``gridcare`` command
"""
