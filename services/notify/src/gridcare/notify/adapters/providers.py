"""Where a message leaves gridcare: one call to one provider, never inside a transaction.

A channel is a URL (configured per community, role and person, no code):

- ``http(s)://...`` with kind ``chat`` or ``email``, and ``json(s)://...`` (Apprise's
  spelling) whatever the kind: a plain JSON webhook, POSTed
  ``{"title", "message", "type": "info"|"warning", "key"}`` (plus ``"to"`` when the message
  has an address).
- ``http(s)://...`` with kind ``sms``: a plain HTTP SMS gateway, POSTed
  ``{"to", "text", "key"}``; a 2xx JSON reply's ``id`` is the provider's reference.
- ``console://``: one line on stdout (and one JSON line in ``console_file`` when given);
  ``file:///path``: one JSON line appended per message. The embedded default of
  ``make run``.
- anything else (``dingtalk://``, ``wecombot://``, ``feishu://``, ``mailto://``,
  ``twilio://``, ``tgram://``, ...): Apprise, one cached ``Apprise`` object per URL.

Both HTTP kinds go through one ``aiohttp`` session per provider (keep-alive, at most
``max_connections`` calls in flight; aiohttp, not httpx: to a local gateway httpx spent
about 800 µs of CPU per post here, aiohttp about 85) and carry the message's key as
``Idempotency-Key`` and ``X-Gridcare-Notification-Id``; a query parameter ``+Name=value``
of a webhook URL is sent as the header ``Name: value`` (Apprise's convention) and taken
out of the URL; ``user:password@`` is basic auth.

``{phone}``, ``{email}`` and ``{name}`` in a URL are replaced by the message's ``to``
(URL-quoted) before anything else.

Every call is bounded by ``timeout_s`` (the wait for a free connection of the provider
does not count). A 2xx is accepted whatever its body; a provider that does not answer,
answers garbage, 408, 425, 429 or 5xx is :class:`ProviderFailed` with ``retry=True``; an
address that will never work (another 4xx, a 3xx, a URL nobody understands) with
``retry=False``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import quote, unquote, unquote_plus, urlsplit, urlunsplit

import aiohttp
import yarl

Kind = Literal["chat", "sms", "email"]

PLACEHOLDERS = ("{phone}", "{email}", "{name}")
WEBHOOK_SCHEMES = {"http": "http", "https": "https", "json": "http", "jsons": "https"}
REF_FIELDS = ("id", "message_id", "messageId", "sid")  # where a reply names its message
MAX_REPLY_BYTES = 64 * 1024  # read no more of a reply than this
_CACHED_URLS = 4096  # parsed routes and Apprise objects kept (URLs with a person in them)


@dataclass(frozen=True, slots=True)
class Outgoing:
    key: str  # the idempotency key: one per (logical message, recipient, channel)
    url: str  # an Apprise URL, an http(s) JSON webhook or SMS gateway, console://, file:///
    kind: Kind
    to: str | None  # a phone for sms, an address for email; None for a chat bot
    title: str
    body: str  # what the channel shows (for sms: the sms text)
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class Accepted:
    provider_ref: str | None = None  # the provider's id for the message, when it gives one


class ProviderFailed(Exception):
    """The provider did not take the message.

    ``retry``: True when trying again later may work (timeout, connection refused, 5xx,
    408/425/429, a garbage reply); False when this address will never work. ``status``
    is the HTTP status when there was one; ``retry_after_s`` what the provider asked for
    (``Retry-After``), if anything.
    """

    def __init__(
        self,
        reason: str,
        *,
        retry: bool,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.status = status
        self.retry_after_s = retry_after_s

    def __repr__(self) -> str:
        return f"ProviderFailed({self.reason!r}, retry={self.retry})"


@dataclass(frozen=True, slots=True)
class _Route:
    how: Literal["webhook", "sms", "console", "file", "apprise"]
    provider: str
    target: str  # webhook/sms: the URL to POST; file: the path; apprise: the URL
    headers: tuple[tuple[str, str], ...] = ()


# --- Apprise: its plugins take about a second to load, so that happens in a thread ---------
_plugins_ready = threading.Event()
_plugins_lock = threading.Lock()
_plugins_started = False


def _load_plugins() -> None:
    try:
        from apprise.manager_plugins import NotificationManager

        NotificationManager().plugins()
    except Exception:  # pragma: no cover - Apprise says why when it is used
        pass
    finally:
        _plugins_ready.set()


def _preload_plugins() -> None:
    global _plugins_started
    with _plugins_lock:
        if _plugins_started:
            return
        _plugins_started = True
    threading.Thread(target=_load_plugins, name="apprise-plugins", daemon=True).start()


def _addresses_a_host(scheme: str) -> bool:
    """Whether the part after ``scheme://`` is a server (``mailto://user@smtp.host``) rather
    than a token (``dingtalk://<token>``): a token would make every bot its own provider
    and put a secret in the metrics."""
    _preload_plugins()
    _plugins_ready.wait()
    try:
        from apprise.manager_plugins import NotificationManager

        plugin = NotificationManager()[scheme]
    except Exception:
        return False
    return any("{host}" in t for t in getattr(plugin, "templates", ()))


_HOST_SCHEMES: dict[str, bool] = {}


def _host_of(parts: Any) -> str:
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


def _fill(url: str, to: str | None) -> str:
    if "{" not in url or not any(p in url for p in PLACEHOLDERS):
        return url
    if to is None:
        raise ProviderFailed(
            "the channel's URL needs an address ({phone}, {email} or {name}) "
            "and the message has none",
            retry=False,
        )
    quoted = quote(to, safe="")
    for p in PLACEHOLDERS:
        url = url.replace(p, quoted)
    return url


def _text(raw: bytes, limit: int = 200) -> str:
    text = " ".join(raw[: limit * 4].decode("utf-8", errors="replace").split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError, IndexError):
        return None


def _ref(raw: bytes) -> str | None:
    """The provider's id for the message in a JSON reply, if there is one."""
    if not raw or raw[:1] not in (b"{", b" ", b"\n", b"\r", b"\t"):
        return None
    try:
        reply = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(reply, dict):
        return None
    for field in REF_FIELDS:
        value = reply.get(field)
        if value is not None and value != "":
            return str(value)
    return None


def _dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class _Pool:
    """The HTTP connections to one provider: at most ``size`` calls in flight, kept alive.
    Waiting for a free call is not part of a call's timeout: it is our queue, not the
    provider's slowness."""

    def __init__(self, size: int, timeout_s: float, tls: ssl.SSLContext) -> None:
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(max(1, size))
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(1, size), ssl=tls, keepalive_timeout=5.0),
            headers={"User-Agent": "gridcare-notify", "Accept-Encoding": "identity"},
            auto_decompress=False,
        )

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[aiohttp.ClientSession]:
        async with self._slots:
            yield self.session

    async def aclose(self) -> None:
        await self.session.close()


