"""The reconnect rule (connector/reconnect.py), in memory: the clock and the sleep are
injected, each attempt is scripted, and the core is the real ConnectorCore in front of a
router that records what bots are told. No sockets, no sleeps."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from connector.core import ConnectorCore
from connector.reconnect import STABLE_S, backoff, keep_connected
from hftlive.constants import CONNECTION_RESTORED, ERR_CONNECTION
from tests.conftest import RecordingRouter, RecordingShm


def test_backoff_doubles_from_the_initial_delay_and_caps():
    assert list(itertools.islice(backoff(), 12)) == [
        0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0, 30.0
    ]  # fmt: skip
    assert list(itertools.islice(backoff(1.0, 3.0, 10.0), 5)) == [1.0, 3.0, 9.0, 10.0, 10.0]


class _Done(Exception):
    """The script ran out: ends keep_connected."""


class Harness:
    """Runs keep_connected over `script`: one entry per attempt, each
    ("refused",) : raises ConnectionRefusedError before opening
    ("up", lived_s, why) : opens, awaits up(), lives lived_s of the fake clock, ends with why
    ("raise", exc) : opens, awaits up(), then raises exc
    The fake clock advances only by the script and by the sleeps."""

    def __init__(self, script, on_up=None, on_down=None):
        self.script = list(script)
        self.now = 1000.0
        self.slept: list[float] = []
        self.events: list[str] = []  # the order things happened in
        self.router = RecordingRouter()
        self.shm = RecordingShm()
        self.core = ConnectorCore(self.shm, self.router, [])
        self.on_up = on_up
        self.on_down = on_down

    def clock(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s
        if not self.script:
            raise _Done

    async def connect_once(self, up) -> str:
        step = self.script.pop(0)
        self.events.append(f"attempt {step[0]}")
        if step[0] == "refused":
            raise ConnectionRefusedError(111, "Connection refused")
        await up()
        self.events.append("serving")
        if step[0] == "raise":
            raise step[1]
        self.now += step[1]
        return step[2]

    def run(self, **kw) -> None:
        async def main():
            await keep_connected("test stream", self.connect_once, self.core,
                                 sleep=self.sleep, clock=self.clock, **kw)  # fmt: skip

        with pytest.raises(_Done):
            asyncio.run(main())


def test_failed_attempts_back_off_and_bots_hear_of_the_loss_once():
    h = Harness([("refused",)] * 4)
    h.run()
    assert h.slept == [0.1, 0.2, 0.4, 0.8]
    assert h.router.told == [
        (ERR_CONNECTION, 0, "test stream lost: ConnectionRefusedError: [Errno 111] Connection "
                            "refused"),
    ]  # fmt: skip


def test_a_short_lived_connection_keeps_backing_off_a_stable_one_starts_over():
    h = Harness([
        ("refused",), ("refused",),
        ("up", 1.0, "closed"),  # not stable: the backoff goes on (0.4)
        ("up", STABLE_S, "closed"),  # stable: starts over (0.1)
        ("refused",),
    ])  # fmt: skip
    h.run()
    assert h.slept == [0.1, 0.2, 0.4, 0.1, 0.2]


def test_bots_hear_of_each_loss_once_and_of_each_restore_once():
    h = Harness([("up", 1.0, "silent for 1 s"), ("refused",), ("refused",), ("up", 1.0, "bye")])
    h.run()
    assert h.router.told == [
        (ERR_CONNECTION, 0, "test stream lost: silent for 1 s"),
        (ERR_CONNECTION, CONNECTION_RESTORED, "test stream restored"),
        (ERR_CONNECTION, 0, "test stream lost: bye"),
    ]


def test_on_up_runs_before_the_connection_counts_as_up_and_names_the_restore():
    h = Harness([("refused",), ("up", 1.0, "closed")])

    async def reconcile() -> str:
        h.events.append("on_up")
        assert h.router.told[-1][1] == 0  # not restored yet
        return "orders reconciled"

    h.run(on_up=reconcile, notice="test connection")
    assert h.events == ["attempt refused", "attempt up", "on_up", "serving"]
    assert [m for _, _, m in h.router.told] == [
        "test connection lost: ConnectionRefusedError: [Errno 111] Connection refused",
        "test connection restored; orders reconciled",
        "test connection lost: closed",
    ]


def test_a_failing_on_up_fails_the_attempt_and_on_down_follows_only_opened_connections():
    downs: list[str] = []
    calls = itertools.count()

    async def reconcile() -> str:
        if next(calls) == 0:
            raise ConnectionResetError("reconcile: reset")
        return ""

    h = Harness([("refused",), ("up", 1.0, "unused"), ("up", 2.0, "closed")])
    h.run(on_up=reconcile, on_down=downs.append)
    # the refused attempt never opened; the first opened one failed in on_up (no serving)
    assert downs == ["ConnectionResetError: reconcile: reset", "closed"]
    assert h.events == ["attempt refused", "attempt up", "attempt up", "serving"]
    assert h.slept == [0.1, 0.2, 0.4]
    assert [c for _, c, _ in h.router.told] == [0, CONNECTION_RESTORED, 0]


def test_a_bug_is_not_a_disconnect():
    class Bug(Exception):
        pass

    h = Harness([("up", 1.0, "closed"), ("raise", Bug("in the handler"))])
    with pytest.raises(Bug):
        asyncio.run(keep_connected("test stream", h.connect_once, h.core, sleep=h.sleep,
                                   clock=h.clock))  # fmt: skip
    assert h.slept == [0.1]


def test_only_the_listed_errors_count_as_a_failed_attempt():
    h = Harness([("raise", TimeoutError("open timed out")), ("raise", KeyError("x"))])
    with pytest.raises(KeyError):
        asyncio.run(keep_connected("t", h.connect_once, h.core, errors=(TimeoutError,),
                                   sleep=h.sleep, clock=h.clock))  # fmt: skip
    assert h.slept == [0.1]


def test_injected_delays_are_used_and_started_over():
    h = Harness([("refused",), ("up", STABLE_S, "closed"), ("refused",)])
    h.run(delays=lambda: iter([5.0, 7.0, 9.0]))
    assert h.slept == [5.0, 5.0, 7.0]  # the stable connection started the delays over


def test_cancellation_propagates_and_leaves_no_notice():
    async def main():
        h = Harness([])
        opened = asyncio.Event()

        async def connect_once(up):
            await up()
            opened.set()
            await asyncio.Event().wait()  # serving forever
            return "unreachable"

        t = asyncio.create_task(keep_connected("t", connect_once, h.core))
        await asyncio.wait_for(opened.wait(), 5.0)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert h.router.told == []  # never lost, never restored

    asyncio.run(main())
