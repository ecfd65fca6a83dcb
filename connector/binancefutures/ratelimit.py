"""Binance USD-M futures rate limits as the venue reports them, and the throttle before them
(venue_protocols.md §1.6, §1.8). Pure logic: the caller passes the venue clock.

What the venue says, and how it is kept:

* `X-MBX-USED-WEIGHT-1M` on every REST reply, and the `rateLimits` array of every WS-API
  response: the IP's request weight used in the current minute.
* `X-MBX-ORDER-COUNT-10S` / `-1M` on order replies (`rateLimits` type ORDERS on the WS-API):
  the account's orders in the current 10 s and minute. Rejected orders may lack them.
* 429 (a limit broken) and 418 (banned for ignoring 429s) with `Retry-After` seconds.

Counts hold for the window they were read in (fixed windows aligned on the interval, as
the venue counts them: the emulator's Gate does the same) and count 0 once it has passed.
Between replies, every order we send is counted locally, so a burst cannot run past the
limit while its replies are still in flight.

The throttle: a new or modified order is refused locally once either order count reaches
`headroom` of its limit (default 90 %); any request waits for the next minute when its
weight would take the used weight past `headroom` of the weight limit, except order
requests, which only refuse at the limit itself (a cancel must get through). During a
Retry-After nothing is sent at all: a request sent then is what turns a 429 into a 418 ban.
Limits come from exchangeInfo `rateLimits` (`set_limits`); until then the production
values (2400 weight/min, 300 orders/10 s, 1200 orders/min) apply.
"""

from __future__ import annotations

from collections.abc import Mapping

from connector.pause import Pause

WEIGHT_LIMIT = 2400
ORDERS_10S_LIMIT = 300
ORDERS_1M_LIMIT = 1200
RATE_LIMITED = (418, 429)
_WINDOW_MS = {("SECOND", 10): 10_000, ("MINUTE", 1): 60_000}


class _Window:
    """A count within one fixed window of `ms` milliseconds, and the venue's limit on it."""

    __slots__ = ("ms", "limit", "idx", "n")

    def __init__(self, ms: int, limit: int):
        self.ms, self.limit, self.idx, self.n = ms, limit, -1, 0

    def get(self, now_ms: int) -> int:
        return self.n if now_ms // self.ms == self.idx else 0

    def set(self, now_ms: int, n: int) -> None:
        idx = now_ms // self.ms
        # a reply read late must not lower a count the window has already seen
        self.n = max(self.n, n) if idx == self.idx else n
        self.idx = idx

    def add(self, now_ms: int, n: int = 1) -> None:
        self.set(now_ms, self.get(now_ms) + n)

    def left_ms(self, now_ms: int) -> int:
        return self.ms - now_ms % self.ms


class RateLimits:
    """The venue's counters for one account and IP, and what may be sent now.

    Args:
        headroom: the fraction of a limit the throttle lets us use.
    """

    def __init__(self, headroom: float = 0.9):
        self.headroom = headroom
        self.weight = _Window(60_000, WEIGHT_LIMIT)
        self.orders_10s = _Window(10_000, ORDERS_10S_LIMIT)
        self.orders_1m = _Window(60_000, ORDERS_1M_LIMIT)
        self.pause = Pause()  # the kernel's pause: Retry-After

    @property
    def weight_limit(self) -> int:
        return self.weight.limit

    @property
    def orders_10s_limit(self) -> int:
        return self.orders_10s.limit

    @property
    def orders_1m_limit(self) -> int:
        return self.orders_1m.limit

    def set_limits(self, rate_limits: list) -> None:
        """Takes exchangeInfo's `rateLimits` [{rateLimitType, interval, intervalNum, limit}]."""
        self._each(rate_limits, "limit", lambda w, v: setattr(w, "limit", v))

    # ------------------------------------------------------------------ what the venue said
    def on_headers(self, headers: Mapping[str, str], status: int, now_ms: int) -> None:
        """A REST reply's headers [BN-GI]."""
        for name, w in (
            ("X-MBX-USED-WEIGHT-1M", self.weight),
            ("X-MBX-ORDER-COUNT-10S", self.orders_10s),
            ("X-MBX-ORDER-COUNT-1M", self.orders_1m),
        ):
            v = headers.get(name)
            if v is not None and v.isdigit():
                w.set(now_ms, int(v))
        if status in RATE_LIMITED:
            self.block(headers.get("Retry-After", ""))

    def on_ws_limits(self, rate_limits: object, now_ms: int) -> None:
        """A WS-API response's `rateLimits` array [BN-WSAPI]."""
        self._each(rate_limits, "count", lambda w, v: w.set(now_ms, v))

    def _each(self, rate_limits: object, field: str, apply) -> None:
        """`apply(window, entry[field])` for each well-formed `rateLimits` entry we track."""
        if not isinstance(rate_limits, list):
            return
        for r in rate_limits:
            if not isinstance(r, Mapping) or not isinstance(r.get(field), int):
                continue
            w = self._window(r.get("rateLimitType"), r.get("interval"), r.get("intervalNum"))
            if w is not None:
                apply(w, r[field])

    def _window(self, kind, interval, num) -> _Window | None:
        ms = _WINDOW_MS.get((interval, num))
        if kind == "REQUEST_WEIGHT" and ms == 60_000:
            return self.weight
        if kind == "ORDERS":
            return {10_000: self.orders_10s, 60_000: self.orders_1m}.get(ms)
        return None

    def block(self, retry_after: str | float | None) -> None:
        """A 429/418: nothing is sent for `retry_after` seconds (60 if not given)."""
        try:
            wait = float(retry_after)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            wait = 60.0
        self.pause.block(wait)

    # ------------------------------------------------------------------ what we may send
    def blocked_for(self) -> float:
        """Seconds left of a venue-imposed pause (429/418 Retry-After), 0 if none."""
        return self.pause.left_s()

    def order_refusal(self, now_ms: int, new_order: bool) -> str | None:
        """Why an order request may not go now, or None. `new_order`: place or modify."""
        wait = self.blocked_for()
        if wait > 0:
            return f"the venue asked to back off; {wait:.1f} s left"
        if self.weight.get(now_ms) >= self.weight.limit:
            return f"request weight at the limit ({self.weight.limit}/min)"
        if not new_order:
            return None
        for w, what in ((self.orders_10s, "10 s"), (self.orders_1m, "minute")):
            if w.get(now_ms) >= self.headroom * w.limit:
                return (
                    f"throttled: {w.get(now_ms)} orders this {what}, limit {w.limit} "
                    f"({w.left_ms(now_ms) / 1e3:.1f} s to the next window)"
                )
        return None

    def weight_wait_s(self, weight: int, now_ms: int) -> float:
        """Seconds to wait before a request of `weight` (0: send now)."""
        if self.weight.get(now_ms) + weight <= self.headroom * self.weight.limit:
            return 0.0
        return self.weight.left_ms(now_ms) / 1e3

    def sent(self, now_ms: int, weight: int, new_order: bool = False) -> None:
        """Counts a request (and a new or modified order) being sent, until the venue's
        reply says the exact figure."""
        if weight:
            self.weight.add(now_ms, weight)
        if new_order:
            self.orders_10s.add(now_ms)
            self.orders_1m.add(now_ms)
