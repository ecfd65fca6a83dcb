"""Bybit v5 retCodes the emulator returns, with their retMsg texts (venue_protocols.md §2.5).

Texts follow the docs' error page [BY error.mdx]; where Bybit's exact wording was not
available the text is ours (clients must branch on retCode, never on retMsg).
"""

from __future__ import annotations

MESSAGES = {
    10001: "params error",
    10002: "invalid request, please check your server timestamp or recv_window param",
    10003: "API key is invalid.",
    10004: "error sign! please check your signature generation algorithm",
    10006: "Too many visits!",
    10016: "Server Error",
    20006: "reqId is duplicated",
    10404: "op type is not found",
    110001: "order not exists or too late to cancel",
    110003: "Order price exceeds the allowable range.",
    110004: "Wallet balance is insufficient",
    110007: "ab not enough for new order",
    110008: "The order has been completed or cancelled.",
    110017: "orderQty will be truncated to zero.",
    110020: "Not allowed to have more than 500 active orders.",
    110072: "OrderLinkedID is duplicate",
    110094: "Order does not meet minimum order value",
    34040: "Not modified",
}


class BybitError(Exception):
    """A request the venue refuses: `retCode` and `retMsg` of the reply.

    Args:
        code: the retCode.
        msg: the retMsg; the code's standard text when omitted.
    """

    def __init__(self, code: int, msg: str | None = None):
        self.code = code
        self.msg = msg if msg is not None else MESSAGES.get(code, "error")
        super().__init__(f"{code}: {self.msg}")


# An order whose positionIdx does not fit the symbol's position mode (0 in one-way mode;
# 1 or 2 in hedge mode). Not on Bybit's error page; the code and text are those real v5
# replies carry as users report them: {"retCode":10001,"retMsg":"position idx not match
# position mode"} [3P ccxt/ccxt#16952, #17105, #16750 (2023); sieblyio/bybit-api#363 (2024)]
POSITION_IDX_MISMATCH = (10001, "position idx not match position mode")


def params(what: str) -> BybitError:
    """A 10001 naming what is wrong."""
    return BybitError(10001, f"params error: {what}")
