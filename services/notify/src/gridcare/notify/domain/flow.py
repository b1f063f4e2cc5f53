"""Flow control for deliveries: how fast each provider is called, in which order waiting
messages go, when a dead provider is left alone, how many non-urgent messages one person
gets an hour, and quiet hours.

Plain Python, no I/O. Every clock is injectable (a callable returning monotonic seconds),
and so is the gate's sleep, so the rules are tested in simulated time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Literal

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

PRIORITIES = ("urgent", "normal", "bulk")
_RANK = {p: i for i, p in enumerate(PRIORITIES)}

# A token counts as there when the bucket holds this little less than one: the time to the
# next token is computed by division, and sleeping that long must yield the token whatever
# the rounding (wait_s asks for a whole token, try_take accepts a hair less).
_EPS = 1e-9


def default_burst(rate_per_s: float) -> float:
    """A twentieth of a second's worth of tokens, at least one: enough that a sleeper
    waking a little late loses no rate, small enough that a gateway capped at N a second
    never gets more than about 1.05 N in any one second."""
    return max(1.0, rate_per_s / 20.0)


class TokenBucket:
    """``rate_per_s`` tokens a second, at most ``burst`` kept (default
    :func:`default_burst`); starts full."""

    __slots__ = ("_at", "_clock", "_tokens", "burst", "rate")

    def __init__(
        self, rate_per_s: float, burst: float | None = None, clock: Clock = time.monotonic
    ):
        self._clock = clock
        self._tokens = self.burst = self.rate = 0.0
        self._at = clock()
        self.set_rate(rate_per_s, burst)
        self._tokens = self.burst

    def set_rate(self, rate_per_s: float, burst: float | None = None) -> None:
        """Change the rate (and burst) keeping the tokens already earned."""
        if not rate_per_s > 0:
            raise ValueError(f"a token bucket needs a positive rate, not {rate_per_s!r}")
        burst = default_burst(rate_per_s) if burst is None else float(burst)
        if burst < 1:
            raise ValueError(f"a burst below one token ({burst}) would never let anything through")
        self._refill(self._clock())
        self.rate = float(rate_per_s)
        self.burst = burst
        self._tokens = min(self._tokens, burst)

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now

    def try_take(self, now: float | None = None) -> bool:
        """Take one token if there is one."""
        self._refill(self._clock() if now is None else now)
        if self._tokens >= 1.0 - _EPS:
            self._tokens -= 1.0
            return True
        return False

    def wait_s(self, now: float | None = None) -> float:
        """Seconds until the next token (0 when there is one now)."""
        self._refill(self._clock() if now is None else now)
        if self._tokens >= 1.0 - _EPS:
            return 0.0
        return (1.0 - self._tokens) / self.rate  # a whole token: slept, it is surely there

    def give_back(self) -> None:
        """Return a token taken for a call that was not made."""
        self._tokens = min(self.burst, self._tokens + 1.0)

    @property
    def tokens(self) -> float:
        return self._tokens


MAX_OPEN_S = 600.0
State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Stop calling a provider that keeps failing, probe it now and then, resume when a
    probe gets through.

    - closed: every call allowed; ``failures_to_open`` failures in a row open it.
    - open: nothing allowed for ``open_s``; then one call, the probe, is allowed
      (``state`` says ``half_open`` from then on).
    - half_open: one probe at a time. Its success closes the breaker (and the wait goes
      back to ``open_s``); its failure opens it again for twice the last wait, at most
      :data:`MAX_OPEN_S`. A probe that reports nothing within the current wait is taken
      for lost, and another is allowed.

    A failure reported while open (a call that started before it opened) changes nothing;
    a success reported at any time closes it: the provider answers.
    """

    __slots__ = (
        "_clock",
        "_opened_at",
        "_probe_at",
        "_state",
        "failures",
        "failures_to_open",
        "open_for",
        "open_s",
        "opened",
    )

    def __init__(
        self, failures_to_open: int = 5, open_s: float = 30.0, clock: Clock = time.monotonic
    ) -> None:
        if failures_to_open < 1:
            raise ValueError("failures_to_open must be at least 1")
        if not open_s > 0:
            raise ValueError("open_s must be positive")
        self.failures_to_open = failures_to_open
        self.open_s = float(open_s)
        self._clock = clock
        self._state: State = "closed"
        self.failures = 0  # in a row, while closed
        self.open_for = self.open_s  # the current (or next) wait while open
        self.opened = 0  # how many times it has opened (for metrics)
        self._opened_at = 0.0
        self._probe_at: float | None = None

    @property
    def state(self) -> State:
        if self._state == "open" and self._clock() >= self._opened_at + self.open_for:
            return "half_open"  # a probe is allowed
        return self._state

    def allow(self) -> bool:
        if self._state == "closed":
            return True
        now = self._clock()
        if self._state == "open":
            if now < self._opened_at + self.open_for:
                return False
            self._state = "half_open"
            self._probe_at = now
            return True
        # half_open: one probe at a time; a probe silent for a whole wait is lost
        if self._probe_at is None or now - self._probe_at >= self.open_for:
            self._probe_at = now
            return True
        return False

    def wait_s(self) -> float:
        """Seconds until :meth:`allow` could say yes (0: now)."""
        if self._state == "closed":
            return 0.0
        now = self._clock()
        if self._state == "open":
            return max(0.0, self._opened_at + self.open_for - now)
        if self._probe_at is None:
            return 0.0
        return max(0.0, self._probe_at + self.open_for - now)

    def success(self) -> None:
        self._state = "closed"
        self.failures = 0
        self.open_for = self.open_s
        self._probe_at = None

    def failure(self) -> None:
        if self._state == "closed":
            self.failures += 1
            if self.failures >= self.failures_to_open:
                self._open()
        elif self._state == "half_open":
            self.open_for = min(self.open_for * 2, max(MAX_OPEN_S, self.open_s))
            self._open()
        # open: a call from before it opened; nothing to learn

    def _open(self) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self._probe_at = None
        self.opened += 1


