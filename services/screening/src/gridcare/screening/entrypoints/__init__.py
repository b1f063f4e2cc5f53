"""Screening's entry points: each turns a message into a call of the service layer."""

#: The context key of screening's clock: ``Context(CLOCK)`` in an entry point gives the
#: ``() -> datetime`` that bootstrap was built with (tests move it).
CLOCK = "screening_clock"
