"""Order path latency on the bybit adapter: see bench/order_path.py.

    python -m bench.bybit_order_path [--n 200] [--policy yield|spin|sleep] [--modes rest,ws]
"""

import sys

from bench.order_path import main

if __name__ == "__main__":
    try:
        sys.exit(main(venue_name="bybit"))
    except KeyboardInterrupt:
        print("interrupted; child processes stopped", file=sys.stderr)
        sys.exit(130)
