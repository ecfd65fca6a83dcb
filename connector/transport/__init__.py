"""Venue-neutral transports: what every venue adapter connects through.

* `md`: the market-data WebSocket connection (picows): each message handed to a callback
  from inside the socket's read, and the stale-stream watchdog.
* `wsrpc`: requests over a kept-open WebSocket, matched to their responses by id; the
  venue supplies the envelope (`Codec`).
* `http`: the kept-alive HTTP session; the venue adds signing, headers and weights.

Each is driven by `connector.reconnect` where it holds a connection open. Failures of a
request raise `connector.errors.RequestFailed`, whose `sent` tells whether the venue may
have acted on it.
"""
