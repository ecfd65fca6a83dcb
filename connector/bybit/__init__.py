"""Bybit v5 linear perpetuals: the venue adapter (see client.py) and its loopback emulator."""
