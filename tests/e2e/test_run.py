"""``gridcare run`` (``make run``) as a supervisor: it starts again what dies (the embedded
nats-server, a service at start), stops everything on any stop signal or when its parent is
gone, leaves nothing running when it is killed, and clears what a crashed run left.

Each test runs ``gridcare run --var <tmp> --no-sink`` as a process on free ports."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridcare.cli.devrun import SERVICES, free_port, port_open

GRIDCARE = str(Path(sys.executable).parent / "gridcare")


def nats_ports() -> int:
    """A free port whose next one (the monitoring port) is free too."""
    for _ in range(50):
        port = free_port()
        if port < 65535 and not port_open("127.0.0.1", port + 1):
            return port
    raise RuntimeError("no two free ports in a row")


def children_of(pid: int) -> dict[int, str]:
    """Live processes whose parent is ``pid``: pid -> command line."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] not in "ZX":
            found[int(d.name)] = cmd
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_until(check, timeout: float, what: str, detail=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}\n{detail()}")


class Run:
    """One ``gridcare run`` process on its own ports and data; ``parent`` runs it under a
    stand-in for ``make`` (a Python process that waits for it)."""

    def __init__(self, var: Path, ports: dict[str, int], extra_env: dict | None = None):
        self.var = var
        self.ports = ports
        env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "GRIDCARE_NATS_URL")}
        env["GRIDCARE_EMBEDDED_NATS_PORT"] = str(ports["nats"])
        for name in SERVICES:
            env[f"GRIDCARE_{name.upper()}_HTTP_PORT"] = str(ports[name])
        self.env = {**env, **(extra_env or {})}
        self.out = var.parent / f"{var.name}-run-{time.monotonic_ns()}.out"
        self.proc: subprocess.Popen | None = None
        self.parent: subprocess.Popen | None = None
        self.seen: set[int] = set()  # every child pid seen: killed at the end of the test

    @property
    def argv(self) -> list[str]:
        return [GRIDCARE, "run", "--var", str(self.var), "--no-sink"]

    def start(self, parent: list[str] | None = None) -> Run:
        """``parent``: the command of a process that starts this run and waits for it."""
        out = open(self.out, "wb")
        if parent:
            self.parent = subprocess.Popen(parent, env=self.env, stdout=out, stderr=out)
            wait_until(lambda: children_of(self.parent.pid), 10, "gridcare run started")
            self.pid = next(iter(children_of(self.parent.pid)))
        else:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=out)
            self.pid = self.proc.pid
        out.close()
        return self

    def still_running(self) -> bool:
        """True, or the test fails at once with what the run printed."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"gridcare run exited ({self.proc.returncode}):\n{self.output()}")
        return True

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def children(self) -> dict[int, str]:
        kids = children_of(self.pid)
        self.seen |= set(kids)
        return kids

    def ready(self, names=tuple(SERVICES)) -> bool:
        import urllib.request

        for name in names:
            try:
                url = f"http://127.0.0.1:{self.ports[name]}/readyz"
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status != 200:
                        return False
            except OSError:
                return False
        return True

    def wait_running(self, timeout: float = 60) -> dict[int, str]:
        """Until it says it is running and every service answers ready; its children."""

        def running() -> bool:
            return self.still_running() and "gridcare is running" in self.output() and self.ready()

        wait_until(
            running,
            timeout,
            "gridcare is running, every service ready",
            self.output,
        )
        kids = self.children()
        assert len(kids) == 5, kids
        return kids

    def ports_free(self) -> bool:
        ports = [*self.ports.values(), self.ports["nats"] + 1]
        return not any(port_open("127.0.0.1", p) for p in ports)

    def cleanup(self) -> None:
        """Whatever happened in the test, nothing of this run is left running."""
        for p in (self.proc, self.parent):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        if alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        for pid in self.seen | set(children_of(self.pid)):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def ports() -> dict[str, int]:
    return {"nats": nats_ports(), **{name: free_port() for name in SERVICES}}


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    made: list[Run] = []
    yield made
    for r in made:
        r.cleanup()


def new_run(runs: list[Run], var: Path, ports: dict[str, int], **kw) -> Run:
    r = Run(var, ports, **kw)
    runs.append(r)
    return r


def nats_pid(kids: dict[int, str]) -> int:
    return next(pid for pid, cmd in kids.items() if "nats-server" in cmd)


def service_pids(kids: dict[int, str]) -> dict[int, str]:
    return {pid: cmd for pid, cmd in kids.items() if "nats-server" not in cmd}


def test_a_killed_nats_server_comes_back_and_every_service_is_ready_again(tmp_path, ports, runs):
    run = new_run(runs, tmp_path / "var", ports).start()
    kids = run.wait_running()
    old_nats = nats_pid(kids)
    os.kill(old_nats, signal.SIGKILL)
    wait_until(lambda: not run.ready(), 10, "the services notice NATS is gone", run.output)
    wait_until(run.ready, 45, "every /readyz 200 again", run.output)
    now = run.children()
    assert nats_pid(now) != old_nats
    assert service_pids(now) == service_pids(kids)  # they reconnected, nothing restarted
    out = run.output()
    assert "nats-server was killed by SIGKILL" in out
    assert "starting it again in 1 s" in out
    wait_until(lambda: "all services are ready again" in run.output(), 10, "said", run.output)

    # a second run on the same data while this one runs is refused, naming it
    second = subprocess.run(
        [GRIDCARE, "run", "--var", str(run.var), "--no-sink"],
        env=run.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 1
    assert f"gridcare run (pid {run.pid}) is already running" in second.stderr


def test_sighup_stops_every_process_and_frees_the_ports(tmp_path, ports, runs):
    """A closed terminal (SIGHUP) stops the run like Ctrl-C."""
    run = new_run(runs, tmp_path / "var", ports).start()
    kids = run.wait_running()

    os.kill(run.pid, signal.SIGHUP)
    wait_until(
        lambda: not any(alive(p) for p in kids) and run.ports_free(),
        20,
        "every child gone and every port free after SIGHUP",
        run.output,
    )
    assert run.proc.wait(10) == 0
    assert "stopping (SIGHUP)" in run.output()
    assert not (run.var / "gridcare-run.json").exists()


def test_a_killed_run_leaves_nothing_behind_and_a_crashed_runs_leftovers_are_cleared(
    tmp_path, ports, runs
):
    """First: a run whose processes were frozen when it was killed left them running (as
    on a system without PR_SET_PDEATHSIG): the next run on the same data and ports stops
    them and starts. Then that run is killed: its processes stop by themselves."""
    var = tmp_path / "var"
    first = new_run(runs, var, ports).start()
    stale = first.wait_running()
    for pid in stale:
        os.kill(pid, signal.SIGSTOP)
    os.kill(first.pid, signal.SIGKILL)
    first.proc.wait()
    assert all(alive(p) for p in stale)

    second = new_run(runs, var, ports).start()
    kids = second.wait_running()
    assert not any(alive(p) for p in stale)
    out = second.output()
    assert f"a previous run on {var} left nats-server (pid {nats_pid(stale)})" in out

    os.kill(second.pid, signal.SIGKILL)
    second.proc.wait()
    wait_until(
        lambda: not any(alive(p) for p in kids) and second.ports_free(),
        10,
        "the children of a killed run gone by themselves, the ports free",
    )


def test_a_service_failing_at_start_is_started_again_with_backoff_and_the_rest_runs(
    tmp_path, ports, runs
):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where dispatch's store directory should be")
    url = f"sqlite+aiosqlite:///{blocked / 'dispatch.db'}"
    run = new_run(
        runs, tmp_path / "var", ports, extra_env={"GRIDCARE_DISPATCH_DATABASE_URL": url}
    ).start()
    again = re.compile(
        r"dispatch exited with code \d+ after [\d.]+ s; starting it again in (\d+) s"
    )
    wait_until(
        lambda: run.still_running() and len(again.findall(run.output())) >= 2,
        60,
        "dispatch failed twice",
        run.output,
    )
    assert again.findall(run.output())[:2] == ["1", "2"]  # the delay grows
    others = [n for n in SERVICES if n != "dispatch"]
    wait_until(lambda: run.ready(others), 30, "the other services ready", run.output)
    before = {pid: cmd for pid, cmd in run.children().items() if "dispatch" not in cmd}
    assert "gridcare is running" not in run.output()

    blocked.unlink()
    blocked.mkdir()
    run.wait_running(60)
    after = {pid: cmd for pid, cmd in run.children().items() if "dispatch" not in cmd}
    assert after == before  # nothing else was stopped or started again
    assert run.proc.poll() is None


def test_the_run_stops_everything_when_its_parent_is_killed(tmp_path, ports, runs):
    """``make`` killed on its own (SIGKILL, or a signal it does not pass on) leaves
    ``gridcare run`` without its parent: it stops everything."""
    run = new_run(runs, tmp_path / "var", ports)
    # a parent that waits for its child and dies of SIGTERM without passing it on
    wrapper = "import subprocess,sys; sys.exit(subprocess.call(sys.argv[1:]))"
    run.start(parent=[sys.executable, "-c", wrapper, *run.argv])
    kids = run.wait_running()
    run.parent.send_signal(signal.SIGTERM)
    run.parent.wait(10)
    wait_until(
        lambda: not alive(run.pid) and not any(alive(p) for p in kids) and run.ports_free(),
        20,
        "gridcare run and every child gone after its parent was killed",
        run.output,
    )
    assert "the process that started gridcare" in run.output()


@pytest.mark.skipif(not shutil.which("make"), reason="no make")
def test_sighup_to_make_alone_stops_everything(tmp_path, ports, runs):
    """GNU make does not pass SIGHUP on: it waits for its child, then dies of it. The run
    sees its parent stopping and stops everything, and make ends."""
    run = new_run(runs, tmp_path / "var", ports)
    makefile = tmp_path / "Makefile"
    makefile.write_text(f"run:\n\t{' '.join(run.argv)}\n")
    run.start(parent=["make", "-s", "-f", str(makefile), "run"])
    kids = run.wait_running()
    run.parent.send_signal(signal.SIGHUP)
    wait_until(
        lambda: not alive(run.pid) and not any(alive(p) for p in kids) and run.ports_free(),
        20,
        "gridcare run and every child gone after SIGHUP to make",
        run.output,
    )
    assert run.parent.wait(10) != 0  # make died of it, after its child ended
    assert "make (pid" in run.output() and "is stopping on SIGHUP" in run.output()
