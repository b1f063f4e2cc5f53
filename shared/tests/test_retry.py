"""The retry schedule of the reliable consumer (``consumers.backoff``, ``max_attempts``)."""

from __future__ import annotations

import pytest

from gridcare.shared.consumers import backoff, max_attempts
from gridcare.shared.settings import Settings

DEFAULTS = Settings()


def test_the_delay_grows_from_seconds_to_minutes_and_stops_growing():
    nominal = [backoff(DEFAULTS, n, rand=lambda: 0.0) for n in range(1, 13)]
    assert nominal[:4] == [1, 2, 4, 8]
    assert nominal[-1] == 300 and nominal == sorted(nominal)


@pytest.mark.parametrize("attempt", [1, 5, 9, 40, 10_000])
def test_jitter_only_stretches_a_delay_and_by_at_most_its_share(attempt):
    low = backoff(DEFAULTS, attempt, rand=lambda: 0.0)
    high = backoff(DEFAULTS, attempt, rand=lambda: 0.999999)
    assert low <= backoff(DEFAULTS, attempt) <= high <= low * (1 + DEFAULTS.retry_jitter)


def test_the_default_horizon_outlasts_an_outage_of_half_an_hour():
    n = max_attempts(DEFAULTS)
    shortest = sum(backoff(DEFAULTS, a, rand=lambda: 0.0) for a in range(1, n))
    assert shortest >= DEFAULTS.retry_horizon_s >= 30 * 60
    # and not a moment more than needed: one attempt fewer would end before the horizon
    assert shortest - backoff(DEFAULTS, n - 1, rand=lambda: 0.0) < DEFAULTS.retry_horizon_s


@pytest.mark.parametrize(("horizon", "attempts"), [(0, 1), (0.05, 2), (0.1, 3), (0.5, 5), (10, 53)])
def test_the_attempts_cover_the_horizon(horizon, attempts):
    s = Settings(retry_base_delay_s=0.05, retry_max_delay_s=0.2, retry_horizon_s=horizon)
    assert max_attempts(s) == attempts
