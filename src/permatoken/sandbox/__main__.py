"""``python -m permatoken.sandbox --host H --port P --fixtures-out FILE``."""

from __future__ import annotations

import argparse
from pathlib import Path

from permatoken.sandbox.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m permatoken.sandbox",
        description="Serve a local imitation of the Meta Graph API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--fixtures-out", type=Path, default=None)
    parser.add_argument("--no-seed", action="store_true", help="start with an empty world")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.fixtures_out, seed=not args.no_seed)


if __name__ == "__main__":
    main()
