"""One-way position accounting of the emulators: size, entry price, realized PnL.

Pure arithmetic, venue-neutral: quantities are signed integer lots of the symbol's step,
prices floats. Opening or adding averages the entry price; reducing realizes PnL at the
entry price; a flip re-opens the remainder at the fill price.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Position:
    """A one-way position (lots signed: > 0 long, < 0 short)."""

    lots: int = 0
    entry_px: float = 0.0
    realized: float = 0.0  # accumulated realized PnL, fees not included
    update_ms: int = 0
    created_ms: int = 0

    def fill(self, signed_lots: int, px: float, step: float, now_ms: int) -> float:
        """Applies one fill; returns the PnL it realized (quote currency)."""
        realized = 0.0
        old = self.lots
        new = old + signed_lots
        if old == 0 or (old > 0) == (signed_lots > 0):  # opening or adding
            self.entry_px = (self.entry_px * abs(old) + px * abs(signed_lots)) / abs(new)
        else:  # reducing, closing or flipping
            closed = min(abs(old), abs(signed_lots))
            realized = (px - self.entry_px) * closed * step * (1 if old > 0 else -1)
            if new == 0:
                self.entry_px = 0.0
            elif (new > 0) != (old > 0):
                self.entry_px = px
        if old == 0 and new != 0:
            self.created_ms = now_ms
        self.lots = new
        self.realized += realized
        self.update_ms = now_ms
        return realized
