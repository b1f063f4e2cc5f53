"""Flow control in simulated time: the token bucket, the circuit breaker, the gate's
priorities, the hourly cap per recipient, quiet hours."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pytest

from gridcare.notify.domain.flow import (
    MAX_OPEN_S,
    PRIORITIES,
    CircuitBreaker,
    Gate,
    HourlyCap,
    TokenBucket,
    in_quiet_hours,
    parse_quiet,
    quiet_hours_end,
)


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Sim(Clock):
    """Simulated time for the gate: a sleeper wakes only when :meth:`advance` reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self.sleeps = 0

    async def sleep(self, s: float) -> None:
        self.sleeps += 1
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.t + s, next(self._seq), fut))
        await fut

    @staticmethod
    async def settle() -> None:
        for _ in range(8):
            await asyncio.sleep(0)

    async def advance(self, dt: float) -> None:
        end = self.t + dt
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= end:
            when, _, fut = heapq.heappop(self._sleepers)
            self.t = max(self.t, when)
            if not fut.done():
                fut.set_result(None)
            await self.settle()
        self.t = end
        await self.settle()


# --- the token bucket -------------------------------------------------------------------
def test_bucket_starts_full_then_gives_its_rate():
    clock = Clock()
    b = TokenBucket(10, burst=5, clock=clock)
    assert [b.try_take() for _ in range(6)] == [True] * 5 + [False]
    assert b.wait_s() == pytest.approx(0.1)
    clock.t += 0.05
    assert not b.try_take()
    assert b.wait_s() == pytest.approx(0.05)
    clock.t += 0.05
    assert b.try_take() and not b.try_take()


def test_bucket_keeps_no_more_than_its_burst():
    clock = Clock()
    b = TokenBucket(10, burst=3, clock=clock)
    while b.try_take():
        pass
    clock.t += 3600
    assert sum(b.try_take() for _ in range(10)) == 3


def test_bucket_rate_over_a_long_run_and_explicit_now():
    b = TokenBucket(500, burst=1, clock=Clock(0.0))
    taken = sum(b.try_take(now=i / 10_000) for i in range(1, 100_001))  # 10 s, polled at 10 kHz
    assert 4_999 <= taken <= 5_001


def test_bucket_default_burst_and_bad_settings():
    assert TokenBucket(500, clock=Clock()).burst == 25  # a twentieth of a second
    assert TokenBucket(2, clock=Clock()).burst == 1
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(10, burst=0.5)


def test_bucket_rate_change_keeps_what_was_earned_and_a_token_can_be_given_back():
    clock = Clock()
    b = TokenBucket(1, burst=1, clock=clock)
    assert b.try_take() and not b.try_take()
    b.give_back()
    assert b.try_take()
    clock.t += 0.5
    b.set_rate(100, burst=10)  # half a token earned at the old rate
    assert b.wait_s() == pytest.approx(0.005)


# --- the circuit breaker ----------------------------------------------------------------
def test_breaker_opens_at_the_threshold_of_failures_in_a_row():
    clock = Clock()
    br = CircuitBreaker(failures_to_open=3, open_s=30, clock=clock)
    br.failure()
    br.failure()
    br.success()  # not in a row
    br.failure()
    br.failure()
    assert br.state == "closed" and br.allow()
    br.failure()
    assert br.state == "open" and not br.allow()
    assert br.wait_s() == pytest.approx(30)


def test_breaker_lets_one_probe_through_after_the_wait_and_closes_on_its_success():
    clock = Clock()
    br = CircuitBreaker(failures_to_open=1, open_s=30, clock=clock)
    br.failure()
    clock.t += 29.9
    assert not br.allow() and br.state == "open"
    clock.t += 0.1
    assert br.state == "half_open"
    assert br.allow()  # the probe
    assert not br.allow() and not br.allow()  # one at a time
    assert br.state == "half_open"
    br.success()
    assert br.state == "closed" and br.allow() and br.failures == 0


def test_a_failed_probe_opens_again_for_twice_as_long_up_to_ten_minutes():
    clock = Clock()
    br = CircuitBreaker(failures_to_open=2, open_s=30, clock=clock)
    br.failure()
    br.failure()
    waits = []
    for _ in range(7):
        clock.t += br.wait_s()
        assert br.allow()
        br.failure()
        assert br.state == "open"
        waits.append(br.wait_s())
    assert waits == [60, 120, 240, 480, 600, 600, 600]
    assert MAX_OPEN_S == 600
    clock.t += 600
    assert br.allow()
    br.success()
    br.failure()
    br.failure()
    assert br.wait_s() == 30  # back to the first wait after it closed
    assert br.opened == 9


