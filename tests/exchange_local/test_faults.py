"""Fault injection on the local exchange: error answers, slow answers, clock skew, dropped WebSockets,
duplicate and out-of-order fill messages; each switchable and seeded."""

from __future__ import annotations

import json
import time

import pytest
import requests
import websocket
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.utils.signing import order_request_to_order_wire, order_wires_to_order_action, sign_l1_action

from hyper_make.errors import InvalidParameterError
from hyper_make.exchange_local import Faults, LocalExchange, LocalServer, RandomWalkMarket
from hyper_make.instrument import InstrumentSpec

BTC = InstrumentSpec(coin="BTC", sz_decimals=5)


def make(faults: Faults, **market) -> LocalExchange:
    m = RandomWalkMarket({BTC: 90_000.5}, seed=3, **market)
    return LocalExchange([BTC], m, faults=faults)


def resting_order(px: float = 89_990.0, is_buy: bool = True) -> dict:
    return {
        "coin": "BTC",
        "is_buy": is_buy,
        "sz": 0.001,
        "limit_px": px,
        "order_type": {"limit": {"tif": "Alo"}},
        "reduce_only": False,
    }


def signed_payload(wallet, orders, nonce):
    action = order_wires_to_order_action([order_request_to_order_wire(o, 0) for o in orders])
    sig = sign_l1_action(wallet, action, None, nonce, None, False)
    return {"action": action, "nonce": nonce, "signature": sig, "vaultAddress": None, "expiresAfter": None}


def test_injected_errors_have_no_effect_and_follow_the_seed():
    w = Account.create()
    now = int(time.time() * 1000)

    def pattern(seed):
        ex = make(Faults(exchange_error_frac=0.5, seed=seed))
        out = [ex.exchange(signed_payload(w, [resting_order(89_000.0 + i)], now + i))["status"] for i in range(30)]
        placed = len([o for o in ex.orders.values()])
        return out, placed

    a, placed = pattern(1)
    assert a == pattern(1)[0] and a != pattern(2)[0]
    assert 5 < a.count("err") < 25 and placed == a.count("ok")  # an error answer placed nothing
    ex = make(Faults(exchange_error_frac=1.0))
    resp = ex.exchange(signed_payload(w, [resting_order()], now))
    assert resp == {"status": "err", "response": "Injected fault: the exchange could not process the action"}


def test_slow_answers_time_the_sdk_out():
    with LocalServer(make(Faults(http_delay_s=1.0, http_delay_frac=1.0))) as srv:
        ex = Exchange(
            Account.create(),
            srv.url,
            meta={"universe": [{"name": "BTC", "szDecimals": 5}]},
            spot_meta={"universe": [], "tokens": []},
            timeout=0.2,
        )
        with pytest.raises(requests.exceptions.Timeout):
            ex.bulk_orders([resting_order()])


def test_a_skewed_exchange_clock_refuses_current_nonces():
    with LocalServer(make(Faults(clock_skew_ms=3 * 86_400_000))) as srv:
        resp = Exchange(Account.create(), srv.url).bulk_orders([resting_order()])
        assert resp["status"] == "err" and "outside" in resp["response"]


def test_websockets_drop_after_the_configured_time():
    with LocalServer(make(Faults(ws_drop_after_s=0.3))) as srv:
        ws = websocket.create_connection(srv.url.replace("http", "ws") + "/ws", timeout=2)
        assert ws.recv() == "Websocket connection established."
        ws.send(json.dumps({"method": "ping"}))
        assert json.loads(ws.recv()) == {"channel": "pong"}
        time.sleep(0.5)
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
            ws.send(json.dumps({"method": "ping"}))
            ws.recv()
        ws.close()


def fills_streamed(faults: Faults) -> tuple[list[dict], list[dict]]:
    """(streamed fill messages, the account's fills) after a busy minute with two-sided quotes."""
    ex = make(faults, trades_per_s=30.0, through_bps_mean=0.56)
    w = Account.create()
    got: list[dict] = []
    ex.listeners.append(lambda m: got.append(m) if m["channel"] == "userFills" else None)
    nonce = int(time.time() * 1000)
    for step in range(30):
        mid = ex.market.mid("BTC")
        bid, ask = BTC.round_price(mid * 0.9998, "bid"), BTC.round_price(mid * 1.0002, "ask")
        ex.exchange(signed_payload(w, [resting_order(bid), resting_order(ask, is_buy=False)], nonce + step))
        ex.advance(2.0)
    return [m["data"]["fills"][0] for m in got], ex.account(w.address).fills


def test_fill_stream_without_faults_is_exact():
    streamed, fills = fills_streamed(Faults())
    assert len(fills) > 4 and streamed == fills


def test_duplicate_fill_messages():
    streamed, fills = fills_streamed(Faults(duplicate_fill_frac=1.0))
    assert streamed == [f for f in fills for _ in range(2)]
    # deduplicated by (oid, tid), the stream is the account's record
    seen, unique = set(), []
    for f in streamed:
        if (f["oid"], f["tid"]) not in seen:
            seen.add((f["oid"], f["tid"]))
            unique.append(f)
    assert unique == fills


def test_out_of_order_fill_messages():
    streamed, fills = fills_streamed(Faults(reorder_fills=True))
    assert streamed != fills[: len(streamed)]
    assert sorted(streamed, key=lambda f: f["tid"]) == fills[: len(streamed)]  # only the last one is still held


def test_bad_fault_settings_are_one_line_errors():
    with pytest.raises(InvalidParameterError, match=r"'faults\.exchange_error_frac' must be in \[0, 1\]"):
        Faults(exchange_error_frac=1.5)
    with pytest.raises(InvalidParameterError, match=r"'faults\.ws_drop_after_s' must be in \(0, inf\)"):
        Faults(ws_drop_after_s=0.0)
