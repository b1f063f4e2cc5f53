"""The providers against real local HTTP servers: what a webhook and an SMS gateway get,
which failures are retried and which are not, a provider that hangs or answers garbage,
placeholders, the console and the file, Apprise; and a throughput figure (printed, not
asserted) against raw httpx posting to the same server."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pytest

from gridcare.cli.devrun import WebhookSink
from gridcare.notify.adapters.providers import Accepted, Outgoing, ProviderFailed, Providers


class Provider:
    """A local provider that answers by path: ``/hook`` 200 JSON, ``/sms`` 200 with an id,
    ``/status/<code>``, ``/hang`` (never answers), ``/garbage`` (200, a body no provider
    should send), ``/text`` (200, plain text). HTTP/1.1 with keep-alive."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.stopping = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = body.decode(errors="replace")
                provider.received.append(
                    {"path": self.path, "headers": dict(self.headers), "body": payload}
                )
                path = self.path.split("?")[0]
                if path == "/hang":
                    provider.stopping.wait(30)
                    return
                status, reply, ctype, extra = 200, b'{"ok":true}', "application/json", {}
                if path == "/sms":
                    reply = json.dumps({"id": f"SM-{len(provider.received)}"}).encode()
                elif path.startswith("/status/"):
                    status = int(path.rsplit("/", 1)[1])
                    reply, ctype = f"<html>oops {status}</html>".encode(), "text/html"
                    if status == 429:
                        extra = {"Retry-After": "7"}
                elif path == "/garbage":
                    reply, ctype = b"\x00\xff{not json<<", "application/json"
                elif path == "/text":
                    reply, ctype = b"OK", "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(reply)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider():
    p = Provider()
    yield p
    p.stop()


@pytest.fixture
async def providers(tmp_path):
    p = Providers(timeout_s=2.0, console_file=tmp_path / "console.jsonl")
    yield p
    await p.aclose()


def out(url: str, kind: str = "chat", to: str | None = None, **kw) -> Outgoing:
    fields = {"key": "k-1", "title": "Fever at the north gate", "body": "R-1001: 38.2 °C"}
    fields.update(kw)
    return Outgoing(url=url, kind=kind, to=to, **fields)  # type: ignore[arg-type]


async def failure(providers: Providers, message: Outgoing) -> ProviderFailed:
    with pytest.raises(ProviderFailed) as info:
        await providers.send(message)
    return info.value


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- the JSON webhook and the SMS gateway ---------------------------------------------------
async def test_json_webhook_gets_the_message_and_the_key_twice(provider, providers):
    got = await providers.send(out(provider.url("/hook"), key="n-42", urgent=True))
    assert got == Accepted(None)
    (post,) = provider.received
    assert post["body"] == {
        "title": "Fever at the north gate",
        "message": "R-1001: 38.2 °C",
        "type": "warning",
        "key": "n-42",
    }
    assert post["headers"]["Idempotency-Key"] == "n-42"
    assert post["headers"]["X-Gridcare-Notification-Id"] == "n-42"
    await providers.send(out(provider.url("/hook"), kind="email", to="li@example.org"))
    assert provider.received[1]["body"]["type"] == "info"
    assert provider.received[1]["body"]["to"] == "li@example.org"


async def test_apprise_json_spelling_and_plus_headers_are_posted_by_us(provider, providers):
    url = f"json://127.0.0.1:{provider.port}/hook?+X-Token=s3cret&lang=zh"
    await providers.send(out(url, key="n-7"))
    (post,) = provider.received
    assert post["path"] == "/hook?lang=zh"
    assert post["headers"]["X-Token"] == "s3cret"
    assert post["headers"]["Idempotency-Key"] == "n-7"
    assert post["body"]["message"] == "R-1001: 38.2 °C"
    assert providers.provider_of(url) == providers.provider_of(provider.url("/other"))


async def test_the_devrun_sink_reads_the_notification_id():
    sink = WebhookSink(fail_first=1).start()
    try:
        p = Providers(timeout_s=2.0)
        failed = await failure(p, out(sink.url(), key="n-9"))
        assert failed.retry and failed.status == 503
        await p.send(out(sink.url(), key="n-9"))
        (post,) = sink.posts()
        assert post["headers"]["X-Gridcare-Notification-Id"] == "n-9"
        await p.aclose()
    finally:
        sink.stop()


