"""The checkpoint's own settings (besides every service's, ``gridcare.shared.settings``)."""

from __future__ import annotations

from pydantic import Field

from gridcare.shared.settings import Settings


class CheckpointSettings(Settings):
    # --- the edge and the register ---------------------------------------------------------
    scan_max_future_s: float = Field(300.0, ge=0)  # a scan from further ahead is invalid
    # the register waits this long for more scans before committing a small batch (fewer,
    # larger commits when traffic is light; 0 = commit at once)
    register_linger_s: float = Field(0.001, ge=0, le=0.05)
    # passages, door events and overrides are kept this long after the checkpoint received
    # them; a scan dated further back is invalid (the register does not keep that far)
    register_retention_days: float = Field(28.0, gt=0)
    gate_check_interval_s: float = Field(5.0, gt=0)  # how often gate heartbeats are checked
    # bad messages from one device (a gate's heartbeats, a household's door sensor): this
    # many a minute are kept as dead letters, the rest only counted; while it goes on, the
    # gate's duty staff are alerted at most once per interval
    bad_input_per_minute: int = Field(10, ge=1)
    bad_input_alert_interval_s: float = Field(3600.0, gt=0)
    # how long this checkpoint's hold on its store lasts unless renewed (one per store)
    lease_ttl_s: float = Field(30.0, ge=3)
