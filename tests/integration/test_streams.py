"""The streams on a real nats-server: an older deployment's CHECKPOINT (``checkpoint.>``)
is narrowed to the alerts and the announcements get a stream of their own; when full, the
announcements discard their oldest, while the alerts refuse a new one out loud and lose
none of those not yet consumed."""

from __future__ import annotations

import nats
import pytest
from nats.js.api import DiscardPolicy, StreamConfig
from nats.js.errors import APIError

from gridcare.cli.devrun import NatsServer
from gridcare.contracts import STREAMS, checkpoint
from gridcare.shared.natsconn import ensure_streams
from gridcare.shared.settings import Settings


@pytest.fixture
async def js(tmp_path):
    server = NatsServer(store_dir=tmp_path / "nats").start()
    nc = await nats.connect(server.url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()
        server.stop()


async def test_alerts_are_never_evicted_by_announcements(js):
    # as an earlier gridcare declared it: one stream for everything the checkpoint says
    await js.add_stream(StreamConfig(name="CHECKPOINT", subjects=["checkpoint.>"]))
    await ensure_streams(js, Settings(stream_max_bytes=4096), STREAMS)

    alerts = await js.stream_info("CHECKPOINT")
    notices = await js.stream_info("CHECKPOINT_NOTICES")
    assert set(alerts.config.subjects) == set(checkpoint.STREAM.subjects)
    assert alerts.config.discard == DiscardPolicy.NEW
    assert notices.config.discard == DiscardPolicy.OLD

    fever = checkpoint.FEVER_DETECTED.format(gate_id="g1")
    permit = checkpoint.PERMIT_ISSUED.format(compound_id="C-01")
    body = b"x" * 300
    kept = 0
    for i in range(40):  # an alert or two among many announcements
        if i % 10 == 0:
            await js.publish(fever, body, headers={"Nats-Msg-Id": f"fever-{i}"})
            kept += 1
        await js.publish(permit, body, headers={"Nats-Msg-Id": f"permit-{i}"})
    # the announcements' stream is full and discarded its oldest; no alert was touched
    notices = await js.stream_info("CHECKPOINT_NOTICES")
    assert notices.state.first_seq > 1 and notices.state.bytes <= 4096
    assert (await js.stream_info("CHECKPOINT")).state.messages == kept

    # the alerts' stream, once full, refuses the next alert (the outbox hears it and
    # retries) instead of discarding one nobody has consumed yet
    refused = None
    for i in range(40):
        try:
            await js.publish(fever, body, headers={"Nats-Msg-Id": f"more-{i}"})
            kept += 1
        except APIError as exc:
            refused = exc
            break
    assert refused is not None and "maximum bytes" in str(refused.description)
    state = (await js.stream_info("CHECKPOINT")).state
    assert state.first_seq == 1 and state.messages == kept
