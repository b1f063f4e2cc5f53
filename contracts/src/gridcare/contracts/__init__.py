"""What gridcare's producers publish: one module of schemas per producer, schemas only.

- ``edge``        gate devices, door sensors, residents' apps and staff (the fixed contract)
- ``refdata``     the office: reference data and community policies (``gridcare import``)
- ``checkpoint``  gate alerts, permits, overrides, gate health
- ``screening``   health decisions about people and compounds, cases
- ``dispatch``    field tasks
- ``notify``      delivery outcomes

Each module declares its producer's stream and subjects with the events. Rules live in the
service that owns them (for example, whether a health status holds a person at the gate is
screening's decision, carried on ``PersonStatusChanged.holds_at_gate``). Evolving a schema:
add optional fields only (consumers ignore what they do not know, and ``Event.VERSION``
goes up); anything else is a new event type.
"""

from gridcare.shared.streams import DEADLETTER, StreamSpec

from . import checkpoint, dispatch, edge, notify, refdata, screening

#: Every stream, declared by every service at start (idempotent), so that any service can
#: start first.
STREAMS: tuple[StreamSpec, ...] = (
    refdata.STREAM,
    checkpoint.STREAM,  # (narrowed from checkpoint.> before NOTICES takes the rest)
    checkpoint.NOTICES,
    screening.STREAM,
    dispatch.STREAM,
    notify.STREAM,  # (narrowed from notify.> before REQUESTS takes notify.requested.>)
    notify.REQUESTS,
    edge.STREAM,
    DEADLETTER,
)