async def test_sms_gateway_gets_to_text_key_and_its_id_comes_back(provider, providers):
    got = await providers.send(
        out(provider.url("/sms"), kind="sms", to="+86 138 0000 0002", key="s-1", body="Hi")
    )
    assert got.provider_ref == "SM-1"
    (post,) = provider.received
    assert post["body"] == {"to": "+86 138 0000 0002", "text": "Hi", "key": "s-1"}
    assert post["headers"]["Idempotency-Key"] == "s-1"
    assert post["headers"]["X-Gridcare-Notification-Id"] == "s-1"
    # a 2xx that is not JSON, or JSON without an id: accepted, no reference
    assert (
        await providers.send(out(provider.url("/text"), kind="sms", to="1"))
    ).provider_ref is None
    assert (
        await providers.send(out(provider.url("/hook"), kind="sms", to="1"))
    ).provider_ref is None


async def test_placeholders_are_filled_from_the_address(provider, providers):
    url = provider.url("/sms/{phone}?who={name}")
    await providers.send(out(url, kind="sms", to="+86 138/0002"))
    assert provider.received[0]["path"] == "/sms/%2B86%20138%2F0002?who=%2B86%20138%2F0002"
    query = parse_qs(provider.received[0]["path"].split("?")[1])
    assert query["who"] == ["+86 138/0002"]
    failed = await failure(providers, out(provider.url("/mail?to={email}"), kind="email"))
    assert not failed.retry and "address" in failed.reason
    assert providers.provider_of(url) == f"http://127.0.0.1:{provider.port}"


# --- what is retried and what is not --------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "retry"),
    [(500, True), (502, True), (503, True), (429, True), (408, True), (400, False), (404, False)],
)
async def test_an_error_status_is_retried_or_not(provider, providers, status, retry):
    failed = await failure(providers, out(provider.url(f"/status/{status}")))
    assert failed.retry is retry
    assert failed.status == status
    assert f"HTTP {status}: <html>oops {status}</html>" == failed.reason
    if status == 429:
        assert failed.retry_after_s == 7


async def test_a_provider_that_never_answers_is_retried_within_the_timeout(provider):
    p = Providers(timeout_s=0.5)
    started = time.monotonic()
    failed = await failure(p, out(provider.url("/hang")))
    assert failed.retry and "no answer within 0.5 s" in failed.reason
    assert time.monotonic() - started < 1.5
    await p.aclose()


async def test_a_2xx_with_garbage_is_accepted(provider, providers):
    assert await providers.send(out(provider.url("/garbage"))) == Accepted(None)
    assert await providers.send(out(provider.url("/garbage"), kind="sms", to="1")) == Accepted(None)


async def test_a_reply_that_is_not_http_is_retried(providers):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def garbage() -> None:
        for _ in range(2):  # the first answer and the immediate repeat
            conn, _ = server.accept()
            conn.recv(65536)
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            conn.close()

    threading.Thread(target=garbage, daemon=True).start()
    failed = await failure(providers, out(f"http://127.0.0.1:{port}/hook"))
    assert failed.retry and failed.reason.startswith("bad reply")
    server.close()


async def test_connection_refused_is_retried(providers):
    failed = await failure(providers, out(f"http://127.0.0.1:{free_port()}/hook"))
    assert failed.retry and failed.reason.startswith("cannot connect")


async def test_urls_that_will_never_work(providers):
    for url in ("http:///nohost", "file://elsewhere/x", "no scheme at all", "nosuchscheme://x"):
        failed = await failure(providers, out(url))
        assert not failed.retry, url


# --- console and file -----------------------------------------------------------------------
async def test_console_prints_a_line_and_keeps_it_in_the_console_file(providers, tmp_path, capsys):
    await providers.send(out("console://", key="c-1", body="line one\nline two", urgent=True))
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1
    assert "URGENT chat to - (c-1): Fever at the north gate: line one / line two" in printed
    (line,) = (tmp_path / "console.jsonl").read_text().splitlines()
    row = json.loads(line)
    assert {k: row[k] for k in ("key", "kind", "to", "title", "urgent")} == {
        "key": "c-1",
        "kind": "chat",
        "to": None,
        "title": "Fever at the north gate",
        "urgent": True,
    }
    assert row["body"] == "line one\nline two" and row["at"].endswith("Z")
    assert providers.provider_of("console://") == "console"


