"""Errors raised on the connector side.

Hierarchy::

    ConnectorError
    ├── ConfigError          a config file is missing, malformed, or has a bad/unknown/missing key
    ├── VenueRejected        the venue refused a request; carries the venue's code and message
    ├── VenueProtocolError   the venue broke its contract (malformed or unexpected message)
    ├── RequestFailed        no reply came back; `sent` tells whether the venue may have
    │                        executed the request (a timeout: maybe; a refused connection:
    │                        no)
    └── UsageError           we misused our own API (a bug on our side, or a bad bot request)

A book gap is not an exception: it is a state transition of the book synchroniser.
Rejections reach bots as order records carrying the venue code, not as exceptions.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class of every error raised by the connector package."""


class ConfigError(ConnectorError):
    """A configuration problem; the message names the key and the file."""


class VenueRejected(ConnectorError):
    """The venue rejected a request.

    Attributes:
        code: the venue's error code (e.g. Binance -2019).
        msg: the venue's message.
    """

    def __init__(self, code: int, msg: str):
        super().__init__(f"venue rejected the request: code {code}: {msg}")
        self.code = code
        self.msg = msg


class VenueProtocolError(ConnectorError):
    """The venue sent something that breaks its documented contract."""


class UsageError(ConnectorError):
    """Our own API was misused."""


class RequestFailed(ConnectorError):
    """No reply came back. `sent`: the venue may have executed the request."""

    def __init__(self, what: str, sent: bool):
        super().__init__(what)
        self.sent = sent
