"""Account views of the emulator: `GET /fapi/v2|v3/account`, `/balance`, `/v3/positionRisk`.

Shapes follow venue_protocols.md §1.6 and, where it is silent, Binance's USD-M pages
("Account Information V2/V3", "Futures Account Balance V2/V3", "Position Information
V3"): every amount a JSON string, times and `adl` integers, `marginAvailable`/`isolated`
booleans. The account is one-way, cross margin, USDT only (exchange.py), so isolated
fields are "0" and the totals equal the USDT asset's.

Margin model (the emulator checks no margin; these numbers are for shape and
consistency, not risk): leverage 20 for every symbol, so initial margin is notional / 20
(exchangeInfo's `requiredMarginPercent` 5 %), maintenance margin notional * 2.5 %
(`maintMarginPercent`), open orders reserve their remaining notional / 20. Notional is
positionAmt * mark, the mark being the book's mid (orders.py). Available balance is
wallet + unrealized PnL - initial margins, never below zero.

Pure functions of the Account (no I/O): each takes (account, params, now_ms) and returns
(body, no user events), as the other endpoint handlers do.
"""

from __future__ import annotations

LEVERAGE = 20
MAINT_RATE = 0.025  # exchangeInfo maintMarginPercent "2.5000"
ASSET = "USDT"


def _f(x: float) -> str:
    return f"{x:.8f}"


def _symbol_figures(acct, sym: str) -> dict:
    """A symbol's position and margin figures as floats."""
    pos, spec = acct.positions[sym], acct.markets[sym].spec
    mark = acct.mark_px(sym) or pos.entry_px
    amt = pos.lots * spec.step
    notional = amt * mark
    bid = ask = 0.0
    for oid in acct.open_ids[sym].values():
        o = acct.orders[oid]
        left = (o.qty_lots - o.cum_lots) * spec.step * (o.px_tick * spec.tick or mark)
        if o.side == "BUY":
            bid += left
        else:
            ask += left
    return {
        "amt": amt,
        "mark": mark,
        "notional": notional,
        "upnl": (mark - pos.entry_px) * amt if amt else 0.0,
        "im": abs(notional) / LEVERAGE,
        "mm": abs(notional) * MAINT_RATE,
        "oim": (bid + ask) / LEVERAGE,
        "bid": bid,
        "ask": ask,
    }


def _active(acct, sym: str) -> bool:
    """v3 lists only symbols with a position or open orders [BN positionRisk v3]."""
    return acct.positions[sym].lots != 0 or bool(acct.open_ids[sym])


def _symbols(acct, p: dict) -> list[str]:
    return [acct.market(p).spec.symbol] if p.get("symbol") else list(acct.markets)


def _totals(acct) -> dict:
    figs = [_symbol_figures(acct, s) for s in acct.markets]
    upnl = sum(f["upnl"] for f in figs)
    im = sum(f["im"] for f in figs)
    oim = sum(f["oim"] for f in figs)
    mm = sum(f["mm"] for f in figs)
    available = max(0.0, acct.wallet + upnl - im - oim)
    return {"upnl": upnl, "im": im, "oim": oim, "mm": mm, "available": available}


def _last_update(acct) -> int:
    return max((p.update_ms for p in acct.positions.values()), default=0)


def _asset(acct, t: dict) -> dict:
    wallet = acct.wallet
    return {
        "asset": ASSET,
        "walletBalance": _f(wallet),
        "unrealizedProfit": _f(t["upnl"]),
        "marginBalance": _f(wallet + t["upnl"]),
        "maintMargin": _f(t["mm"]),
        "initialMargin": _f(t["im"] + t["oim"]),
        "positionInitialMargin": _f(t["im"]),
        "openOrderInitialMargin": _f(t["oim"]),
        "crossWalletBalance": _f(wallet),
        "crossUnPnl": _f(t["upnl"]),
        "availableBalance": _f(t["available"]),
        "maxWithdrawAmount": _f(t["available"]),
    }


def _account_totals(acct, t: dict) -> dict:
    wallet = acct.wallet
    return {
        "totalInitialMargin": _f(t["im"] + t["oim"]),
        "totalMaintMargin": _f(t["mm"]),
        "totalWalletBalance": _f(wallet),
        "totalUnrealizedProfit": _f(t["upnl"]),
        "totalMarginBalance": _f(wallet + t["upnl"]),
        "totalPositionInitialMargin": _f(t["im"]),
        "totalOpenOrderInitialMargin": _f(t["oim"]),
        "totalCrossWalletBalance": _f(wallet),
        "totalCrossUnPnl": _f(t["upnl"]),
        "availableBalance": _f(t["available"]),
        "maxWithdrawAmount": _f(t["available"]),
    }


