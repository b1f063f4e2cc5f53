"""What ``gridcare run`` starts agrees with the services themselves."""

from __future__ import annotations

import importlib

from gridcare.cli.devrun import SERVICES


def test_the_runner_gives_each_service_its_own_default_port():
    for name, port in SERVICES.items():
        assert importlib.import_module(f"gridcare.{name}.bootstrap").HTTP_PORT == port, name
