"""The harness that starts services as processes (``gridcare.shared.devrun``)."""

from __future__ import annotations

import socket

from gridcare.cli.devrun import NatsServer, ServiceProcess


def test_a_service_whose_port_was_taken_starts_again_on_another(tmp_path):
    """``free_port`` only says a port was free when asked; if something takes it before
    the service binds it, the service is started again on a new port instead of failing
    the run."""
    nats = NatsServer(store_dir=tmp_path / "nats").start()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    env = {
        "GRIDCARE_NATS_URL": nats.url,
        "GRIDCARE_VAR_DIR": str(tmp_path),
        "GRIDCARE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}",
    }
    svc = ServiceProcess("notify", env, tmp_path / "notify.log", port)
    try:
        svc.start().wait_ready(60)
        assert svc.http_port != port and svc.ready()
        assert b"address already in use" in (tmp_path / "notify.log").read_bytes()
    finally:
        svc.stop()
        taken.close()
        nats.stop()
