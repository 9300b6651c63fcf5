"""The local exchange over a replayed recording: synthetic rows (exact), and the real Hyperliquid feed."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from eth_account import Account
from hyperliquid.utils.signing import order_request_to_order_wire, order_wires_to_order_action, sign_l1_action
from typer.testing import CliRunner

from conftest import shared_data_file
from hyper_make.cli import app
from hyper_make.data import load_events
from hyper_make.data.events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
    empty_events,
)
from hyper_make.errors import InvalidParameterError
from hyper_make.exchange_local import LocalExchange, ReplayMarket
from hyper_make.instrument import InstrumentSpec

BTC = InstrumentSpec(coin="BTC", sz_decimals=5)
S = 1_000_000_000  # ns per second


def rows(*spec: tuple[int, bool, float, float, float]) -> np.ndarray:
    """Events from (kind, buy, t_s, px, qty)."""
    ev = empty_events(len(spec))
    for i, (kind, buy, t, px, qty) in enumerate(spec):
        ev[i]["ev"] = kind | EXCH_EVENT | LOCAL_EVENT | (BUY_EVENT if buy else SELL_EVENT)
        ev[i]["exch_ts"] = ev[i]["local_ts"] = int(t * S)
        ev[i]["px"], ev[i]["qty"] = px, qty
    return ev


def recording() -> np.ndarray:
    return rows(
        (TRADE_EVENT, True, 0.0, 99.0, 1.0),  # before any book: skipped
        (DEPTH_CLEAR_EVENT, True, 1.0, 0.0, 0.0),
        (DEPTH_CLEAR_EVENT, False, 1.0, 0.0, 0.0),
        (DEPTH_SNAPSHOT_EVENT, True, 1.0, 100.0, 2.0),
        (DEPTH_SNAPSHOT_EVENT, True, 1.0, 99.0, 3.0),
        (DEPTH_SNAPSHOT_EVENT, False, 1.0, 101.0, 2.0),
        (DEPTH_EVENT, False, 2.0, 101.0, 0.0),  # the best ask leaves
        (DEPTH_EVENT, False, 2.0, 102.0, 5.0),
        (TRADE_EVENT, True, 3.0, 102.0, 0.5),  # a buyer lifts 102
        (DEPTH_BBO_EVENT, True, 4.0, 99.0, 1.0),  # best bid now 99: 100 is gone
        (TRADE_EVENT, False, 5.0, 99.0, 0.4),
    )


def test_replay_rebuilds_the_book_and_prints_the_trades():
    m = ReplayMarket(BTC, recording())
    assert m.book("BTC") == ([(100.0, 2.0), (99.0, 3.0)], [(101.0, 2.0)]) and m.mid("BTC") == 100.5
    assert m.step(1.0) == [] and m.book("BTC")[1] == [(102.0, 5.0)]
    (t,) = m.step(1.0)
    assert (t.side, t.px, t.sz) == ("B", 102.0, 0.5)
    m.step(1.0)
    assert m.book("BTC")[0] == [(99.0, 1.0)]
    (t,) = m.step(1.0)
    assert (t.side, t.px, t.sz) == ("A", 99.0, 0.4) and m.finished
    assert m.step(10.0) == [] and m.mid("BTC") == 100.5
    with pytest.raises(InvalidParameterError, match="at least one exchange-side row"):
        ReplayMarket(BTC, empty_events(0))


def order_payload(wallet, nonce, is_buy, px, sz):
    o = {"coin": "BTC", "is_buy": is_buy, "sz": sz, "limit_px": px, "order_type": {"limit": {"tif": "Alo"}}}
    action = order_wires_to_order_action([order_request_to_order_wire(o | {"reduce_only": False}, 0)])
    sig = sign_l1_action(wallet, action, None, nonce, None, False)
    return {"action": action, "nonce": nonce, "signature": sig, "vaultAddress": None, "expiresAfter": None}


def test_replayed_trades_fill_our_quotes_at_our_price():
    ex = LocalExchange([InstrumentSpec(coin="BTC", sz_decimals=2)], ReplayMarket(BTC, recording()))
    w = Account.create()
    now = int(time.time() * 1000)
    (st,) = ex.exchange(order_payload(w, now, False, 101.5, 0.3))["response"]["data"]["statuses"]
    assert "resting" in st
    (st,) = ex.exchange(order_payload(w, now + 1, False, 100.0, 0.2))["response"]["data"]["statuses"]
    assert st["error"] == "Post only order would have immediately matched, bbo was 100.0@101.0. asset=0"
    ex.advance(2.0)  # the buyer at 102 fills our 101.5 ask fully (0.3 <= 0.5)
    (fill,) = ex.account(w.address).fills
    assert (fill["side"], fill["px"], fill["sz"], fill["crossed"]) == ("A", "101.5", "0.3", False)


def test_the_real_hyperliquid_recording_drives_the_exchange():
    events, _ = load_events(shared_data_file("hyperliquid-btc-20250126.gz"))
    m = ReplayMarket(BTC, events)
    bids, asks = m.book("BTC")
    assert bids and asks and bids[0][0] < asks[0][0]
    n = sum(len(m.step(1.0)) for _ in range(40))
    assert n > 10 and m.finished


def test_cli_replay_option(tmp_path):
    from hyper_make.data import save_npz

    path = save_npz(tmp_path / "rec.npz", recording())
    runner = CliRunner()
    args = ["exchange", "--port", "0", "--coins", "BTC", "--replay", str(path), "--duration-s", "0.2"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["coins"] == ["BTC"]
    res = runner.invoke(app, ["exchange", "--coins", "BTC,ETH", "--replay", str(path), "--duration-s", "0"])
    assert res.exit_code == 2 and "'--sim' and '--replay' need exactly one coin" in res.stderr