def test_breaker_ignores_a_late_failure_while_open_and_replaces_a_lost_probe():
    clock = Clock()
    br = CircuitBreaker(failures_to_open=1, open_s=10, clock=clock)
    br.failure()
    clock.t += 5
    br.failure()  # a call from before it opened
    assert br.wait_s() == pytest.approx(5)
    clock.t += 5
    assert br.allow()  # a probe that never reports
    clock.t += 9.9
    assert not br.allow()
    clock.t += 0.1
    assert br.allow()  # taken for lost: another probe


# --- the gate ---------------------------------------------------------------------------
async def test_an_unconfigured_provider_is_not_limited():
    gate = Gate(clock=Clock())
    for _ in range(1000):
        await gate.acquire("http://fast", "bulk")
    gate.configure("http://fast", None)
    await gate.acquire("http://fast", "urgent")
    with pytest.raises(ValueError):
        await gate.acquire("http://fast", "whenever")


async def test_gate_serves_urgent_before_normal_before_bulk_and_fifo_within_one():
    sim = Sim()
    gate = Gate(clock=sim, sleep=sim.sleep)
    gate.configure("sms", 1, burst=1)
    await gate.acquire("sms", "bulk")  # the one token there is
    served: list[str] = []

    async def ask(name: str, priority: str) -> None:
        await gate.acquire("sms", priority)
        served.append(name)

    arrivals = [("b1", "bulk"), ("n1", "normal"), ("b2", "bulk"), ("u1", "urgent")]
    arrivals += [("n2", "normal"), ("b3", "bulk"), ("u2", "urgent"), ("n3", "normal")]
    tasks = [asyncio.create_task(ask(n, p)) for n, p in arrivals]
    await sim.settle()
    assert gate.waiting("sms") == {"urgent": 2, "normal": 3, "bulk": 3}
    assert gate.waiting() == gate.waiting("sms") and gate.waiting("nobody")["bulk"] == 0
    for _ in arrivals:
        await sim.advance(1.0)
    assert served == ["u1", "u2", "n1", "n2", "n3", "b1", "b2", "b3"]
    await asyncio.gather(*tasks)


async def test_an_urgent_request_behind_a_thousand_bulk_ones_gets_the_next_token():
    sim = Sim()
    gate = Gate(clock=sim, sleep=sim.sleep)
    gate.configure("sms", 10, burst=1)
    served: list[str] = []

    async def ask(name: str, priority: str) -> None:
        await gate.acquire("sms", priority)
        served.append(name)

    bulk = [asyncio.create_task(ask(f"b{i}", "bulk")) for i in range(1000)]
    await sim.advance(0.25)  # the burst token, then two more at 0.1 and 0.2
    assert served == ["b0", "b1", "b2"]
    urgent = asyncio.create_task(ask("u", "urgent"))
    await sim.settle()
    assert gate.waiting("sms")["bulk"] == 997
    await sim.advance(0.06)  # the next token, at 0.3
    assert served[-1] == "u" and len(served) == 4
    await sim.advance(0.1)
    assert served[-1] == "b3"
    for t in [*bulk, urgent]:
        t.cancel()
    await asyncio.gather(*bulk, urgent, return_exceptions=True)
    await sim.advance(1.0)  # the pump drops the cancelled waiters and ends
    assert gate.waiting("sms")["bulk"] == 0 and gate._lanes["sms"].pump is None


async def test_500_a_second_is_500_acquisitions_per_simulated_second_from_one_sleeper():
    sim = Sim()
    gate = Gate(clock=sim, sleep=sim.sleep)
    gate.configure("gw", 500)  # burst 25
    done = 0

    async def ask(priority: str) -> None:
        nonlocal done
        await gate.acquire("gw", priority)
        done += 1

    tasks = [asyncio.create_task(ask(PRIORITIES[i % 3])) for i in range(1600)]
    await sim.advance(0)
    assert done == 25
    counts = []
    for _ in range(3):
        before = done
        await sim.advance(1.0)
        counts.append(done - before)
    assert all(abs(c - 500) <= 1 for c in counts), counts
    # one pump per provider, one sleep per token or fewer: no busy loop
    assert sim.sleeps <= 1501
    await sim.advance(1.0)
    assert done == 1600
    await asyncio.gather(*tasks)
    assert gate.waiting("gw") == dict.fromkeys(PRIORITIES, 0)


