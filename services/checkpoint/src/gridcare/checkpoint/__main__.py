"""``gridcare-checkpoint`` / ``python -m gridcare.checkpoint``: run (or migrate) the service."""

from .bootstrap import build


def main() -> None:
    build().main()


if __name__ == "__main__":
    main()
