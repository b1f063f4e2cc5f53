"""``gridcare-screening`` / ``python -m gridcare.screening``: run (or migrate) the service."""

from .adapters.clock import process_clock
from .bootstrap import build
from .config import ScreeningSettings


def main() -> None:
    settings = ScreeningSettings()
    build(settings, clock=process_clock(settings.screening_clock_offset_file)).main()


if __name__ == "__main__":
    main()
