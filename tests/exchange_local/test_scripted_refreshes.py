"""The pieces together, without the quoting loop: a scripted series of refreshes against the local exchange
(state from /info, ladder, diff, signed batches through the SDK, market steps). Zero rejections, the position
within its limit after every step, everything cancelled at the end, and our books equal the exchange's."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from hyperliquid.info import Info

from hyper_make.allocate import make_allocator
from hyper_make.connectors import HyperliquidClient
from hyper_make.defaults import default_snapshot
from hyper_make.exchange_local import LocalExchange, LocalServer, RandomWalkMarket
from hyper_make.instrument import InstrumentSpec
from hyper_make.ladder import build_ladder
from hyper_make.strategy import CloidFactory, plan_orders

BTC = InstrumentSpec(coin="BTC", sz_decimals=5, asset_id=0)
MAX_POSITION = 0.02  # coins: small, so that fills take the position near it


@pytest.mark.parametrize("allocator", ["entropy", "impact"])
def test_scripted_refreshes_stay_within_limits_and_reconcile(allocator):
    market = RandomWalkMarket({BTC: 90_000.5}, seed=7, trades_per_s=40.0, through_bps_mean=3.33, mean_trade_usd=3_000.0)
    ex = LocalExchange([BTC], market)
    with LocalServer(ex) as srv:
        wallet = Account.create()
        info = Info(srv.url, skip_ws=True)
        client = HyperliquidClient(wallet, base_url=srv.url, meta=info.meta(), coin="BTC")
        alloc = make_allocator(allocator)
        cloids = CloidFactory(1)
        rejected, max_abs_q = 0, 0.0
        for step in range(12):
            state = info.user_state(wallet.address)
            q = sum(float(p["position"]["szi"]) for p in state["assetPositions"] if p["position"]["coin"] == "BTC")
            max_abs_q = max(max_abs_q, abs(q))
            assert abs(q) <= MAX_POSITION + 1e-12
            book = info.l2_snapshot("BTC")["levels"]
            bid, ask = float(book[0][0]["px"]), float(book[1][0]["px"])
            snap = dataclasses.replace(
                default_snapshot(),
                mid_usd=0.5 * (bid + ask),
                best_bid_usd=bid,
                best_ask_usd=ask,
                inventory_coins=q,
                max_position_coins=MAX_POSITION,
            )
            ladder = build_ladder(snap, BTC, alloc, rng=step)
            plan = plan_orders(
                ladder, client.open_orders(), inventory_coins=q, max_position_coins=MAX_POSITION, cloids=cloids
            )
            rejected += sum(len(r.errors) for r in client.send(plan))
            ex.advance(2.0)
        # exit: cancel everything
        client.send(plan_orders([], client.open_orders(), inventory_coins=0.0, max_position_coins=1.0, cloids=cloids))
        assert client.open_orders() == []
        assert rejected == 0
        fills = info.user_fills(wallet.address)
        assert fills and max_abs_q > 0  # the market did trade with us
        q = sum(float(f["sz"]) * (1 if f["side"] == "B" else -1) for f in fills)
        state = info.user_state(wallet.address)
        (pos,) = [p["position"] for p in state["assetPositions"]] or [{"szi": "0"}]
        assert float(pos["szi"]) == pytest.approx(q, abs=1e-9)
        assert abs(q) <= MAX_POSITION + 1e-12
        cash = -sum(float(f["sz"]) * float(f["px"]) * (1 if f["side"] == "B" else -1) for f in fills)
        fees = sum(float(f["fee"]) for f in fills)
        equity = float(state["marginSummary"]["accountValue"])
        assert equity == pytest.approx(100_000.0 + cash - fees + q * market.mid("BTC"), abs=0.01)
