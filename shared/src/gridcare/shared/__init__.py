"""The gridcare library: what every gridcare service shares. It names no service.

One obvious place for each piece:

- ``schema``      identifiers, timestamps, phones, languages, time zones (schema parts)
- ``envelope``    the envelope every stream message carries; the ``Event`` base class
- ``streams``     what a stream is (the contracts declare which exist)
- ``localtime``   the community's clock: what people read, and "a day"
- ``settings``    configuration from ``GRIDCARE_*`` environment variables
- ``natsconn``    connecting to NATS (reconnect forever, credentials, TLS); declaring streams
- ``store``       the per-service SQLAlchemy store, its messaging tables and migrations
- ``uow``         the unit of work: SQL and in-memory, outbox and inbox in its commit
- ``outbox``      the transactional outbox's relay
- ``consumers``   reliable stream consumers: explicit acks, backoff, dead letters
- ``deadletters`` what a consumer gave up on, kept for replay
- ``api``         request/reply service APIs, and the operations every service answers
- ``lease``       one writer per store, for a service that keeps state in memory
- ``service``     the runtime of one service process (FastStream app, HTTP, metrics, logs)
"""
