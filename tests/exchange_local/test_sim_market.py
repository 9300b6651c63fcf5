"""The local exchange over the event simulator: our resting orders queue and fill inside hyper_make.sim."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from hyper_make.allocate import make_allocator
from hyper_make.connectors import HyperliquidClient
from hyper_make.defaults import default_snapshot
from hyper_make.exchange_local import LocalExchange, LocalServer, SimMarket
from hyper_make.instrument import InstrumentSpec
from hyper_make.ladder import LadderConfig, build_ladder
from hyper_make.levels import GridConfig
from hyper_make.strategy import CloidFactory, plan_orders

BTC = InstrumentSpec(coin="BTC", sz_decimals=5, asset_id=0)
MAX_POSITION = 0.05  # coins
#: a tight ladder (0.5 to 20 bps) so that the simulator's flow reaches it within a short test
TIGHT = LadderConfig(grid=GridConfig(n_levels=6, min_depth_bps=0.5, max_depth_bps=20.0))


def test_refreshes_on_the_simulator_fill_reconcile_and_match_its_inventory():
    market = SimMarket(BTC, seed=11)
    ex = LocalExchange([BTC], market)
    with LocalServer(ex) as srv:
        wallet = Account.create()
        info = Info(srv.url, skip_ws=True)
        client = HyperliquidClient(wallet, base_url=srv.url, meta=info.meta(), coin="BTC")
        alloc = make_allocator("entropy")
        cloids = CloidFactory(2)
        rejected = 0
        for step in range(30):
            state = info.user_state(wallet.address)
            q = sum(float(p["position"]["szi"]) for p in state["assetPositions"])
            assert abs(q) <= MAX_POSITION + 1e-12
            # others' best: between the simulator's events its quotes can lock against a resting order of ours
            # (which its latency arbitrageurs then take), so the merged l2Book is not a valid snapshot BBO
            bids, asks = market.book("BTC")
            bid, ask = bids[0][0], asks[0][0]
            snap = dataclasses.replace(
                default_snapshot(),
                mid_usd=0.5 * (bid + ask),
                best_bid_usd=bid,
                best_ask_usd=ask,
                inventory_coins=q,
                max_position_coins=MAX_POSITION,
            )
            ladder = build_ladder(snap, BTC, alloc, config=TIGHT, rng=step)
            plan = plan_orders(
                ladder, client.open_orders(), inventory_coins=q, max_position_coins=MAX_POSITION, cloids=cloids
            )
            rejected += sum(len(r.errors) for r in client.send(plan))
            ex.advance(1.0)
        assert rejected == 0
        fills = info.user_fills(wallet.address)
        assert len(fills) > 3
        q = sum(float(f["sz"]) * (1 if f["side"] == "B" else -1) for f in fills)
        # the exchange's books are the simulator's, to whole lots (partial fills report completed lots only)
        assert q == pytest.approx(market.sim.inventory_coins, abs=len(fills) * 1e-5 + 1e-9)
        cash = -sum(float(f["sz"]) * float(f["px"]) * (1 if f["side"] == "B" else -1) for f in fills)
        fees = sum(float(f["fee"]) for f in fills)
        equity = float(info.user_state(wallet.address)["marginSummary"]["accountValue"])
        assert equity == pytest.approx(100_000.0 + cash - fees + q * market.mid("BTC"), abs=0.01)
        # one account only, resting orders only
        other = Exchange(Account.create(), srv.url)
        o = {"coin": "BTC", "is_buy": True, "sz": 0.001, "limit_px": 80_000.0, "reduce_only": False}
        resp = other.bulk_orders([o | {"order_type": {"limit": {"tif": "Alo"}}}])
        assert resp["response"]["data"]["statuses"][0]["error"].startswith("The simulated market serves one account")
        # exit: cancel everything
        client.send(plan_orders([], client.open_orders(), inventory_coins=0.0, max_position_coins=1.0, cloids=cloids))
        assert client.open_orders() == []


def test_cli_sim_option():
    from typer.testing import CliRunner

    from hyper_make.cli import app

    res = CliRunner().invoke(app, ["exchange", "--port", "0", "--coins", "ETH", "--sim", "--duration-s", "0.2"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["exchange", "--coins", "BTC", "--sim", "--replay", "x.npz", "--duration-s", "0"])
    assert res.exit_code == 2 and "choose one of '--sim' and '--replay'" in res.stderr
