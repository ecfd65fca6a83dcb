"""Run the tutorial grid strategy live on a running connector: the README's example.

    python -m connector --name sim --connector sim --config examples/sim.toml &
    python examples/run_grid.py sim                  # Ctrl-C to stop

It starts nothing itself: it attaches to the connector named on the command line, runs
`strategies/grid.py` (the same @njit function an hftbacktest backtest runs) with a
Recorder, prints every order update and error as it happens, and when the run ends
(Ctrl-C, SIGTERM, or the connector stopping) saves the record, which `hftbacktest.stats`
reads.
"""

from __future__ import annotations

import argparse
import sys

# --- the README's sample, part 1
from hftlive import Instrument, LiveBot
from hftlive.recorder import Recorder  # hftbacktest.recorder.Recorder works as well
from strategies.grid import gridtrading


def on_error(err):
    """Errors: venue rejections (with the venue's code), connection loss, resyncs, shutdown."""
    print(f"error: kind {err.kind} code {err.code} order {err.order_id}: {err.msg}", flush=True)


def on_order(prev, new):
    """Every update of one of this bot's orders (hftbacktest's order_dtype records)."""
    print(f"order {new['order_id']}: status {prev['status']} -> {new['status']}, "
          f"filled {new['exec_qty']} @ {new['exec_price_tick']} ticks", flush=True)  # fmt: skip


# --- end of part 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("connector", help="the --name of a running connector")
    p.add_argument("--symbol", default="btcusdt")
    p.add_argument("--tick", type=float, default=0.1, help="tick size (the venue's)")
    p.add_argument("--lot", type=float, default=0.001, help="lot size (the venue's)")
    p.add_argument("--qty", type=float, default=0.001, help="order quantity")
    p.add_argument("--id", type=int, default=None, help="bot id (default: random)")
    p.add_argument("--record", default="grid_record.npz", help="where to save the record")
    args = p.parse_args(argv)

    # --- the README's sample, part 2
    builder = (
        LiveBot.builder()
        # the connector's name, a symbol it serves, the venue's tick and lot sizes
        .register(Instrument(args.connector, args.symbol, args.tick, args.lot))
        .error_handler(on_error)  # optional
        .order_recv_hook(on_order)  # optional
    )
    if args.id is not None:
        builder.id(args.id)  # optional; random by default
    hbt = builder.build()
    print(f"bot id {hbt.bot_id} on connector {args.connector!r}", flush=True)
    recorder = Recorder(1, 1_000_000)  # one asset, up to 1,000,000 records (one per 100 ms)
    # the same @njit function you backtested; returns when elapse() returns 1
    gridtrading(hbt, recorder.recorder, args.qty, 10 * args.qty, 5, 20, 10)
    sv = hbt.state_values(0)
    print(f"trades {sv.num_trades}, position {sv.position:+.3f}, fees {sv.fee:.4f}")
    hbt.close()
    recorder.to_npz(args.record)  # {"0": record_dtype rows of asset 0}
    # --- end of part 2
    print(f"{len(recorder.get(0))} records saved to {args.record}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