def account_v3(acct, p: dict, now_ms: int) -> tuple[dict, list]:
    """GET /fapi/v3/account (§1.6): totals, assets[], positions[] of active symbols only."""
    t = _totals(acct)
    positions = []
    for s in acct.markets:
        if not _active(acct, s):
            continue
        f, spec = _symbol_figures(acct, s), acct.markets[s].spec
        positions.append(
            {
                "symbol": spec.upper,
                "positionSide": "BOTH",
                "positionAmt": spec.qty(acct.positions[s].lots),
                "unrealizedProfit": _f(f["upnl"]),
                "isolatedMargin": "0",
                "notional": _f(f["notional"]),
                "isolatedWallet": "0",
                "initialMargin": _f(f["im"] + f["oim"]),
                "maintMargin": _f(f["mm"]),
                "updateTime": acct.positions[s].update_ms,
            }
        )
    body = _account_totals(acct, t)
    body["assets"] = [{**_asset(acct, t), "updateTime": _last_update(acct)}]
    body["positions"] = positions
    return body, []


def account_v2(acct, p: dict, now_ms: int) -> tuple[dict, list]:
    """GET /fapi/v2/account: account flags, totals, assets[] and every symbol's position."""
    t = _totals(acct)
    body: dict = {
        "feeTier": 0,
        "feeBurn": False,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "updateTime": 0,
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
        **_account_totals(acct, t),
    }
    asset = {**_asset(acct, t), "marginAvailable": True, "updateTime": _last_update(acct)}
    body["assets"] = [asset]
    positions = []
    for s in acct.markets:
        f, spec, pos = _symbol_figures(acct, s), acct.markets[s].spec, acct.positions[s]
        positions.append(
            {
                "symbol": spec.upper,
                "initialMargin": _f(f["im"] + f["oim"]),
                "maintMargin": _f(f["mm"]),
                "unrealizedProfit": _f(f["upnl"]),
                "positionInitialMargin": _f(f["im"]),
                "openOrderInitialMargin": _f(f["oim"]),
                "leverage": str(LEVERAGE),
                "isolated": False,
                "entryPrice": _f(pos.entry_px),
                "breakEvenPrice": _f(pos.entry_px),
                "maxNotional": "1000000",
                "bidNotional": _f(f["bid"]),
                "askNotional": _f(f["ask"]),
                "positionSide": "BOTH",
                "positionAmt": spec.qty(pos.lots),
                "updateTime": pos.update_ms,
            }
        )
    body["positions"] = positions
    return body, []


def balance(acct, p: dict, now_ms: int) -> tuple[list, list]:
    """GET /fapi/v2/balance and /fapi/v3/balance (same shape): one entry per asset."""
    t = _totals(acct)
    return [
        {
            "accountAlias": "SgsR",
            "asset": ASSET,
            "balance": _f(acct.wallet),
            "crossWalletBalance": _f(acct.wallet),
            "crossUnPnl": _f(t["upnl"]),
            "availableBalance": _f(t["available"]),
            "maxWithdrawAmount": _f(t["available"]),
            "marginAvailable": True,
            "updateTime": _last_update(acct),
        }
    ], []


def position_risk_v3(acct, p: dict, now_ms: int) -> tuple[list, list]:
    """GET /fapi/v3/positionRisk (§1.6): symbols with a position or open orders only."""
    out = []
    for s in _symbols(acct, p):
        if not _active(acct, s):
            continue
        f, spec, pos = _symbol_figures(acct, s), acct.markets[s].spec, acct.positions[s]
        out.append(
            {
                "symbol": spec.upper,
                "positionSide": "BOTH",
                "positionAmt": spec.qty(pos.lots),
                "entryPrice": _f(pos.entry_px),
                "breakEvenPrice": _f(pos.entry_px),
                "markPrice": _f(f["mark"]),
                "unRealizedProfit": _f(f["upnl"]),
                "liquidationPrice": "0",
                "isolatedMargin": "0",
                "notional": _f(f["notional"]),
                "marginAsset": ASSET,
                "isolatedWallet": "0",
                "initialMargin": _f(f["im"] + f["oim"]),
                "maintMargin": _f(f["mm"]),
                "positionInitialMargin": _f(f["im"]),
                "openOrderInitialMargin": _f(f["oim"]),
                "adl": 0,
                "bidNotional": _f(f["bid"]),
                "askNotional": _f(f["ask"]),
                "updateTime": pos.update_ms,
            }
        )
    return out, []
