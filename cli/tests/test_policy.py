"""The community policy file (``gridcare policy apply``): the sample is valid as it is and
with notify's commented settings switched on; a bad notify setting is named before
anything is sent."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridcare.cli.main import app
from gridcare.contracts.refdata import CommunityPolicy, Escalation

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policies" / "CM-1.toml"
NOTIFY = ("quiet_hours", "hourly_cap", "digest_minutes", "escalations")


def uncommented() -> str:
    """The sample with notify's settings switched on (their leading ``# `` removed)."""
    keys = r"quiet_hours|hourly_cap|digest_minutes|\[escalations\.|chain =|waits_min|repeats"
    return re.sub(rf"^# (?=({keys}))", "", SAMPLE.read_text(encoding="utf-8"), flags=re.M)


def test_the_sample_leaves_notify_its_defaults():
    p = CommunityPolicy.model_validate(tomllib.loads(SAMPLE.read_text(encoding="utf-8")))
    assert (p.quiet_hours, p.hourly_cap, p.digest_minutes, p.escalations) == (None,) * 3 + ({},)
    assert p.fever_c == 37.3 and len(p.levels) == 3


def test_the_samples_commented_notify_settings_are_valid():
    raw = tomllib.loads(uncommented())
    assert set(raw) <= set(CommunityPolicy.model_fields)  # top-level, not inside [levels.*]
    p = CommunityPolicy.model_validate(raw)
    assert (p.quiet_hours, p.hourly_cap, p.digest_minutes) == ("22:00-07:00", 6, 60)
    assert p.escalations == {
        "fever": Escalation(
            chain=["grid_worker", "secretary", "duty_staff"], waits_min=[5, 15, 30], repeats=1
        )
    }
    assert len(p.levels) == 3  # the gate settings untouched


@pytest.mark.parametrize(
    ("quiet", "stored"),
    [
        ("22:00-07:00", "22:00-07:00"),
        ("00:00-06:30", "00:00-06:30"),
        (" 23:30 - 05:00", "23:30-05:00"),
    ],
)
def test_quiet_hours_may_wrap_midnight(quiet: str, stored: str):
    assert CommunityPolicy(community_id="CM-1", quiet_hours=quiet).quiet_hours == stored


@pytest.mark.parametrize(
    ("setting", "error"),
    [
        ('quiet_hours = "22-7"', "quiet_hours: Value error, quiet hours are HH:MM-HH:MM"),
        ('quiet_hours = "24:00-07:00"', "quiet_hours: Value error, quiet hours are HH:MM-HH:MM"),
        ('quiet_hours = "07:00-07:00"', "quiet_hours: Value error, quiet hours start and end"),
        ("hourly_cap = 0", "hourly_cap: Input should be greater than or equal to 1"),
        ("digest_minutes = 0", "digest_minutes: Input should be greater than or equal to 1"),
        (
            '[escalations.fever]\nchain = ["grid_worker", "secretary"]\nwaits_min = [5]',
            "escalations.fever: Value error, waits_min has 1 wait(s) for 2 step(s) of chain",
        ),
        (
            "[escalations.fever]\nchain = []\nwaits_min = []",
            "escalations.fever.chain: List should have at least 1 item",
        ),
        (
            '[escalations.fever]\nchain = ["mayor"]\nwaits_min = [5]',
            "escalations.fever.chain.0: Input should be 'grid_worker', 'secretary', ",
        ),
        (
            '[escalations.fever]\nchain = ["secretary"]\nwaits_min = [0]',
            "escalations.fever.waits_min.0: Input should be greater than 0",
        ),
        (
            '[escalations.fever]\nchain = ["secretary"]\nwaits_min = [5]\nrepeats = -1',
            "escalations.fever.repeats: Input should be greater than or equal to 0",
        ),
        (
            '[escalations.fever]\nchain = ["secretary"]\nwaits_min = [5]\nwait = 5',
            "escalations.fever.wait: Extra inputs are not permitted",
        ),
    ],
)
def test_a_bad_notify_setting_is_named_and_nothing_is_sent(
    tmp_path: Path, monkeypatch, setting: str, error: str
):
    monkeypatch.setenv("GRIDCARE_NATS_URL", "nats://127.0.0.1:9")  # never reached
    path = tmp_path / "policy.toml"
    path.write_text(f'community_id = "CM-1"\n{setting}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["policy", "apply", str(path)])
    assert result.exit_code == 1, result.output
    assert f"{path}: {error}" in re.sub(r"\s+", " ", result.output), result.output
