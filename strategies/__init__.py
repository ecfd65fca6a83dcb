"""Example strategies: plain @njit functions that run in an hftbacktest backtest and live."""
