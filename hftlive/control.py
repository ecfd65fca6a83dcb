"""`python -m hftlive halt|reduce|resume CONNECTOR [--bot ID] [--cancel]`: the kill switch.

    halt     no new orders and no modifies (cancels always go); `--cancel` also cancels
             every open order of the bot (or of every bot)
    reduce   only orders that reduce the bot's position are accepted
    resume   active again (a bot's own state; `resume` without --bot resumes the connector)
    flatten  halt, cancel, then close the positions with reduce-only IOC limit orders at the
             mid -/+ the connector's flatten_slippage_bp (the connector logs what is left)

The stricter of the connector's state and the bot's own applies. Refused orders reach the
bot as usual (status EXPIRED, an ERR_ORDER with the connector's code HALTED or
REDUCE_ONLY and reason REJECT_HALTED / REJECT_REDUCE_ONLY); nothing reaches the venue. A
bot hears each change of its state through its error handler (ERR_TRADING_STATE, code =
the new TRADING_*). The connector keeps the states across a restart until resumed.

How the request travels: a mailbox in the connector's control segment (hftlive.layout:
`cmd`, `cmd_bot`, `cmd_seq`, `cmd_ack`). The tool takes a lock on the segment file (one
tool at a time), writes the command, bumps `cmd_seq`; the connector applies it within
~0.1 s and sets `cmd_ack`; the tool waits for that and says what the state now is.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time

from hftlive.constants import TRADING_ACTIVE, TRADING_HALTED, TRADING_NAMES, TRADING_REDUCING
from hftlive.ipc import CtlViews, store_word
from hftlive.layout import (
    CONN_RUNNING,
    CTL_CMD,
    CTL_CMD_ACK,
    CTL_CMD_SEQ,
    CTL_TRADING,
    ctl_name,
)
from hftlive.shm import Segment, path_of, pid_alive

COMMANDS = {"halt": TRADING_HALTED, "reduce": TRADING_REDUCING, "resume": TRADING_ACTIVE,
            "flatten": TRADING_HALTED}  # fmt: skip
# the `cmd` word: the state in the low byte, then flags
_STATE_MASK = 0xFF
_CANCEL = 1 << 8  # also cancel the open orders it covers
_HAS_BOT = 1 << 9  # `cmd_bot` names the bot; else the command is for the connector
_FLATTEN = 1 << 10  # halt, cancel, then close the positions (reduce-only orders)


class ControlError(Exception):
    """The command could not be delivered (no such connector, not running, no answer)."""


def encode(state: int, bot_id: int | None, cancel: bool, flatten: bool = False) -> tuple[int, int]:
    """(cmd, cmd_bot) words of a command."""
    if state not in (TRADING_ACTIVE, TRADING_REDUCING, TRADING_HALTED):
        raise ValueError(f"unknown trading state {state}")
    cmd = (state | (_CANCEL if cancel else 0) | (_HAS_BOT if bot_id is not None else 0)
           | (_FLATTEN if flatten else 0))  # fmt: skip
    return cmd, (bot_id if bot_id is not None else 0)


def decode(cmd: int, cmd_bot: int) -> tuple[int, int | None, bool, bool]:
    """(state, bot id or None, cancel, flatten) of the mailbox words."""
    return (cmd & _STATE_MASK, (cmd_bot if cmd & _HAS_BOT else None), bool(cmd & _CANCEL),
            bool(cmd & _FLATTEN))  # fmt: skip


def send(connector: str, state: int, bot_id: int | None = None, cancel: bool = False,
         timeout_s: float = 5.0, flatten: bool = False) -> int:  # fmt: skip
    """Delivers one command and waits until the connector applied it.

    Returns:
        the connector-wide trading state after it.

    Raises:
        ControlError: no such connector, it is not running, or it did not answer.
    """
    cmd, cmd_bot = encode(state, bot_id, cancel, flatten)
    name = ctl_name(connector)
    try:
        seg = Segment.attach(name)
    except Exception as e:
        raise ControlError(f"no connector {connector!r} on this machine ({e})") from None
    lock = os.open(path_of(name), os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one tool at a time writes the mailbox
        ctl = CtlViews(seg.buf)
        h = ctl.header[0]
        if int(h["state"]) != CONN_RUNNING or not pid_alive(int(h["pid"])):
            raise ControlError(f"connector {connector!r} is not running")
        w = ctl.words
        w[CTL_CMD] = cmd
        ctl.header["cmd_bot"] = cmd_bot
        seq = int(w[CTL_CMD_SEQ]) + 1
        store_word(w, CTL_CMD_SEQ, seq)  # after the command: the connector reads seq first
        deadline = time.monotonic() + timeout_s
        while int(w[CTL_CMD_ACK]) < seq:
            if time.monotonic() > deadline:
                raise ControlError(f"connector {connector!r} did not apply the command within "
                                   f"{timeout_s:g} s")  # fmt: skip
            time.sleep(0.01)
        return int(w[CTL_TRADING])
    finally:
        os.close(lock)  # releases the lock
        seg.close()


def main(command: str, argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m hftlive {command}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("connector", help="the connector's name (python -m connector --name ...)")
    p.add_argument("--bot", type=int, default=None, metavar="ID", help="this bot only")
    if command == "halt":
        p.add_argument("--cancel", action="store_true", help="also cancel its open orders")
    args = p.parse_args(argv)
    cancel = getattr(args, "cancel", False) or command == "flatten"
    try:
        conn_state = send(args.connector, COMMANDS[command], args.bot, cancel,
                          flatten=command == "flatten")  # fmt: skip
    except ControlError as e:
        print(f"hftlive {command}: {e}", file=sys.stderr)
        return 2
    who = f"bot {args.bot} on {args.connector}" if args.bot is not None else args.connector
    if command == "flatten":
        print(f"{who}: halted, open orders cancelled, positions being closed with reduce-only "
              f"orders (the connector logs what it could not close); resume when done")  # fmt: skip
        return 0
    print(f"{who}: {TRADING_NAMES[COMMANDS[command]]}"
          + (" (open orders cancelled)" if cancel else "")
          + f"; connector {args.connector} is {TRADING_NAMES[conn_state]}")  # fmt: skip
    return 0