async def test_a_cancelled_wait_gives_way_and_a_rate_change_takes_effect_at_once():
    sim = Sim()
    gate = Gate(clock=sim, sleep=sim.sleep)
    gate.configure("gw", 0.01, burst=1)  # one every 100 s
    await gate.acquire("gw")
    first = asyncio.create_task(gate.acquire("gw", "urgent"))
    second = asyncio.create_task(gate.acquire("gw", "normal"))
    await sim.settle()
    first.cancel()
    await sim.settle()
    gate.configure("gw", 100, burst=1)  # the pump was sleeping for 100 s
    await sim.advance(0.011)
    assert second.done() and first.cancelled()


async def test_gate_real_time_rate_without_a_busy_loop():
    sleeps = 0

    async def counted_sleep(s: float) -> None:
        nonlocal sleeps
        sleeps += 1
        await asyncio.sleep(s)

    gate = Gate(sleep=counted_sleep)
    gate.configure("gw", 2000)  # a burst of 100, then one every 0.5 ms
    started = time.monotonic()
    await asyncio.gather(*(gate.acquire("gw", "bulk") for _ in range(300)))
    elapsed = time.monotonic() - started
    assert 0.095 <= elapsed < 0.5, elapsed  # never faster than the rate; the bound is loose
    assert sleeps <= 200  # the loop's timers are coarser than 0.5 ms: fewer, larger batches


def test_each_provider_has_its_own_breaker():
    clock = Clock()
    gate = Gate(clock=clock, failures_to_open=2, open_s=5)
    gate.breaker("a").failure()
    gate.breaker("a").failure()
    assert gate.breaker("a").state == "open" and gate.breaker("b").state == "closed"
    assert gate.breaker("a") is gate.breaker("a")
    assert set(gate.providers()) == {"a", "b"}


# --- the hourly cap ---------------------------------------------------------------------
def test_hourly_cap_per_recipient_over_a_rolling_hour():
    clock = Clock(0.0)
    cap = HourlyCap(3, clock=clock)
    for minute in (0, 10, 20):
        clock.t = minute * 60.0
        assert cap.allow("R-1")
    clock.t = 30 * 60.0
    assert not cap.allow("R-1")
    assert cap.allow("R-2")  # someone else
    assert cap.next_allowed("R-1") == 3600.0
    assert cap.next_allowed("R-2") == clock.t
    clock.t = 3599.0
    assert not cap.allow("R-1")
    clock.t = 3600.0
    assert cap.allow("R-1")
    assert not cap.allow("R-1", now=3600.0)
    assert cap.next_allowed("R-1") == 600.0 + 3600.0


def test_hourly_cap_forgets_quiet_recipients_and_zero_means_no_cap():
    clock = Clock(0.0)
    cap = HourlyCap(2, clock=clock)
    for i in range(100):
        assert cap.allow(f"R-{i}")
    assert len(cap) == 100
    clock.t = 3700.0
    assert cap.allow("R-new")
    assert len(cap) == 1
    unlimited = HourlyCap(0, clock=clock)
    assert all(unlimited.allow("R-1") for _ in range(1000))
    assert unlimited.next_allowed("R-1") == clock.t


# --- quiet hours ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("at", "quiet", "expected"),
    [
        ("23:00", "22:00-07:00", True),
        ("22:00", "22:00-07:00", True),
        ("00:00", "22:00-07:00", True),
        ("06:59:59", "22:00-07:00", True),
        ("07:00", "22:00-07:00", False),
        ("12:00", "22:00-07:00", False),
        ("21:59", "22:00-07:00", False),
        ("13:00", "12:00-14:00", True),
        ("14:00", "12:00-14:00", False),
        ("11:00", "12:00-14:00", False),
        ("03:00", " 22:00 – 07:00 ", True),
        ("03:00", "07:00-07:00", False),
        ("03:00", None, False),
        ("03:00", "", False),
    ],
)
def test_quiet_hours(at, quiet, expected):
    assert in_quiet_hours(dtime.fromisoformat(at), quiet) is expected


def test_quiet_hours_bad_setting_and_their_end():
    with pytest.raises(ValueError):
        parse_quiet("after ten")
    with pytest.raises(ValueError):
        in_quiet_hours(dtime(3), "22:00-25:00")
    tz = ZoneInfo("Asia/Shanghai")
    evening = datetime(2026, 3, 11, 23, 30, tzinfo=tz)
    assert quiet_hours_end(evening, "22:00-07:00") == datetime(2026, 3, 12, 7, 0, tzinfo=tz)
    night = datetime(2026, 3, 12, 3, 0, tzinfo=tz)
    assert quiet_hours_end(night, "22:00-07:00") == datetime(2026, 3, 12, 7, 0, tzinfo=tz)
    assert quiet_hours_end(night + timedelta(hours=9), "22:00-07:00") is None
    assert quiet_hours_end(night, None) is None
