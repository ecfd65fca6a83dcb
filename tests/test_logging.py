"""The connector's log: JSON lines with structured order events, a rotated log file, and
one line per order event that names the bot, the order and the venue's ids."""

from __future__ import annotations

import json
import logging

from connector.logsetup import JsonFormatter, configure
from hftlive import GTX, LIMIT, Instrument, LiveBot

from .conftest import wait_book, wait_until


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_json_log_file_has_every_order_event_of_a_bot_with_its_ids(make_connector, tmp_path):
    log = tmp_path / "conn.jsonl"
    c = make_connector()
    c.log_args = ["--log-format", "json", "--log-file", str(log)]
    c.start()
    hbt = LiveBot.builder().register(Instrument(c.name, "btcusdt", 0.1, 0.001)).id(31).build()
    try:
        wait_book(hbt)
        px = round(hbt.depth(0).best_bid * 0.98, 1)
        assert hbt.submit_buy_order(0, 5, px, 0.001, GTX, LIMIT, True) == 0
        assert hbt.cancel(0, 5, True) == 0
        assert hbt.submit_buy_order(0, 6, px, 1e6, GTX, LIMIT, True) == 0  # the risk limit

        def logged():
            return [d for d in _lines(log) if d.get("bot") == 31]

        wait_until(lambda: len([d for d in logged() if d["event"] == "order_refused"]) == 1, 20,
                   "the refused order in the log")  # fmt: skip
    finally:
        hbt.close()
    events = logged()
    assert all(d["connector"] == c.name and d["logger"] == "connector.orders" for d in events)
    five = [(d["event"], d.get("request") or d.get("status")) for d in events if d["order_id"] == 5]
    assert five == [("order_request", "submit"), ("order", "NEW"), ("order_request", "cancel"),
                    ("order", "CANCELED")]  # fmt: skip
    request, refused = [d for d in events if d["order_id"] == 6]
    assert (request["event"], refused["event"]) == ("order_request", "order_refused")
    assert refused["reject_code"] < 0
    assert "max_position" in refused["reject_msg"] or "notional" in refused["reject_msg"]
    assert all(d["symbol"] == "btcusdt" for d in events)


def test_the_log_file_rotates_and_keeps_its_backups(tmp_path):
    path = tmp_path / "c.log"
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure("rot", "INFO", "json", str(path), max_mb=0.001, backups=2)
        for i in range(200):
            logging.getLogger("connector.test").info("line %d", i, extra={"event": "x", "i": i})
    finally:
        for h in root.handlers:
            h.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["c.log", "c.log.1", "c.log.2"]
    last = _lines(path)[-1]
    assert (last["msg"], last["i"], last["event"], last["connector"]) == ("line 199", 199, "x", "rot")


def test_bad_log_options_are_clear_errors(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="unknown level 'LOUD'"):
        configure("x", "LOUD")
    with pytest.raises(ValueError, match="--log-format must be text or json"):
        configure("x", "INFO", "xml")
    with pytest.raises(ValueError, match="--log-file .*: No such file or directory"):
        configure("x", "INFO", "json", str(tmp_path / "missing" / "c.log"))


def test_json_formatter_writes_exceptions_and_non_json_values():
    rec = logging.LogRecord("n", logging.ERROR, "f", 1, "boom %s", ("x",), None)
    rec.obj = object()
    d = json.loads(JsonFormatter("c").format(rec))
    assert d["msg"] == "boom x" and d["level"] == "ERROR" and d["obj"].startswith("<object")
