"""Venue-neutral parts of the loopback emulators (Binance USD-M, Bybit v5).

* `book`: the venue's own integer-tick book per symbol (`SymbolSpec`, `LevelBook`,
  `SymbolMarket`), which also serves as `connector.matching.Book`.
* `market`: the market sources, a seeded synthetic market and the replay of a Binance
  capture (`<local ns> <raw JSON>` per line). Both yield messages in the capture's own
  (Binance) shape, the kit's internal format; each emulator re-encodes them for its wire.

Each emulator keeps its wire (REST, streams, signatures, codes) in its own package and
matches orders with `connector.matching.MatchingEngine`.
"""
