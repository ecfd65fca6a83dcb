"""What signing costs per Binance request: an HMAC secret against an Ed25519 key.

Every signed Binance request (a REST order, or a WebSocket-API `order.place`: hftlive does
not use `session.logon`) is signed whole. Timed here: `signing.sign_ws_params` and
`signing.sign_params` over a GTX limit order's params (the connector's own calls: sort,
URL-encode, sign), N calls per loop, the median of REPS loops, with an HMAC secret and with
an Ed25519 PEM key (`cryptography`); the baseline is the HMAC figure of the same run.

    python -m bench.signing [--n 5000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from bench._common import figure, machine_note, table, write_figures
from connector.binancefutures.signing import Credentials, sign_params, sign_ws_params

REPS = 7
PARAMS = {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTX",
          "quantity": "0.010", "price": "2500.00", "newClientOrderId": "hlm3x9k2q-1a",
          "newOrderRespType": "RESULT"}  # fmt: skip
KEY = "bench-api-key-0123456789abcdef0123456789abcdef0123456789abcdef0123"


def _ed25519_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()  # fmt: skip


def _per_call_us(fn, n: int) -> float:
    """Median over REPS loops of n calls, us per call."""
    fn()  # warm
    runs = []
    for _ in range(REPS):
        t = time.perf_counter_ns()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter_ns() - t) / n / 1000)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.signing", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--n", type=int, default=5000, help="calls per loop (default 5000)")
    a = ap.parse_args(argv)
    print(f"bench.signing: {a.n} signatures per loop, median of {REPS} loops; "
          f"{machine_note()}")  # fmt: skip
    hmac_creds = Credentials(KEY, "bench-secret-0123456789abcdef0123456789abcdef0123456789abcdef")
    ed_creds = Credentials(KEY, _ed25519_pem())
    ts = 1_700_000_000_000
    us = {}
    for kind, creds in (("hmac", hmac_creds), ("ed25519", ed_creds)):
        us[kind, "ws"] = _per_call_us(lambda c=creds: sign_ws_params(PARAMS, c, ts, 5000), a.n)
        us[kind, "rest"] = _per_call_us(lambda c=creds: sign_params(PARAMS, c, ts, 5000), a.n)
    rows = [[f"{path} ({'WebSocket API' if path == 'ws' else 'REST query'})",
             f"{us['hmac', path]:.2f}", f"{us['ed25519', path]:.2f}",
             f"{us['ed25519', path] / us['hmac', path]:.1f}x"] for path in ("ws", "rest")]  # fmt: skip
    print(table(["one order's signed params", "HMAC us", "Ed25519 us", "Ed25519 / HMAC"], rows))
    samples = REPS * a.n
    write_figures({
        "sign_hmac_ws_us": figure(us["hmac", "ws"], "us", None, samples),
        "sign_ed25519_ws_us": figure(us["ed25519", "ws"], "us", us["hmac", "ws"], samples),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