class _Lane:
    """One provider in the gate: its bucket (None: no limit), its breaker, its waiters."""

    __slots__ = ("breaker", "bucket", "pump", "queues", "waiting")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.bucket: TokenBucket | None = None
        self.breaker = breaker
        self.queues: tuple[deque[asyncio.Future[None]], ...] = tuple(deque() for _ in PRIORITIES)
        self.waiting = 0  # futures in the queues (some may be cancelled, dropped when reached)
        self.pump: asyncio.Task[None] | None = None


class Gate:
    """What a sender asks before each call to a provider.

    Per provider: a token bucket (:meth:`configure`; none until then: no limit), a circuit
    breaker (:meth:`breaker`), and the callers waiting for a token, served urgent before
    normal before bulk and first come first served within a priority. A caller gets a
    token at once only when nobody is waiting; otherwise one task per provider (the pump)
    sleeps until the next token and hands it to the first waiter of the highest priority.
    """

    def __init__(
        self,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        *,
        failures_to_open: int = 5,
        open_s: float = 30.0,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._failures_to_open = failures_to_open
        self._open_s = open_s
        self._lanes: dict[str, _Lane] = {}

    def _lane(self, provider: str) -> _Lane:
        lane = self._lanes.get(provider)
        if lane is None:
            breaker = CircuitBreaker(self._failures_to_open, self._open_s, self._clock)
            lane = self._lanes[provider] = _Lane(breaker)
        return lane

    def configure(
        self, provider: str, rate_per_s: float | None, burst: float | None = None
    ) -> None:
        """Limit ``provider`` to ``rate_per_s`` calls a second (None: no limit)."""
        lane = self._lane(provider)
        if rate_per_s is None:
            lane.bucket = None
        elif lane.bucket is None:
            lane.bucket = TokenBucket(rate_per_s, burst, self._clock)
        else:
            lane.bucket.set_rate(rate_per_s, burst)
        if lane.pump is not None:  # it may be sleeping for the old rate's wait
            lane.pump.cancel()
            lane.pump = None
        if lane.waiting:
            lane.pump = asyncio.get_running_loop().create_task(self._pump(lane))

    def breaker(self, provider: str) -> CircuitBreaker:
        return self._lane(provider).breaker

    def providers(self) -> list[str]:
        return list(self._lanes)

    def waiting(self, provider: str | None = None) -> dict[str, int]:
        """Callers waiting for a token, by priority (one provider, or all)."""
        if provider is None:
            lanes = list(self._lanes.values())
        else:
            lanes = [self._lanes[provider]] if provider in self._lanes else []
        counts = dict.fromkeys(PRIORITIES, 0)
        for lane in lanes:
            for name, q in zip(PRIORITIES, lane.queues, strict=True):
                counts[name] += sum(1 for f in q if not f.done())
        return counts

    async def acquire(self, provider: str, priority: str = "normal") -> None:
        """Wait for ``provider``'s next token; a cancelled wait gives its token back."""
        try:
            rank = _RANK[priority]
        except KeyError:
            raise ValueError(f"priority must be one of {PRIORITIES}, not {priority!r}") from None
        lane = self._lanes.get(provider)
        if lane is None or lane.bucket is None:
            return
        if not lane.waiting and lane.bucket.try_take(self._clock()):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane.queues[rank].append(fut)
        lane.waiting += 1
        if lane.pump is None:
            lane.pump = asyncio.get_running_loop().create_task(self._pump(lane))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and lane.bucket is not None:
                lane.bucket.give_back()  # handed a token, but the caller is gone
            raise

    @staticmethod
    def _first(lane: _Lane) -> deque[asyncio.Future[None]] | None:
        """The queue whose head is served next, dropping cancelled waiters on the way."""
        for q in lane.queues:
            while q and q[0].done():
                q.popleft()
                lane.waiting -= 1
            if q:
                return q
        return None

    async def _pump(self, lane: _Lane) -> None:
        me = asyncio.current_task()
        try:
            while True:
                bucket = lane.bucket
                now = self._clock()
                while (q := self._first(lane)) is not None and (
                    bucket is None or bucket.try_take(now)
                ):
                    q.popleft().set_result(None)
                    lane.waiting -= 1
                if q is None or bucket is None:
                    return
                await self._sleep(bucket.wait_s())
        finally:
            if lane.pump is me:
                lane.pump = None


WINDOW_S = 3600.0


class HourlyCap:
    """At most ``per_hour`` non-urgent messages to one recipient in any rolling hour
    (``per_hour`` <= 0: no cap). :meth:`allow` counts the message when it says yes."""

    def __init__(self, per_hour: int, clock: Clock = time.monotonic) -> None:
        self.per_hour = per_hour
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}
        self._swept = clock()

    def _recent(self, recipient: str, now: float) -> deque[float] | None:
        sent = self._sent.get(recipient)
        if sent is not None:
            while sent and sent[0] <= now - WINDOW_S:
                sent.popleft()
        return sent

    def _sweep(self, now: float) -> None:
        """Forget recipients with nothing in the last hour (at most once a minute)."""
        if now - self._swept < 60.0:
            return
        self._swept = now
        for recipient in [r for r, s in self._sent.items() if not s or s[-1] <= now - WINDOW_S]:
            del self._sent[recipient]

    def allow(self, recipient: str, now: float | None = None) -> bool:
        if self.per_hour <= 0:
            return True
        now = self._clock() if now is None else now
        self._sweep(now)
        sent = self._recent(recipient, now)
        if sent is None:
            sent = self._sent[recipient] = deque()
        if len(sent) >= self.per_hour:
            return False
        sent.append(now)
        return True

    def next_allowed(self, recipient: str, now: float | None = None) -> float:
        """The clock time from which :meth:`allow` says yes (``now`` if it does now)."""
        now = self._clock() if now is None else now
        if self.per_hour <= 0:
            return now
        sent = self._recent(recipient, now)
        if not sent or len(sent) < self.per_hour:
            return now
        return sent[len(sent) - self.per_hour] + WINDOW_S

    def __len__(self) -> int:
        return len(self._sent)


