"""python -m connector --name NAME --connector VENUE --config FILE.toml"""

from __future__ import annotations

import signal

# First, before any import can start a thread (numba's imports start OpenBLAS's): threads
# inherit the mask, and a signal for the process goes to any thread that does not block
# it. connector.app.block_stop_signals says why; run() unblocks them.
signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGINT, signal.SIGTERM))

import argparse  # noqa: E402
import sys  # noqa: E402

from connector import logsetup, registry  # noqa: E402
from connector.errors import ConfigError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m connector",
        description=(
            "Run one hftlive connector: it talks to one venue account, keeps the books, "
            "routes the orders of every bot attached to it and publishes everything to "
            "shared memory under /dev/shm/hftlive.NAME.*"
        ),
    )
    p.add_argument("--name", required=True,
                   help="connector name that bots register instruments under, e.g. 'bf' "
                        "(letters, digits, '_' or '-'); one running connector per name")  # fmt: skip
    p.add_argument("--connector", required=True, metavar="VENUE",
                   help=f"venue adapter: {registry.help_text()}")  # fmt: skip
    p.add_argument("--config", required=True, metavar="FILE.toml",
                   help="TOML config: [[instruments]], [connector], [risk], and the venue's "
                        "section (see examples/*.toml)")  # fmt: skip
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    p.add_argument("--log-format", default="text", choices=("text", "json"),
                   help="text lines, or one JSON object a line with the structured fields "
                        "(order events: bot, order_id, client_id, venue_id, ...)")  # fmt: skip
    p.add_argument("--log-file", default="", metavar="PATH",
                   help="log to this file, rotated at --log-max-mb (default: stderr)")  # fmt: skip
    p.add_argument("--log-max-mb", type=float, default=100.0, help="rotate the log file at this size")
    p.add_argument("--log-backups", type=int, default=5, help="rotated log files kept")
    args = p.parse_args(argv)
    try:
        logsetup.configure(args.name, args.log_level, args.log_format, args.log_file,
                           args.log_max_mb, args.log_backups)  # fmt: skip
    except ValueError as e:
        p.error(str(e))
    from connector.app import run
    from connector.config import load_config
    from hftlive.shm import SharedMemoryError

    try:
        cfg = load_config(args.config, args.connector)
        run(args.name, args.connector, cfg)
    except (ConfigError, SharedMemoryError, ValueError) as e:
        print(f"connector: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        # a ConfigError raised while running (e.g. HedgeModeError: the account was switched
        # to hedge mode) comes out of the venue's TaskGroup inside an ExceptionGroup
        found = _config_error_in(e)
        if found is None:
            raise
        print(f"connector: error: {found}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _config_error_in(e: BaseException) -> ConfigError | None:
    """`e` if it is a ConfigError, else the first one inside it if it is an exception
    group (a TaskGroup's), else None."""
    if isinstance(e, ConfigError):
        return e
    for inner in getattr(e, "exceptions", ()):
        found = _config_error_in(inner)
        if found is not None:
            return found
    return None


if __name__ == "__main__":
    sys.exit(main())
