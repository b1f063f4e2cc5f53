"""Streams: what a JetStream stream is made of, and the lookup of a subject's stream.

Rules (``docs/architecture.md``): one stream per domain; stream subjects never overlap; no
stream captures a request/reply subject (the stream would answer the request with its own
PubAck): edge requests and ``api.>`` stay core NATS. All streams use file storage, a
duplicate window (``Nats-Msg-Id``), and age/size limits from settings. Which streams exist
is the contracts' business (each producer declares its own); the library declares only its
own, :data:`DEADLETTER`.

A stream whose messages matter until they are consumed (alerts, decisions, tasks, door
events, reference data) *refuses* a new message when it is full, rather than discard the
oldest one, which may not have been consumed yet: the publisher hears it (the outbox
retries the row, logs and counts the refusal, and sets it aside in the end), where a
discarded alert would be gone without a word. Announcements that nobody must act on
(delivery outcomes, permits issued, dead letters, which the stores keep anyway) discard
the oldest, and live in streams of their own so that their volume never takes an alert's
room.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nats.js.api import StreamConfig

    from .settings import Settings


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    description: str
    compacted: bool = False  # keep only the last message per subject
    # full: refuse new messages (True) or discard the oldest (False, announcements only)
    refuse_when_full: bool = True

    def config(self, settings: Settings) -> StreamConfig:
        from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

        return StreamConfig(
            name=self.name,
            description=self.description,
            subjects=list(self.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=settings.stream_replicas,
            duplicate_window=settings.stream_duplicate_window_s,
            # Reference data is kept until replaced; events age out.
            max_age=0 if self.compacted else settings.stream_max_age_days * 86400,
            max_bytes=settings.stream_max_bytes,
            max_msgs_per_subject=1 if self.compacted else -1,
            discard=DiscardPolicy.NEW if self.refuse_when_full else DiscardPolicy.OLD,
        )

    def captures(self, subject: str) -> bool:
        return any(_matches(pattern, subject) for pattern in self.subjects)


def _matches(pattern: str, subject: str) -> bool:
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


#: Messages a consumer gave up on (``deadletters.py``): the library's own stream.
DEADLETTER = StreamSpec(
    "DEADLETTER",
    ("deadletter.>",),
    "Messages a consumer gave up on (each kept whole in its service's store)",
    refuse_when_full=False,
)


def stream_for(subject: str, specs: Iterable[StreamSpec]) -> StreamSpec:
    """The stream of ``specs`` that captures ``subject``."""
    for spec in specs:
        if spec.captures(subject):
            return spec
    raise LookupError(f"no stream captures subject {subject!r}")
