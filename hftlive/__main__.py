"""`python -m hftlive COMMAND`: tools for a running live setup.

    status    every connector on this machine and its bots (hftlive.status)
    halt      stop a connector's or a bot's new orders, optionally cancelling (hftlive.control)
    reduce    accept only orders that reduce a bot's position
    resume    trade normally again
    flatten   halt, cancel and close positions with reduce-only orders
"""

from __future__ import annotations

import sys

COMMANDS = {"status": "hftlive.status", "halt": "hftlive.control",
            "reduce": "hftlive.control", "resume": "hftlive.control",
            "flatten": "hftlive.control"}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    import importlib

    mod = importlib.import_module(COMMANDS[argv[0]])
    if mod.__name__ == "hftlive.control":
        return mod.main(argv[0], argv[1:])
    return mod.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