async def test_file_appends_one_json_line_per_message(providers, tmp_path):
    path = tmp_path / "out" / "sms.jsonl"
    for i in range(3):
        await providers.send(out(f"file://{path}", kind="sms", to="+86 1", key=f"f-{i}"))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["key"] for r in rows] == ["f-0", "f-1", "f-2"]
    assert rows[0]["to"] == "+86 1" and rows[0]["kind"] == "sms"
    (tmp_path / "adir").mkdir()
    failed = await failure(providers, out(f"file://{tmp_path / 'adir'}"))
    assert not failed.retry


# --- Apprise ----------------------------------------------------------------------------
async def test_an_apprise_scheme_with_a_bad_url_is_not_retried(providers):
    for url in ("dingtalk://", "wecombot://", "mailto://"):
        failed = await failure(providers, out(url))
        assert not failed.retry, url
        assert "Apprise" in failed.reason


async def test_an_apprise_scheme_is_sent_through_apprise(provider, providers):
    url = f"form://127.0.0.1:{provider.port}/form"
    assert await providers.send(out(url)) == Accepted(None)
    (post,) = provider.received
    assert post["path"] == "/form"
    assert "R-1001" in str(post["body"])
    failed = await failure(providers, out(f"form://127.0.0.1:{provider.port}/status/500"))
    assert failed.retry


async def test_an_apprise_provider_that_hangs_is_retried_within_the_timeout(provider):
    p = Providers(timeout_s=0.5)
    started = time.monotonic()
    failed = await failure(p, out(f"form://127.0.0.1:{provider.port}/hang"))
    assert failed.retry
    assert time.monotonic() - started < 1.5
    await p.aclose()


def test_provider_names_hold_no_secrets():
    p = Providers()
    assert p.provider_of("dingtalk://0123456789abcdef/") == "dingtalk"
    assert p.provider_of("wecombot://botkey") == "wecombot"
    assert p.provider_of("mailtos://user:pw@smtp.example.com?to={email}") == (
        "mailtos://smtp.example.com"
    )
    assert p.provider_of("https://user:pw@SMS.example.com:8443/send?k=v") == (
        "https://sms.example.com:8443"
    )
    assert p.provider_of("file:///var/log/x") == "file"


# --- throughput (printed) -------------------------------------------------------------------
FAST_SERVER = r"""
import asyncio, sys

REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
    b'{"ok":true}'
)

class P(asyncio.Protocol):
    def connection_made(self, t):
        self.t, self.buf = t, b""
    def data_received(self, data):
        self.buf += data
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            n = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    n = int(line[15:])
            if len(rest) < n:
                return
            self.buf = rest[n:]
            self.t.write(REPLY)

async def main():
    server = await asyncio.get_running_loop().create_server(P, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture
def fast_provider():
    """A minimal HTTP/1.1 server in its own process (asyncio, keep-alive, 200 to every
    POST), so that the client's cost is what is measured."""
    proc = subprocess.Popen([sys.executable, "-c", FAST_SERVER], stdout=subprocess.PIPE)
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        proc.kill()
        proc.wait()


async def test_throughput_against_raw_httpx(fast_provider):
    n = int(os.environ.get("GRIDCARE_PROVIDER_BENCH_N", "2000"))
    url = fast_provider
    providers = Providers(timeout_s=5.0)
    raw = httpx.AsyncClient(timeout=5.0)
    body = out(url).body

    async def via_providers(i: int) -> None:
        await providers.send(out(url, key=f"k-{i}"))

    async def via_raw(i: int) -> None:
        r = await raw.post(url, json={"title": "t", "message": body, "key": f"k-{i}"})
        assert r.status_code == 200

    async def run(call, window: int) -> float:
        for i in range(50):  # warm: connections open
            await call(i)
        sem = asyncio.Semaphore(window)

        async def one(i: int) -> None:
            async with sem:
                await call(i)

        t0 = time.perf_counter()
        if window == 1:
            for i in range(n):
                await call(i)
        else:
            await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - t0)

    lines = []
    for window in (1, 32):
        raw_rate = await run(via_raw, window)
        ours = await run(via_providers, window)
        lines.append(
            f"{n} posts, {window} in flight: Providers {ours:,.0f}/s, raw httpx "
            f"{raw_rate:,.0f}/s, ratio {ours / raw_rate:.2f}"
        )
    print("\n" + "\n".join(lines))
    await providers.aclose()
    await raw.aclose()
