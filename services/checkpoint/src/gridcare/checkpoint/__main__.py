from .app import build


def main() -> None:
    build().main()


if __name__ == "__main__":
    main()
