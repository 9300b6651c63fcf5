"""The local exchange: the SDK's unchanged client against it, the exchange's rules and error strings,
signatures and nonces, the order manager's plans round-tripping through it, and fill accounting."""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError
from hyperliquid.utils.signing import order_request_to_order_wire, order_wires_to_order_action, sign_l1_action
from hyperliquid.utils.types import Cloid

from hyper_make.allocate import make_allocator
from hyper_make.connectors.hyperliquid import HyperliquidClient, NonceSource, build_requests
from hyper_make.defaults import default_snapshot
from hyper_make.exchange_local import LocalExchange, LocalServer, RandomWalkMarket
from hyper_make.exchange_local.engine import ERR_MARGIN, ERR_MIN_NOTIONAL, ERR_MISSING, ERR_REDUCE_ONLY, ERR_TICK
from hyper_make.instrument import InstrumentSpec
from hyper_make.ladder import build_ladder
from hyper_make.strategy.orders import CloidFactory, OrderManagerConfig, plan_orders

#: the local exchange lists BTC and ETH at asset indices 0 and 1
SPECS = [InstrumentSpec(coin="BTC", sz_decimals=5, asset_id=0), InstrumentSpec(coin="ETH", sz_decimals=4, asset_id=1)]
BTC = SPECS[0]


