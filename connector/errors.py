"""Errors raised on the connector side.

Hierarchy::

    ConnectorError
    ├── ConfigError          a config file is missing, malformed, or has a bad/unknown/missing key
    │   └── HedgeModeError   the venue account is in hedge (two-sided) position mode, which
    │                        hftlive does not trade: refused at start, nothing sent
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


class HedgeModeError(ConfigError):
    """The venue account is set to hedge mode (two-sided positions: a long and a short leg
    per symbol), and the connector refuses to start on it.

    hftlive trades one signed position per instrument, as hftbacktest models it. On a
    hedge-mode account every order the bot sends would be refused by the venue, one by
    one (Binance -4061, Bybit 10001), after the connector said it was ready; so a venue
    checks the mode before the connector starts and raises this instead. The connector
    never switches the mode itself: it is the user's account setting, and venues refuse
    the switch while positions or orders are open anyway.

    It is a ConfigError (the account's configuration, not ours): `python -m connector`
    prints it as one line and exits 2.

    Args:
        venue: the venue as users know it ("Binance USD-M futures").
        evidence: what the venue said, e.g. "GET /fapi/v1/positionSide/dual:
            dualSidePosition=true".
        how_to_switch: the venue's way to switch to one-way mode (its web UI and API).
        running: found while the connector ran (the mode was switched since its start),
            not before it started: it stops, cancelling what it had open.
    """

    def __init__(self, venue: str, evidence: str, how_to_switch: str, running: bool = False):
        done = ("it stopped, cancelling what it had open" if running
                else "it sent no order and no cancel")  # fmt: skip
        super().__init__(
            f"the {venue} account is in hedge mode ({evidence}). hftlive trades one-way "
            f"positions (one signed position per instrument), as hftbacktest does, and "
            f"every order would be refused on a hedge-mode account. Switch the account to "
            f"one-way mode ({how_to_switch}) and start the connector again; it does not "
            f"change the mode itself, and {done}."
        )
        self.venue = venue
        self.evidence = evidence
