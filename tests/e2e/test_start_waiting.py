"""A service that starts before NATS (or JetStream) is there: it says what it waits for,
obeys SIGTERM while it waits, and on a 3-node cluster's first start it waits for the
replicated streams instead of exiting."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import nats
import pytest

from gridcare.cli.devrun import NatsServer, ServiceProcess, free_port, nats_server_binary
from gridcare.contracts import STREAMS

pytestmark = pytest.mark.e2e
SECRET = "s3cret-pw"


def log_lines(proc: ServiceProcess) -> list[dict]:
    if not proc.log_file.exists():
        return []
    lines = []
    for raw in proc.log_file.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            lines.append({"event": raw})
    return lines


def wait_for_log(proc: ServiceProcess, text: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log_lines(proc):
            if text in str(line.get("event", "")):
                return line
        if not proc.alive:
            raise AssertionError(
                f"{proc.name} exited ({proc.proc.returncode}) before logging {text!r}:\n"
                + proc.log_file.read_text()[-3000:]
            )
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in {timeout}s:\n" + proc.log_file.read_text()[-3000:])


def service(name: str, tmp_path: Path, nats_url: str, **env: str) -> ServiceProcess:
    return ServiceProcess(
        name,
        {
            "GRIDCARE_NATS_URL": nats_url,
            "GRIDCARE_VAR_DIR": str(tmp_path),
            "GRIDCARE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}",
            **env,
        },
        tmp_path / "log" / f"{name}.log",
        free_port(),
    )


def sigterm_and_wait(proc: ServiceProcess, within: float) -> float:
    """SIGTERM; the process must have exited with 0 within ``within`` seconds."""
    assert proc.proc is not None
    t0 = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)
    try:
        code = proc.proc.wait(within)
    except subprocess.TimeoutExpired:
        proc.stop(kill=True)
        raise AssertionError(
            f"{proc.name} did not exit within {within}s of SIGTERM:\n"
            + proc.log_file.read_text()[-3000:]
        ) from None
    assert code == 0, proc.log_file.read_text()[-3000:]
    return time.monotonic() - t0


@pytest.mark.parametrize("missing", ["NATS", "JetStream"])
def test_a_service_waiting_at_start_says_so_and_obeys_sigterm(tmp_path, missing):
    port = free_port()
    server = None
    if missing == "JetStream":  # a plain nats-server: core NATS answers, JetStream does not
        server = subprocess.Popen(
            [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    proc = service("notify", tmp_path, f"nats://gridcare:{SECRET}@127.0.0.1:{port}").start()
    try:
        line = wait_for_log(proc, f"waiting for {missing} at", 30)
        assert f"nats://127.0.0.1:{port}" in line["event"], line
        assert line["level"] == "warning" and line["waiting_for"] == missing
        time.sleep(0.3)  # well into its wait
        took = sigterm_and_wait(proc, within=5)
        print(f"\nwaiting for {missing}: exited 0 {took:.2f}s after SIGTERM")
        assert SECRET not in proc.log_file.read_text()  # the URL is logged without it
        assert any("asked to stop while starting" in str(x["event"]) for x in log_lines(proc))
    finally:
        proc.stop(kill=True)
        if server is not None:
            server.terminate()
            server.wait(10)


def test_a_clusters_first_start_is_waited_for(tmp_path):
    """GRIDCARE_STREAM_REPLICAS=3 with one node of three up: the service waits (alive,
    not ready, saying it waits for JetStream); the other two come up: it is ready, and
    every stream has three replicas."""
    routes = [free_port() for _ in range(3)]
    nodes = [
        NatsServer(
            store_dir=tmp_path / f"n{i}",
            port=free_port(),
            server_name=f"n{i}",
            cluster={
                "name": "gridcare",
                "port": routes[i],
                "routes": [f"nats-route://127.0.0.1:{p}" for p in routes],
            },
        )
        for i in range(3)
    ]
    proc = service(
        "checkpoint",
        tmp_path,
        ",".join(n.url for n in nodes),
        GRIDCARE_STREAM_REPLICAS="3",
    )
    try:
        nodes[0].start()
        proc.start()
        wait_for_log(proc, "waiting for JetStream at", 30)
        assert proc.alive and not proc.ready()
        t0 = time.monotonic()
        for n in nodes[1:]:
            n.start()
        proc.wait_ready(60)
        print(f"\nready {time.monotonic() - t0:.1f}s after the other two nodes were started")
        replicas = asyncio.run(stream_replicas(nodes[0].url))
        assert replicas == {s.name: 3 for s in STREAMS}, replicas
        assert "asked to stop" not in proc.log_file.read_text()
        sigterm_and_wait(proc, within=15)
    finally:
        proc.stop(kill=True)
        for n in nodes:
            n.stop()


async def stream_replicas(url: str) -> dict[str, int]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        out = {}
        for spec in STREAMS:
            info = await js.stream_info(spec.name)
            # the leader and its two followers, all current
            assert info.cluster is not None and info.cluster.leader
            assert len(info.cluster.replicas or []) == 2, info.cluster
            out[spec.name] = info.config.num_replicas
        return out
    finally:
        await nc.close()