class Clock:
    """Wall-clock ms plus an offset the test can move forward."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return int(time.time() * 1000) + self.offset_ms


def make_exchange(clock=None, balance=100_000.0, **market):
    m = RandomWalkMarket({SPECS[0]: 90_000.5, SPECS[1]: 3_000.05}, seed=3, **market)
    return LocalExchange(SPECS, m, starting_balance_usd=balance, clock_ms=clock)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def server(clock):
    with LocalServer(make_exchange(clock)) as srv:
        yield srv


@pytest.fixture
def wallet():
    return Account.create()


def order(coin="BTC", is_buy=True, sz=0.001, px=89_990.0, reduce_only=False, cloid=None, tif="Alo"):
    o = {"coin": coin, "is_buy": is_buy, "sz": sz, "limit_px": px, "order_type": {"limit": {"tif": tif}}}
    o["reduce_only"] = reduce_only
    if cloid is not None:
        o["cloid"] = Cloid.from_int(cloid)
    return o


def statuses(resp):
    assert resp["status"] == "ok", resp
    return resp["response"]["data"]["statuses"]


# ---- the SDK, unchanged -----------------------------------------------------------------------------


def test_the_unchanged_sdk_reads_meta_book_and_places_orders(server, wallet):
    info = Info(server.url, skip_ws=True)  # fetches meta and spotMeta from the local exchange
    assert [a["name"] for a in info.meta()["universe"]] == ["BTC", "ETH"]
    book = info.l2_snapshot("BTC")
    bids, asks = book["levels"]
    assert float(bids[0]["px"]) < float(asks[0]["px"])
    ex = Exchange(wallet, server.url)
    st = statuses(ex.bulk_orders([order(cloid=1), order(is_buy=False, px=90_020.0, cloid=2)]))
    assert [s["resting"]["cloid"] for s in st] == [f"0x{1:032x}", f"0x{2:032x}"]
    rows = info.open_orders(wallet.address)
    assert {(r["side"], r["limitPx"], r["sz"]) for r in rows} == {("B", "89990.0", "0.001"), ("A", "90020.0", "0.001")}
    st = statuses(ex.bulk_modify_orders_new([{"oid": Cloid.from_int(1), "order": order(px=89_980.0, cloid=3)}]))
    assert st[0]["resting"]["cloid"] == f"0x{3:032x}"
    assert statuses(ex.cancel_by_cloid("BTC", Cloid.from_int(3))) == ["success"]
    assert statuses(ex.cancel_by_cloid("BTC", Cloid.from_int(3))) == [{"error": ERR_MISSING}]
    (left,) = info.open_orders(wallet.address)
    assert statuses(ex.cancel("BTC", left["oid"])) == ["success"]
    assert info.open_orders(wallet.address) == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"px": 90_010.0}, "Post only order would have immediately matched, bbo was 90000.0@90001.0. asset=0"),
        ({"is_buy": False, "px": 89_000.0}, "Post only order would have immediately matched, bbo was"),
        ({"px": 89_990.5}, ERR_TICK),  # 6 significant figures
        ({"coin": "ETH", "px": 2_999.55}, ERR_TICK),  # 3 decimals > 6 - szDecimals... and 6 sig figs
        ({"sz": 0.0001}, f"{ERR_MIN_NOTIONAL} asset=0"),  # $9
        (
            {"is_buy": False, "px": 90_100.0, "reduce_only": True},
            f"{ERR_REDUCE_ONLY} asset=0",
        ),  # flat: nothing to reduce
        ({"sz": 30.0}, f"{ERR_MARGIN} asset=0"),  # $2.7M at 20x on $100k
    ],
)
def test_rejections_use_the_exchanges_error_strings(server, wallet, kwargs, error):
    ex = Exchange(wallet, server.url)
    (st,) = statuses(ex.bulk_orders([order(**kwargs)]))
    assert st["error"].startswith(error)
    if "bbo was" not in error:
        assert st["error"] == error


def test_invalid_size_is_rejected_by_the_exchange_not_rounded(server, wallet):
    # the SDK refuses sizes with more than 8 decimals itself; 6 decimals pass it and the exchange refuses
    ex = Exchange(wallet, server.url)
    (st,) = statuses(ex.bulk_orders([order(sz=0.001001)]))
    assert st == {"error": "Order has invalid size."}


def test_malformed_json_is_a_client_error(server):
    r = requests.post(server.url + "/info", data="{nope", headers={"Content-Type": "application/json"}, timeout=5)
    assert r.status_code == 422
    with pytest.raises(ClientError):
        Info(server.url, skip_ws=True, meta={"universe": []}, spot_meta={"universe": [], "tokens": []}).post(
            "/info", {"type": "no-such-type"}
        )


# ---- signatures and nonces --------------------------------------------------------------------------


def signed(wallet, url, nonce, *, mainnet_url=False):
    """A one-order request signed by ``wallet`` (for mainnet if asked, which the local exchange is not)."""
    plan = plan_orders(
        build_ladder(default_snapshot(), SPECS[0], make_allocator("entropy"), rng=0),
        [],
        inventory_coins=0.0,
        max_position_coins=0.5,
        cloids=CloidFactory(nonce % 1000),
    )
    base = "https://api.hyperliquid.xyz" if mainnet_url else url
    (req,) = build_requests(plan, SPECS[0], wallet, base_url=base, nonces=NonceSource(lambda: nonce))
    return req.payload()


def post(url, payload):
    return requests.post(url + "/exchange", json=payload, timeout=5).json()


def test_a_signature_for_another_network_or_action_does_not_act_for_the_wallet(server, wallet):
    info = Info(server.url, skip_ws=True)
    now = int(time.time() * 1000)
    assert post(server.url, signed(wallet, server.url, now, mainnet_url=True))["status"] == "ok"
    assert info.open_orders(wallet.address) == []  # recovered to some other address
    p = signed(wallet, server.url, now + 1)
    p["action"]["orders"][0]["s"] = "0.5"  # tampered after signing
    post(server.url, p)
    assert info.open_orders(wallet.address) == []
    p = signed(wallet, server.url, now + 2)
    for bad in ({"r": "0x1", "s": "0x2", "v": 99}, {"r": "0x0", "s": "0x0", "v": 27}, {"r": "zz", "s": "0x2", "v": 28}):
        p["signature"] = bad
        assert post(server.url, p) == {"status": "err", "response": "Invalid signature"}
    p = signed(wallet, server.url, now + 3)
    assert post(server.url, p)["status"] == "ok"
    assert len(info.open_orders(wallet.address)) == len(p["action"]["orders"])


def test_nonces_are_checked_as_the_exchange_does(server, wallet, clock):
    now = clock()
    p = signed(wallet, server.url, now)
    assert post(server.url, p)["status"] == "ok"
    assert "duplicate nonce" in post(server.url, p)["response"]  # a replay
    assert "outside" in post(server.url, signed(wallet, server.url, now - 3 * 86_400_000))["response"]
    assert "outside" in post(server.url, signed(wallet, server.url, now + 2 * 86_400_000))["response"]
    cancel_all = {"type": "scheduleCancel"}

    def sc(nonce):
        sig = sign_l1_action(wallet, cancel_all, None, nonce, None, False)
        return {"action": cancel_all, "nonce": nonce, "signature": sig, "vaultAddress": None, "expiresAfter": None}

    for i in range(1, 101):  # straight to the engine: 100 HTTP round trips add nothing
        assert server.exchange.exchange(sc(now + i))["status"] == "ok"
    # 100 highest are now+1..now+100: anything at or below now+1 is refused, even if never used
    assert "smallest of the 100 highest" in post(server.url, sc(now - 5))["response"]
    assert post(server.url, sc(now + 101))["status"] == "ok"


def test_expired_actions_are_refused(server, wallet):
    ex = Exchange(wallet, server.url)
    ex.set_expires_after(int(time.time() * 1000) - 1_000)
    resp = ex.bulk_orders([order()])
    assert resp["status"] == "err" and "expired" in resp["response"]


# ---- the order manager through the local exchange ----------------------------------------------------


def test_plans_round_trip_through_the_local_exchange(server, wallet):
    client = HyperliquidClient(wallet, base_url=server.url, meta=server.exchange.meta(), coin="BTC")
    snap = default_snapshot()
    ladder = build_ladder(snap, client.spec, make_allocator("entropy"), rng=0)
    cloids = CloidFactory(11)
    plan = plan_orders(ladder, [], inventory_coins=0.0, max_position_coins=0.5, cloids=cloids)
    results = client.send(plan)
    assert all(r.errors == () for r in results)  # zero rejected orders
    resting = client.open_orders()
    assert len(resting) == len(ladder.bids) + len(ladder.asks)
    again = plan_orders(ladder, resting, inventory_coins=0.0, max_position_coins=0.5, cloids=cloids)
    assert again.n_actions == 0
    # a different ladder: the diff goes through, and the exchange ends up holding exactly it
    moved = build_ladder(snap, client.spec, make_allocator("entropy"), rng=5)
    exact = OrderManagerConfig(requote_price_bps=0.0, requote_size_frac=0.0)
    diff = plan_orders(moved, resting, inventory_coins=0.0, max_position_coins=0.5, cloids=cloids, config=exact)
    assert diff.modifies  # moved orders are modified in place
    assert all(r.errors == () for r in client.send(diff))
    after = client.open_orders()
    want = sorted((o.side, o.price, o.size) for o in moved.bids + moved.asks)
    assert sorted((o.side, o.price, o.size) for o in after) == want
    # everything cancelled at exit
    cancel = plan_orders([], after, inventory_coins=0.0, max_position_coins=0.5, cloids=cloids)
    assert all(r.errors == () for r in client.send(cancel))
    assert client.open_orders() == []


def test_dead_man_switch_cancels_everything_when_due(server, wallet, clock):
    ex = Exchange(wallet, server.url)
    statuses(ex.bulk_orders([order(), order(px=89_980.0)]))
    too_soon = ex.schedule_cancel(clock() + 1_000)
    assert too_soon["status"] == "err"
    assert ex.schedule_cancel(clock() + 6_000)["status"] == "ok"
    info = Info(server.url, skip_ws=True)
    assert len(info.open_orders(wallet.address)) == 2
    clock.offset_ms += 7_000
    assert info.open_orders(wallet.address) == []


def test_dead_man_switch_is_refused_below_the_volume_gate_as_on_hyperliquid(wallet, clock):
    # Hyperliquid refuses scheduleCancel, to set or to unset, to accounts with less than $1M traded
    ex_local = LocalExchange(
        SPECS,
        RandomWalkMarket({SPECS[0]: 90_000.5, SPECS[1]: 3_000.05}, seed=3, trades_per_s=50.0, through_bps_mean=5.56),
        clock_ms=clock,
        schedule_cancel_min_volume_usd=50.0,
    )
    with LocalServer(ex_local) as srv:
        ex = Exchange(wallet, srv.url)
        msg = "Cannot set scheduled cancel time until enough volume traded. Required: $50. Traded: $0."
        assert ex.schedule_cancel(clock() + 6_000) == {"status": "err", "response": msg}
        assert ex.schedule_cancel(None) == {"status": "err", "response": msg}
        # a fill of about $90 opens the gate
        (st,) = statuses(ex.bulk_orders([order(px=89_999.0)]))
        assert "resting" in st
        traded = 0.0
        for _ in range(200):
            ex_local.advance(1.0)
            traded = sum(float(f["px"]) * float(f["sz"]) for f in ex_local.account(wallet.address).fills)
            if traded >= 50.0:
                break
        assert traded >= 50.0
        assert ex.schedule_cancel(clock() + 6_000)["status"] == "ok"


def test_address_request_budget_is_counted_and_enforced_as_on_hyperliquid(wallet, clock):
    # 10,000 requests + 1 per USDC traded on Hyperliquid; 5 here: a batch of n counts n, the cap refuses the whole
    # request with the exchange's string, cancels have the higher cap, and one request every 10 s still goes
    ex_local = LocalExchange(SPECS, RandomWalkMarket({BTC: 90_000.5, SPECS[1]: 3_000.05}, seed=3), clock_ms=clock,
                             address_initial_requests=5)  # fmt: skip
    with LocalServer(ex_local) as srv:
        ex, info = Exchange(wallet, srv.url), Info(srv.url, skip_ws=True)
        assert info.user_rate_limit(wallet.address) == {
            "cumVlm": "0.0", "nRequestsUsed": 0, "nRequestsCap": 5, "nRequestsSurplus": 0,
        }  # fmt: skip
        statuses(ex.bulk_orders([order(px=89_990.0 - i) for i in range(4)]))
        assert info.user_rate_limit(wallet.address)["nRequestsUsed"] == 4
        refused = ex.bulk_orders([order(px=89_900.0), order(px=89_899.0)])
        assert refused == {
            "status": "err",
            "response": "Too many cumulative requests sent (6 > 5) for cumulative volume traded $0.00. "
            "Place taker orders to free up 1 request per USDC traded.",
        }
        assert len(info.open_orders(wallet.address)) == 4  # nothing of it happened
        statuses(ex.bulk_orders([order(px=89_900.0)]))  # the 5th
        statuses(ex.bulk_orders([order(px=89_899.0)]))  # past the cap: the one request of the 10 s window
        assert ex.bulk_orders([order(px=89_898.0)])["status"] == "err"
        clock.offset_ms += 10_000
        statuses(ex.bulk_orders([order(px=89_898.0)]))
        # cancels: up to min(cap + 100000, 2 * cap) = 10
        oids = [o["oid"] for o in info.open_orders(wallet.address)]
        assert all(s == "success" for s in statuses(ex.bulk_cancel([{"coin": "BTC", "oid": o} for o in oids[:3]])))
        assert info.user_rate_limit(wallet.address)["nRequestsUsed"] == 10
        assert ex.bulk_cancel([{"coin": "BTC", "oid": oids[3]}])["status"] == "err"


# ---- matching and accounting -------------------------------------------------------------------------


def test_fills_positions_and_cash_reconcile_to_the_cent():
    ex = make_exchange(trades_per_s=20.0, through_bps_mean=0.56, sigma_frac_per_sqrt_s=5e-4)
    w = Account.create()
    user = ex.account(w.address)
    rng = np.random.default_rng(0)
    nonce = int(time.time() * 1000)

    for step in range(60):
        mid = ex.market.mid("BTC")
        wires = []
        for k in range(3):
            for is_buy in (True, False):
                px = BTC.round_price(mid * (1 - (k + 1) * 2e-4) if is_buy else mid * (1 + (k + 1) * 2e-4), "bid")
                sz = float(BTC.lots_to_size(int(rng.integers(12, 40)) * 10))
                wires.append(order_request_to_order_wire(order(is_buy=is_buy, sz=sz, px=px), 0))
        action = order_wires_to_order_action(wires)
        nonce += 1
        sig = sign_l1_action(w, action, None, nonce, None, False)
        ex.exchange({"action": action, "nonce": nonce, "signature": sig, "vaultAddress": None, "expiresAfter": None})
        ex.advance(1.0)
        if step % 10 == 9:  # clear the book now and then so that the position moves around
            for o in [o for o in ex.orders.values() if o.user == user.address]:
                del ex.orders[o.oid]
    fills = user.fills
    assert len(fills) > 20
    signed_sz = sum(float(f["sz"]) * (1 if f["side"] == "B" else -1) for f in fills)
    cash_flow = -sum(float(f["sz"]) * float(f["px"]) * (1 if f["side"] == "B" else -1) for f in fills)
    fees = sum(float(f["fee"]) for f in fills)
    q = user.szi["BTC"]
    assert q == pytest.approx(signed_sz, abs=1e-9)
    mark = ex.market.mid("BTC")
    equity = float(ex.info({"type": "clearinghouseState", "user": w.address})["marginSummary"]["accountValue"])
    assert equity == pytest.approx(100_000.0 + cash_flow - fees + q * mark, abs=0.01)
    assert all(not f["crossed"] for f in fills)  # ALO orders only ever fill as maker


# ---- WebSocket ---------------------------------------------------------------------------------------


def wait_for(pred, timeout_s=5.0):
    t0 = time.time()
    while not pred():
        if time.time() - t0 > timeout_s:
            return False
        time.sleep(0.02)
    return True


def test_the_sdks_websocket_gets_book_trades_and_fills():
    ex = make_exchange(trades_per_s=30.0, through_bps_mean=0.56)
    with LocalServer(ex) as srv:
        w = Account.create()
        info = Info(srv.url)  # the SDK's WebsocketManager, unchanged
        got: dict[str, list] = {"l2Book": [], "trades": [], "userFills": []}
        info.subscribe({"type": "l2Book", "coin": "BTC"}, got["l2Book"].append)
        info.subscribe({"type": "trades", "coin": "BTC"}, got["trades"].append)
        info.subscribe({"type": "userFills", "user": w.address}, got["userFills"].append)
        try:
            assert wait_for(lambda: got["l2Book"] and got["userFills"])  # book on subscribe, fills snapshot
            assert got["userFills"][0]["data"]["isSnapshot"] is True
            mid = ex.market.mid("BTC")
            px_bid, px_ask = BTC.round_price(mid * 0.9998, "bid"), BTC.round_price(mid * 1.0002, "ask")
            statuses(Exchange(w, srv.url).bulk_orders([order(px=px_bid), order(is_buy=False, px=px_ask)]))
            for _ in range(20):
                ex.advance(1.0)
            fills = ex.account(w.address).fills
            assert fills
            # the messages may still be on their way: wait for as many fills as the account has
            streamed = lambda: [f for m in got["userFills"][1:] for f in m["data"]["fills"]]  # noqa: E731
            assert wait_for(lambda: len(streamed()) >= len(fills) and len(got["trades"]) >= 5)
            assert streamed() == fills  # every fill, once, in order
            assert all(t["coin"] == "BTC" for m in got["trades"] for t in m["data"])
            book = got["l2Book"][-1]["data"]
            assert book["coin"] == "BTC" and len(book["levels"]) == 2
        finally:
            info.disconnect_websocket()
