"""The emulators' control side, alike on every venue: the fault-switch request check and
the command line's common preamble (logging, the secret from the environment)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import fields


def split_request(body: object, faults_cls: type, actions: dict[str, type],
                  action_values: dict[str, tuple], code_sign: int) -> tuple[dict, dict]:  # fmt: skip
    """Validates a control-endpoint body; returns (switches, actions).

    Args:
        faults_cls: the venue's Faults dataclass (its fields are the switches; their
            annotations, "bool", "int" or "list[int]", the types).
        actions: action name -> its type; action_values: the values an action accepts.
        code_sign: the sign of the venue's error codes in a list[int] switch (Binance's
            are negative, Bybit's retCodes positive).

    Raises:
        ValueError: not an object, an unknown key or a wrongly typed value; the message
            names the key.
    """
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    types = {f.name: f.type for f in fields(faults_cls)}
    switches, acts = {}, {}
    for k, v in body.items():
        if k in actions:
            if type(v) is not actions[k]:
                raise ValueError(f"{k!r} must be a {actions[k].__name__}")
            if k in action_values and v not in action_values[k]:
                raise ValueError(f"{k!r} must be one of {action_values[k]}, got {v!r}")
            acts[k] = v
        elif k in types:
            want = types[k]
            if want == "bool":
                ok = type(v) is bool
            elif want == "int":
                ok = type(v) is int and (v >= 0 or k == "clock_skew_ms")
            else:  # list[int]: the venue's error codes
                ok = type(v) is list and all(type(c) is int and c * code_sign > 0 for c in v)
            if not ok:
                raise ValueError(f"bad value for {k!r}: {v!r} (expected {want})")
            switches[k] = v
        else:
            raise ValueError(f"unknown fault switch {k!r}; known: {sorted([*types, *actions])}")
    return switches, acts


def cli_setup(a: argparse.Namespace) -> str | None:
    """Logging as `--log-level` says, to stderr; returns the secret `--secret` or
    `--secret-env` names (None if neither). Exits 2 naming an unset variable."""
    logging.basicConfig(
        level=getattr(logging, a.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if a.secret_env:
        secret = os.environ.get(a.secret_env)
        if secret is None:
            print(f"emulator: error: ${a.secret_env} is not set", file=sys.stderr)
            sys.exit(2)
        return secret
    return a.secret
