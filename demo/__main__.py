"""`./scripts/demo [--check]`: the live demo for a person, or its proofs in headless Chromium."""

import argparse
import asyncio
import signal
import sys
import threading
from pathlib import Path

import asyncpg

from demo.check import check
from demo.proofs import SCREENSHOT
from demo.server import free_port, port_is_free
from demo.session import Demo, postgres, running_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./scripts/demo", description=__doc__)
    parser.add_argument("--check", action="store_true", help="prove the demo headless; exit 0/1")
    parser.add_argument("--port", type=int, help="default 8000 (with --check: a free one)")
    parser.add_argument(
        "--screenshot", type=Path, default=SCREENSHOT, help=f"with --check (default {SCREENSHOT})"
    )
    arguments = parser.parse_args(argv)
    port = arguments.port or (free_port() if arguments.check else 8000)
    if not port_is_free(port):
        print(
            f"error: port {port} of 127.0.0.1 is in use: pass --port with a free one",
            file=sys.stderr,
        )
        return 2
    # A Ctrl-C or a `kill` stops the demo, and everything it started is stopped and removed
    # (even when started from a shell that had Ctrl-C ignored, as background jobs are).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with (
            postgres() as postgres_url,
            running_demo(postgres_url, port, echo=not arguments.check) as demo,
        ):
            if arguments.check:
                return 0 if asyncio.run(check(demo, arguments.screenshot)) else 1
            _serve_until_interrupted(demo)
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, asyncpg.PostgresError) as error:
        # Generating, compiling, migrating or serving failed: what it said is the message.
        print(f"error: the demo could not start: {error}", file=sys.stderr)
        return 2
    return 0


def _serve_until_interrupted(demo: Demo) -> None:
    print(
        f"\nThe demo is live: {demo.page_url()}\n"
        "  alice and bob of team blue side by side: a button changes that user's basket, and\n"
        "  the event reaches that user's page only; another posts a notice to the team, and it\n"
        "  reaches both pages.\n"
        f"  The generated project (removed on exit): {demo.project}\n"
        f"  Its database: {demo.database_url}\n"
        "Ctrl-C stops the app and PostgreSQL and removes the project.",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        # The clean-up must not be interrupted by another Ctrl-C or a `kill`.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nstopping: the app, the database, the project's folder", flush=True)


if __name__ == "__main__":
    sys.exit(main())
