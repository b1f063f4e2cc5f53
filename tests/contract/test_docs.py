"""The docs name every setting there is (a new setting without docs fails here)."""

from pathlib import Path

from gridcare.checkpoint.config import CheckpointSettings
from gridcare.notify.config import NotifySettings
from gridcare.screening.config import ScreeningSettings
from gridcare.shared.settings import ENV_PREFIX

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented():
    text = DOCS.read_text()
    missing = [
        f"{ENV_PREFIX}{name.upper()}"
        # every service's, the checkpoint's, notify's and screening's
        for name in {
            *CheckpointSettings.model_fields,
            *NotifySettings.model_fields,
            *ScreeningSettings.model_fields,
        }
        if f"{ENV_PREFIX}{name.upper()}" not in text
    ]
    assert missing == []