class Providers:
    """Sends one :class:`Outgoing` to its provider; see the module's docstring."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        console_file: Path | None = None,
        max_connections: int = 100,
    ) -> None:
        self.timeout_s = timeout_s
        self.console_file = Path(console_file) if console_file is not None else None
        self.max_connections = max_connections
        self._pools: dict[str, _Pool] = {}
        self._tls: ssl.SSLContext | None = None
        self._routes: OrderedDict[tuple[str, bool], _Route | ProviderFailed] = OrderedDict()
        self._apprise: OrderedDict[str, Any] = OrderedDict()
        self._files: dict[Path, IO[str]] = {}
        _preload_plugins()

    # --- naming -------------------------------------------------------------------------
    def provider_of(self, url: str) -> str:
        """A stable name for the provider behind ``url``: ``scheme://host[:port]`` for a
        webhook or SMS gateway (``json://`` named as ``http://``), ``console``, ``file``;
        for Apprise the scheme, with the host where the scheme addresses a server (e.g.
        ``mailto://smtp.example.com``), not where it holds a token (``dingtalk``). No
        credentials, no path."""
        url = url.strip()
        scheme, sep, _ = url.partition("://")
        scheme = scheme.lower()
        if not sep:
            return "invalid"
        if scheme in ("console", "file"):
            return scheme
        try:
            parts = urlsplit(url)
        except ValueError:
            return scheme
        if scheme in WEBHOOK_SCHEMES:
            return f"{WEBHOOK_SCHEMES[scheme]}://{_host_of(parts)}"
        known = _HOST_SCHEMES.get(scheme)
        if known is None:
            known = _HOST_SCHEMES[scheme] = _addresses_a_host(scheme)
        host = _host_of(parts) if known else ""
        return f"{scheme}://{host}" if host else scheme

    # --- routes -------------------------------------------------------------------------
    def _route(self, url: str, sms: bool) -> _Route:
        cache_key = (url, sms)
        route = self._routes.get(cache_key)
        if route is None:
            try:
                route = self._parse(url, sms)
            except ProviderFailed as exc:
                route = exc
            self._routes[cache_key] = route
            if len(self._routes) > _CACHED_URLS:
                self._routes.popitem(last=False)
        if isinstance(route, ProviderFailed):
            raise ProviderFailed(route.reason, retry=False)
        return route

    def _parse(self, url: str, sms: bool) -> _Route:
        url = url.strip()
        scheme = url.partition("://")[0].lower()
        if scheme == "console":
            return _Route("console", "console", "")
        if scheme == "file":
            parts = urlsplit(url)
            if parts.netloc not in ("", "localhost") or not parts.path:
                raise ProviderFailed(f"not a file URL: {url!r} (file:///path)", retry=False)
            return _Route("file", "file", unquote(parts.path))
        if scheme not in WEBHOOK_SCHEMES:
            return _Route("apprise", self.provider_of(url), url)
        try:
            parts = urlsplit(url)
            if not parts.hostname:
                raise ValueError("no host")
        except ValueError as exc:
            raise ProviderFailed(f"not a webhook URL ({exc})", retry=False) from None
        headers: list[tuple[str, str]] = []
        query: list[str] = []  # kept as written
        for item in parts.query.split("&") if parts.query else ():
            name, _, value = item.partition("=")
            header = name[1:] if name[:1] == "+" else name[3:] if name[:3].upper() == "%2B" else ""
            if header:
                headers.append((unquote(header), unquote_plus(value)))
            else:
                query.append(item)
        real = WEBHOOK_SCHEMES[scheme]
        target = urlunsplit((real, parts.netloc, parts.path or "/", "&".join(query), ""))
        how: Literal["webhook", "sms"] = "sms" if sms and scheme in ("http", "https") else "webhook"
        return _Route(how, f"{real}://{_host_of(parts)}", target, tuple(headers))

    # --- sending ------------------------------------------------------------------------
    async def send(self, out: Outgoing) -> Accepted:
        url = _fill(out.url, out.to)
        route = self._route(url, out.kind == "sms")
        if route.how in ("webhook", "sms"):
            return await self._post(route, out)
        if route.how == "apprise":
            return await self._via_apprise(route, out)
        return self._write(route, out)

    async def _post(self, route: _Route, out: Outgoing) -> Accepted:
        if route.how == "sms":
            payload: dict[str, Any] = {"to": out.to, "text": out.body, "key": out.key}
        else:
            payload = {
                "title": out.title,
                "message": out.body,
                "type": "warning" if out.urgent else "info",
                "key": out.key,
            }
            if out.to is not None:
                payload["to"] = out.to
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": out.key,
            "X-Gridcare-Notification-Id": out.key,
        }
        headers.update(route.headers)
        pool = self._pools.get(route.provider)
        if pool is None:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            pool = _Pool(self.max_connections, self.timeout_s, self._tls)
            self._pools[route.provider] = pool
        body = _dumps(payload)
        async with pool.client() as session:
            try:
                async with asyncio.timeout(self.timeout_s):
                    return await self._exchange(session, route.target, body, headers)
            except TimeoutError:
                raise ProviderFailed(f"no answer within {self.timeout_s:g} s", retry=True) from None

    async def _exchange(
        self, session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
    ) -> Accepted:
        for attempt in (1, 2):
            try:
                # encoded=True: the URL goes out as written (yarl would re-quote it)
                target = yarl.URL(url, encoded=True)
                async with session.post(target, data=body, headers=headers) as response:
                    status = response.status
                    try:
                        raw = await response.content.read(MAX_REPLY_BYTES)
                    except aiohttp.ClientError:
                        raw = b"" if 200 <= status < 300 else b"(unreadable)"
                    encoded = response.headers.get("content-encoding", "identity").lower()
                    retry_after = response.headers.get("retry-after")
                break
            except aiohttp.InvalidURL as exc:
                raise ProviderFailed(f"not a URL to post to: {exc}", retry=False) from None
            except aiohttp.ClientConnectorError as exc:
                raise ProviderFailed(f"cannot connect: {exc or 'refused'}", retry=True) from None
            except (
                aiohttp.ServerDisconnectedError,
                aiohttp.ClientOSError,
                aiohttp.ClientPayloadError,
                aiohttp.ClientResponseError,
            ) as exc:
                # A kept-alive connection the provider had closed, or not HTTP at all: once
                # more at once (the key makes a repeat harmless), then it is the provider's.
                if attempt == 1:
                    continue
                raise ProviderFailed(
                    f"bad reply: {exc or type(exc).__name__}", retry=True
                ) from None
            except aiohttp.ClientError as exc:
                raise ProviderFailed(f"{type(exc).__name__}: {exc}", retry=True) from None
        if 200 <= status < 300:  # accepted, whatever the body
            return Accepted(None if encoded != "identity" else _ref(raw))
        retry = status in (408, 425, 429) or status >= 500 or status < 200
        raise ProviderFailed(
            f"HTTP {status}" + (f": {_text(raw)}" if raw else ""),
            retry=retry,
            status=status,
            retry_after_s=_retry_after(retry_after),
        )

    # --- Apprise ------------------------------------------------------------------------
    async def _apprise_for(self, url: str) -> Any:
        ap = self._apprise.get(url)
        if ap is None:

            def build() -> Any:
                import apprise

                obj = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
                return obj if obj.add(url) else False

            _preload_plugins()
            ap = await asyncio.to_thread(build)  # the first one loads Apprise's plugins
            self._apprise[url] = ap
            if len(self._apprise) > _CACHED_URLS:
                self._apprise.popitem(last=False)
        else:
            self._apprise.move_to_end(url)
        if ap is False:
            scheme = url.partition("://")[0] or url[:20]
            raise ProviderFailed(f"not a URL Apprise understands ({scheme}://...)", retry=False)
        return ap

    async def _via_apprise(self, route: _Route, out: Outgoing) -> Accepted:
        import apprise
        from apprise.result import AppriseResultStatus

        ap = await self._apprise_for(route.target)
        kind = apprise.NotifyType.WARNING if out.urgent else apprise.NotifyType.INFO
        # an SMS plugin would put the title in front of the text
        title = "" if out.kind == "sms" else out.title
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await ap.async_notify(
                    body=out.body, title=title, notify_type=kind, timeout=self.timeout_s
                )
        except TimeoutError:
            raise ProviderFailed(f"no answer within {self.timeout_s:g} s", retry=True) from None
        except Exception as exc:  # a plugin's bug or a refused argument
            raise ProviderFailed(f"Apprise: {exc!r}", retry=True) from None
        if result.status in (AppriseResultStatus.SUCCESS, AppriseResultStatus.PARTIAL):
            return Accepted(None)  # partial: some of the URL's targets have it; no repeat
        why = ""
        try:
            errors = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
            why = f": {_text(errors[-1].encode())}" if errors else ""
        except Exception:  # pragma: no cover - the logs are a courtesy
            pass
        timed_out = result.status == AppriseResultStatus.TIMEOUT
        raise ProviderFailed(
            f"{route.provider}: "
            + ("no answer in time" if timed_out else result.status.name)
            + why,
            retry=result.status != AppriseResultStatus.NOMATCH,
        )

    # --- console and file ---------------------------------------------------------------
    def _write(self, route: _Route, out: Outgoing) -> Accepted:
        at = datetime.now(UTC)
        line = {
            "key": out.key,
            "kind": out.kind,
            "to": out.to,
            "title": out.title,
            "body": out.body,
            "urgent": out.urgent,
            "at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if route.how == "console":
            mark = "URGENT " if out.urgent else ""
            shown = " / ".join(f"{out.title}: {out.body}".splitlines())
            print(f"[notify] {mark}{out.kind} to {out.to or '-'} ({out.key}): {shown}", flush=True)
            path = self.console_file
        else:
            path = Path(route.target)
        if path is not None:
            self._append(path, json.dumps(line, ensure_ascii=False))
        return Accepted(None)

    def _append(self, path: Path, line: str) -> None:
        try:
            f = self._files.get(path)
            if f is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                f = self._files[path] = open(path, "a", encoding="utf-8")
            f.write(line + "\n")
            f.flush()
        except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:
            self._files.pop(path, None)
            raise ProviderFailed(f"cannot write {path}: {exc.strerror}", retry=False) from None
        except OSError as exc:
            self._files.pop(path, None)
            raise ProviderFailed(f"cannot write {path}: {exc.strerror}", retry=True) from None

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()
        for f in self._files.values():
            f.close()
        self._files.clear()


__all__ = ["Accepted", "Kind", "Outgoing", "ProviderFailed", "Providers"]
