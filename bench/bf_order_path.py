"""Order path latency on the binancefutures adapter: see bench/order_path.py.

    python -m bench.bf_order_path [--n 200] [--policy yield|spin|sleep] [--modes rest,ws]
"""

import sys

from bench.order_path import main

if __name__ == "__main__":
    try:
        sys.exit(main(venue_name="binancefutures"))
    except KeyboardInterrupt:
        print("interrupted; child processes stopped", file=sys.stderr)
        sys.exit(130)