def parse_quiet(quiet: str | None) -> tuple[dtime, dtime] | None:
    """``"22:00-07:00"`` → (22:00, 07:00); None or empty → None. Raises ValueError."""
    if quiet is None or not quiet.strip():
        return None
    parts = quiet.replace("–", "-").split("-")  # an en dash, as a person may type it
    if len(parts) != 2:
        raise ValueError(f"quiet hours are HH:MM-HH:MM, not {quiet!r}")
    try:
        start, end = (dtime.fromisoformat(p.strip()) for p in parts)
    except ValueError:
        raise ValueError(f"quiet hours are HH:MM-HH:MM, not {quiet!r}") from None
    return start, end


def in_quiet_hours(local_time: dtime, quiet: str | None) -> bool:
    """Whether ``local_time`` (the community's clock) falls in ``quiet``: from the start
    (included) to the end (excluded), wrapping midnight when the end is earlier; an equal
    start and end is no quiet time."""
    bounds = parse_quiet(quiet)
    if bounds is None:
        return False
    start, end = bounds
    t = local_time.replace(tzinfo=None)
    if start <= end:
        return start <= t < end
    return t >= start or t < end


def quiet_hours_end(local: datetime, quiet: str | None) -> datetime | None:
    """When the quiet hours ``local`` falls in end (same time zone), None outside them."""
    if not in_quiet_hours(local.timetz(), quiet):
        return None
    _, end = parse_quiet(quiet)  # type: ignore[misc]
    at = datetime.combine(local.date(), end, tzinfo=local.tzinfo)
    if at <= local:
        at = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=local.tzinfo)
    return at
