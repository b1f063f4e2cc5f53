"""The parts of ``gridcare run``'s supervisor that need no service: the backoff, and how it
tells a crashed run's leftovers from unrelated processes (the processes themselves:
``tests/e2e/test_run.py``)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from gridcare.cli.devrun import (
    AlreadyRunning,
    Backoff,
    RunRecord,
    Supervisor,
    child_argv,
    process_identity,
    signal_dispositions,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, prctl")


def test_the_delay_doubles_to_its_cap_and_starts_over_after_a_stable_run():
    b = Backoff(first=1, most=30, stable_s=60)
    assert [b.next(uptime_s=2) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert b.next(uptime_s=61) == 1  # it ran a minute: a new failure, not the same one
    assert b.next(uptime_s=0.5) == 2


def started(argv: list[str]) -> subprocess.Popen:
    """A process whose command line /proc already shows: Popen returns once exec has begun,
    but the kernel sets the new command line a moment later (a busy CI machine once read
    it empty)."""
    p = subprocess.Popen(argv)
    if sys.platform.startswith("linux"):
        deadline = time.monotonic() + 5
        while (ident := process_identity(p.pid)) is None or ident[1] != argv:
            assert time.monotonic() < deadline, ident
            time.sleep(0.01)
    return p


@pytest.fixture
def sleeper():
    p = started(["sleep", "60"])
    yield p
    p.kill()
    p.wait()


@linux_only
def test_a_recorded_process_counts_only_with_its_start_time_and_command_line(sleeper):
    entry = RunRecord.entry("notify", sleeper.pid, ["sleep", "60"])
    assert RunRecord.running(entry)
    # the pid reused by another program, or by the same command started later
    assert not RunRecord.running({**entry, "argv": ["python", "-m", "gridcare.notify"]})
    assert not RunRecord.running({**entry, "start": str(int(entry["start"]) - 1)})
    sleeper.kill()
    sleeper.wait()
    assert not RunRecord.running(entry)


@linux_only
def test_a_crashed_runs_leftovers_are_stopped_and_nothing_else(tmp_path, sleeper):
    leftover = started(["sleep", "61"])
    try:
        record = RunRecord(tmp_path / "gridcare-run.json")
        record.write(
            {"name": "gridcare run", "pid": 2**22 + 1, "start": None, "argv": ["gone"]},
            [
                RunRecord.entry("checkpoint", leftover.pid, ["sleep", "61"]),
                # the pid of a live process that is not what was recorded there
                RunRecord.entry("notify", sleeper.pid, ["python", "-m", "gridcare.notify"]),
            ],
        )
        said = []
        Supervisor(tmp_path, [], say=said.append).clear_stale()
        assert leftover.wait(5) == -signal.SIGTERM
        assert sleeper.poll() is None
        assert f"checkpoint (pid {leftover.pid})" in said[0] and "notify" not in said[0]
        assert not record.path.exists()
    finally:
        leftover.kill()
        leftover.wait()


@linux_only
def test_a_live_run_on_the_same_data_is_not_touched(tmp_path, sleeper):
    record = RunRecord(tmp_path / "gridcare-run.json")
    record.write(RunRecord.entry("gridcare run", sleeper.pid, ["sleep", "60"]), [])
    with pytest.raises(AlreadyRunning, match=f"pid {sleeper.pid}"):
        Supervisor(tmp_path, []).clear_stale()
    assert sleeper.poll() is None


@linux_only
def test_a_child_gets_sigterm_when_its_parent_dies_and_keeps_its_pid():
    """What ``child_argv`` sets up, with an intermediate parent killed outright."""
    code = (
        "import subprocess, sys, time\n"
        "from gridcare.cli.devrun import child_argv\n"
        "p = subprocess.Popen(child_argv(['sleep', '60'], True))\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        deadline = time.monotonic() + 5
        while (ident := process_identity(pid)) and ident[1] != ["sleep", "60"]:
            assert time.monotonic() < deadline, ident
            time.sleep(0.02)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 5
        while process_identity(pid) is not None:
            assert time.monotonic() < deadline, "the child outlived its parent"
            time.sleep(0.02)
    finally:
        parent.kill()
        parent.wait()
    assert child_argv(["x"], False) == ["x"]


@linux_only
def test_a_process_setting_a_stop_signal_back_to_its_default_is_seen():
    """What GNU make does on SIGHUP before waiting for its child: the run watches it."""
    code = (
        "import signal, sys\n"
        "signal.signal(signal.SIGHUP, lambda *a: None)\n"
        "print('caught', flush=True); sys.stdin.readline()\n"
        "signal.signal(signal.SIGHUP, signal.SIG_DFL)\n"
        "print('default', flush=True); sys.stdin.readline()\n"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert p.stdout.readline() == "caught\n"
        assert signal_dispositions(p.pid)[signal.SIGHUP] == "caught"
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.stdout.readline() == "default\n"
        assert signal_dispositions(p.pid)[signal.SIGHUP] == "default"
    finally:
        p.kill()
        p.wait()
    assert signal_dispositions(p.pid) is None
