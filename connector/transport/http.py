"""One kept-alive HTTP session to one venue's REST base URL, and whether a request was sent.

A venue's REST client sits on top: it builds the query (and signs it), adds its headers,
counts its weights and reads its rate-limit headers; this module only moves the request
and tells the three outcomes apart:

* a response (any HTTP status): `Response(status, headers, raw)`; what a status means is
  the venue's business;
* no response, and the request may have reached the venue (a timeout, a connection lost
  after sending): `RequestFailed(sent=True)`: the outcome is unknown, the caller asks;
* no response, and the request cannot have left (the connection could not be made):
  `RequestFailed(sent=False)`: safe to treat as not done.

A request is sent once, never retried. The query goes to aiohttp already encoded
(`yarl.URL(..., encoded=True)`) so that the bytes on the wire are the bytes the venue
signed. Messages never carry a query string (it may hold a signature).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import yarl

from connector.errors import RequestFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # case-insensitive, as aiohttp gives them
    raw: bytes


class HttpSession:
    """`async with HttpSession(base_url) as s: await s.request(...)`. One event loop.

    Args:
        base_url: scheme, host and any path prefix (a trailing slash is dropped).
        timeout_s: the longest a request may take, connecting included; past it the
            request counts as sent with no response.
        max_connections: connections kept open to the host at most.
        keepalive_s: how long an idle connection is kept.
    """

    def __init__(self, base_url: str, timeout_s: float = 10.0, max_connections: int = 64,
                 keepalive_s: float = 60.0):  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpSession:
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            connector=aiohttp.TCPConnector(
                limit=self.max_connections, keepalive_timeout=self.keepalive_s
            ),
        )
        return self

    async def __aexit__(self, *exc) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def request(self, method: str, path: str, query: str = "",
                      headers: Mapping[str, str] | None = None,
                      body: bytes | None = None) -> Response:  # fmt: skip
        """Sends `method base_url+path?query` once; returns the response, whatever its status.

        Args:
            path: from the base URL on, starting with "/".
            query: already encoded (and signed); "" for none.
            body: the request body (its Content-Type goes in `headers`).

        Raises:
            RequestFailed: no response; `sent` says whether the venue may have it.
        """
        assert self.session is not None, "use `async with HttpSession(...)`"
        what = f"{method} {path}"
        url = yarl.URL(f"{self.base_url}{path}?{query}" if query else self.base_url + path,
                       encoded=True)  # fmt: skip
        try:
            async with self.session.request(method, url, headers=headers, data=body) as resp:
                raw = await resp.read()
                return Response(resp.status, resp.headers, raw)
        except TimeoutError:
            raise RequestFailed(f"{what}: no reply within {self.timeout_s} s",
                                sent=True) from None  # fmt: skip
        except aiohttp.ClientConnectorError as e:
            raise RequestFailed(f"{what}: cannot connect: {e.strerror}", sent=False) from None
        except aiohttp.ClientError as e:
            # never a signed URL in a message: cut any query string aiohttp quotes
            cause = str(e).split("?", 1)[0]
            raise RequestFailed(f"{what}: {type(e).__name__}: {cause}", sent=True) from None
