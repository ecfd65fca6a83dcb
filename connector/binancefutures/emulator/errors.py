"""Venue error replies of the emulator: `{"code":..,"msg":..}` with an HTTP status.

`ApiError` is raised anywhere in the emulator where Binance would answer with an error
body, and turned into the reply (REST body or WS-API `error` envelope) at the server edge.
Messages follow venue_protocols.md §1.8 and the USD-M error-code page [BN-ERR]; clients
should key on `code`, as the fact sheet advises.
"""

from __future__ import annotations

# code -> default message [BN-ERR] (texts marked [3P] in the fact sheet where relevant)
MESSAGES = {
    -1003: "Too many requests; current limit of IP(127.0.0.1) is {limit} requests per minute.",
    -1008: "Request throttled by system-level protection. Reduce-only/close-position orders "
    "are exempted. Please try again.",
    -1015: "Too many new orders; current limit is {limit} orders per {interval}.",
    -1020: "This operation is not supported.",
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1022: "Signature for this request is not valid.",
    -1100: "Illegal characters found in parameter '{name}'; legal range is '{legal}'.",
    -1102: "Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
    -1106: "Parameter '{name}' sent when not required.",
    -1111: "Precision is over the maximum defined for this asset.",
    -1115: "Invalid timeInForce.",
    -1116: "Invalid orderType.",
    -1117: "Invalid side.",
    -1121: "Invalid symbol.",
    -1125: "This listenKey does not exist.",
    -1131: "recvWindow must be less than 60000",
    -2011: "Unknown order sent.",
    -2013: "Order does not exist.",
    -2014: "API-key format invalid.",
    -2015: "Invalid API-key, IP, or permissions for action.",
    -2019: "Margin is insufficient.",
    -2022: "ReduceOnly Order is rejected.",
    -4003: "Quantity less than or equal to zero.",
    -4004: "Quantity less than min quantity.",
    -4005: "Quantity greater than max quantity.",
    -4013: "Price less than min price.",
    -4014: "Price not increased by tick size.",
    -4015: "Client order id is not valid.",
    -4016: "Limit price can't be higher than {limit}.",
    -4021: "Invalid depth limit.",
    -4023: "Quantity not increased by step size.",
    -4024: "Limit price can't be lower than {limit}.",
    -4061: "Order's position side does not match user's setting.",
    -4116: "ClientOrderId is duplicated.",
    -4164: "Order's notional must be no smaller than {limit} (unless you choose reduce only).",
    -5021: "Due to the order could not be filled immediately, the FOK order has been rejected. "
    "The order will not be recorded in the order history",
    -5022: "Due to the order could not be executed as maker, the Post Only order will be "
    "rejected. The order will not be recorded in the order history",
    -5027: "No need to modify the order.",
}

# HTTP status by code; anything else is 400 (§1.8: 4XX malformed request, 429/418 limits,
# 503 for -1008). The 401 of the API-key codes is what Binance answers for spot; for
# futures it is UNCONFIRMED.
STATUS = {-1003: 429, -1015: 429, -1008: 503, -2014: 401, -2015: 401}


class ApiError(Exception):
    """An error reply: `code` and `msg` for the body, `status` for HTTP (or WS-API).

    Args:
        code: Binance error code (negative).
        msg: message; default from MESSAGES, formatted with `fmt`.
        status: HTTP status; default from STATUS, else 400.
        retry_after_s: seconds for a Retry-After header (429/418), or None.
        fmt: values for the placeholders of the default message.
    """

    def __init__(
        self,
        code: int,
        msg: str | None = None,
        status: int | None = None,
        retry_after_s: int | None = None,
        **fmt: object,
    ):
        if msg is None:
            msg = MESSAGES.get(code, "Unknown error.")
            if fmt:
                msg = msg.format(**fmt)
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status if status is not None else STATUS.get(code, 400)
        self.retry_after_s = retry_after_s

    def body(self) -> dict:
        """The venue's error body."""
        return {"code": self.code, "msg": self.msg}


def missing(name: str) -> ApiError:
    """-1102 for a missing or empty mandatory parameter."""
    return ApiError(-1102, name=name)
