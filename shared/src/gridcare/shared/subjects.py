"""Every subject and every stream, in one place.

Rules (ARCHITECTURE.md): one stream per domain; stream subjects never overlap; no stream
captures a request/reply subject (``gate.*.scan`` stays core NATS, or the stream would
answer the device with its own PubAck). All streams use file storage, a duplicate window
(``Nats-Msg-Id``), and age/size limits from settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from .settings import Settings

# --- edge (CONTRACT.md; fixed) -------------------------------------------------------------
GATE_SCAN = "gate.{gate_id}.scan"  # core NATS request/reply
GATE_SCAN_ALL = "gate.*.scan"
GATE_HEARTBEAT = "gate.{gate_id}.heartbeat"
DOOR_OPENED = "door.{household_id}.opened"

# --- reference data (compacted: the last message per entity) --------------------------------
REFDATA_ENTITY = "refdata.{kind}.{entity_id}"
REFDATA_ALL = "refdata.>"

# --- domain events ------------------------------------------------------------------------
PASSAGE_RECORDED = "checkpoint.passage.recorded.{gate_id}"
PASSAGES_RECORDED = "checkpoint.passages.recorded"
FEVER_DETECTED = "checkpoint.fever.detected.{gate_id}"
QUARANTINE_BREACH = "checkpoint.quarantine.breach.{compound_id}"
PERMIT_ISSUED = "checkpoint.permit.issued.{compound_id}"
PERMIT_OVERDUE = "checkpoint.permit.overdue.{compound_id}"
OVERRIDE_RECORDED = "checkpoint.override.recorded.{gate_id}"
GATE_OFFLINE = "checkpoint.gate.offline.{gate_id}"
GATE_ONLINE = "checkpoint.gate.online.{gate_id}"
CASE_OPENED = "screening.case.opened.{kind}"
PERSON_STATUS_CHANGED = "screening.person.status.{person_id}"
COMPOUND_LEVEL_CHANGED = "screening.compound.level.{compound_id}"
TASK_CREATED = "dispatch.task.created.{kind}"
NOTIFICATION_DELIVERED = "notify.delivery.succeeded.{channel}"
DEAD_LETTERED = "deadletter.{service}"

# --- request/reply APIs (core NATS, never captured by a stream) -----------------------------
# Under api.>, which no stream captures (a stream would answer a request with its PubAck).
CHECKPOINT_API = "api.checkpoint.{op}"


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    description: str
    compacted: bool = False  # keep only the last message per subject

    def config(self, settings: Settings) -> StreamConfig:
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
            discard=DiscardPolicy.OLD,
        )


REFDATA = StreamSpec(
    "REFDATA", ("refdata.>",), "Reference data, last message per entity", compacted=True
)
CHECKPOINT = StreamSpec("CHECKPOINT", ("checkpoint.>",), "Gate passages and alerts")
SCREENING = StreamSpec("SCREENING", ("screening.>",), "Health registry decisions")
DISPATCH = StreamSpec("DISPATCH", ("dispatch.>",), "Help requests and field tasks")
NOTIFY = StreamSpec("NOTIFY", ("notify.>",), "Message delivery outcomes")
DEADLETTER = StreamSpec("DEADLETTER", ("deadletter.>",), "Messages a consumer gave up on")
# Devices publish door events (CONTRACT.md §3) with plain NATS publishes; the stream keeps
# them while the checkpoint is down. (Scans are request/reply and never captured.)
EDGE = StreamSpec("EDGE", ("door.*.opened",), "Door sensor events from devices")

STREAMS: tuple[StreamSpec, ...] = (
    REFDATA,
    CHECKPOINT,
    SCREENING,
    DISPATCH,
    NOTIFY,
    DEADLETTER,
    EDGE,
)


def stream_for(subject: str) -> StreamSpec:
    """The stream that captures ``subject`` (every published event subject has one)."""
    head = subject.split(".", 1)[0]
    for spec in STREAMS:
        if any(s.split(".", 1)[0] == head for s in spec.subjects):
            return spec
    raise LookupError(f"no stream captures subject {subject!r}")
