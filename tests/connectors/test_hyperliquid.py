"""Hyperliquid payloads: SDK wire types, exact strings, signatures that recover to the signer, the SDK's own
client producing the same bytes (through a fake transport), metadata and resting-order parsing. Offline."""

from __future__ import annotations

import json

import pytest
import requests
from eth_account import Account
from hyperliquid.utils.constants import MAINNET_API_URL, TESTNET_API_URL
from hyperliquid.utils.signing import float_to_wire, recover_agent_or_user_from_l1_action
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper_make.allocate import make_allocator
from hyper_make.connectors.hyperliquid import (
    HyperliquidClient,
    NonceSource,
    batch_action,
    build_requests,
    is_mainnet,
    load_meta,
    order_request,
    order_wire,
    resting_from_json,
    sign_request,
    spec_from_meta,
)
from hyper_make.connectors.rate_limit import AddressBudget, RateLimiter, batch_weight
from hyper_make.errors import DataError, ExchangeError, InvalidParameterError, RateLimited
from hyper_make.instrument import InstrumentSpec
from hyper_make.ladder import build_ladder
from hyper_make.projection import Order
from hyper_make.strategy.orders import (
    Batch,
    CloidFactory,
    OrderManagerConfig,
    Place,
    RestingOrder,
    plan_orders,
)

#: A small perp ``meta`` in the exchange's format (test fixture; the real one lists every perp).
META = {
    "universe": [
        {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
        {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
        {"name": "ATOM", "szDecimals": 2, "maxLeverage": 5},
        {"name": "MATIC", "szDecimals": 1, "maxLeverage": 20, "isDelisted": True},
        {"name": "DYDX", "szDecimals": 1, "maxLeverage": 20},
        {"name": "SOL", "szDecimals": 2, "maxLeverage": 20},
    ]
}
NONCE = 1_700_000_000_000
#: A fixed test key (never funded; the address it signs for is checked against recovery).
KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(requests.Session, "request", refuse)


@pytest.fixture
def wallet():
    return Account.from_key(KEY)


def mixed_plan(spec: InstrumentSpec):
    """A plan with every action kind: kept, modify, cancel by cloid, cancel by oid, new orders."""
    desired = [Order("bid", 89_990.0, 0.001, 1.0, 0), Order("bid", 89_900.0, 0.002, 10.0, 1)]
    desired += [Order("ask", 90_010.0, 0.00123, 1.0, 0)]
    resting = [
        RestingOrder("bid", 89_990.0, 0.001, f"0x{1:032x}", 11),  # kept
        RestingOrder("bid", 89_950.0, 0.002, f"0x{2:032x}", 12),  # modified (by oid)
        RestingOrder("bid", 89_000.0, 0.002, f"0x{3:032x}", None),  # ... cancelled by cloid
        RestingOrder("bid", 85_000.0, 0.5, None, 99),  # placed elsewhere: cancelled by oid
    ]
    return plan_orders(
        desired,
        resting,
        inventory_coins=0.0,
        max_position_coins=1.0,
        cloids=CloidFactory(5),
        config=OrderManagerConfig(requote_price_bps=0.0, requote_size_frac=0.0),
    )


# ---- network and signatures ------------------------------------------------------------------------


def test_network_follows_the_sdks_rule():
    assert is_mainnet(MAINNET_API_URL) and is_mainnet(MAINNET_API_URL + "/")
    assert not is_mainnet(TESTNET_API_URL) and not is_mainnet("http://127.0.0.1:3001")
    with pytest.raises(InvalidParameterError, match="'base_url' must be an http"):
        is_mainnet("api.hyperliquid.xyz")


@pytest.mark.parametrize("url", [MAINNET_API_URL, TESTNET_API_URL])
def test_every_signature_recovers_to_the_wallet_on_its_network_only(wallet, url):
    spec = spec_from_meta(META, "BTC")
    plan = mixed_plan(spec)
    reqs = build_requests(plan, spec, wallet, base_url=url, nonces=NonceSource(lambda: NONCE), schedule_cancel_ms=NONCE)
    assert [r.kind for r in reqs] == ["schedule_cancel", "cancel", "cancel_oid", "modify", "order"]
    assert [r.nonce for r in reqs] == [NONCE + i for i in range(5)]  # strictly increasing on a frozen clock
    main = url == MAINNET_API_URL
    for r in reqs:
        signer = recover_agent_or_user_from_l1_action(r.action, r.signature, None, r.nonce, None, main)
        assert signer == wallet.address
        other = recover_agent_or_user_from_l1_action(r.action, r.signature, None, r.nonce, None, not main)
        assert other != wallet.address
        # tampering with the action breaks the signature
        tampered = json.loads(json.dumps(r.action))
        tampered["type"] = tampered["type"] + "x"
        assert recover_agent_or_user_from_l1_action(tampered, r.signature, None, r.nonce, None, main) != wallet.address


def test_action_shapes(wallet):
    spec = spec_from_meta(META, "BTC")
    plan = mixed_plan(spec)
    actions = {b.kind: batch_action(spec, b) for b in plan.batches}
    assert actions["cancel"] == {"type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": f"0x{3:032x}"}]}
    assert actions["cancel_oid"] == {"type": "cancel", "cancels": [{"a": 0, "o": 99}]}
    (mod,) = actions["modify"]["modifies"]
    assert actions["modify"]["type"] == "batchModify" and mod["oid"] == 12
    assert mod["order"] == {
        "a": 0,
        "b": True,
        "p": "89900",
        "s": "0.002",
        "r": False,
        "t": {"limit": {"tif": "Alo"}},
        "c": plan.modifies[0].cloid,
    }
    (o,) = actions["order"]["orders"]
    assert actions["order"]["grouping"] == "na"
    assert (o["b"], o["p"], o["s"], o["t"]) == (False, "90010", "0.00123", {"limit": {"tif": "Alo"}})


# ---- wire strings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sz_decimals", "price", "size", "p", "s"),
    [
        # Arrange: (szDecimals, price USD, size coins) -> the exchange's strings
        (5, 90_000.0, 0.00012, "90000", "0.00012"),  # BTC: integer price, 5-decimal lot
        (5, 123_456.0, 1.0, "123456", "1"),  # integer prices may exceed 5 significant figures
        (4, 3_000.1, 0.0101, "3000.1", "0.0101"),  # ETH: 5 significant figures
        (2, 150.12, 12.5, "150.12", "12.5"),  # SOL
        (0, 0.012345, 1000.0, "0.012345", "1000"),  # a small coin: 6 decimals
        (1, 1.2345, 0.1, "1.2345", "0.1"),
    ],
)
def test_wire_strings_are_the_specs_exact_strings(sz_decimals, price, size, p, s):
    spec = InstrumentSpec(coin="X", sz_decimals=sz_decimals, asset_id=3)
    # Act
    wire = order_wire(spec, order_request(spec, "bid", price, size, False, f"0x{9:032x}"))
    # Assert
    assert (wire["p"], wire["s"], wire["a"]) == (p, s, 3)
    assert (spec.format_price(price), spec.format_size(size)) == (p, s)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 5),
    st.floats(1e-3, 2e5, allow_nan=False),
    st.integers(1, 10**6),
    st.sampled_from(["bid", "ask"]),
)
def test_every_rounded_price_and_lot_size_goes_on_the_wire_unchanged(sz_decimals, raw_price, lots, side):
    spec = InstrumentSpec(coin="X", sz_decimals=sz_decimals, asset_id=7)
    price = spec.round_price(raw_price, side)
    if price <= 0:
        return
    size = float(spec.lots_to_size(lots))
    wire = order_wire(spec, order_request(spec, side, price, size, False, f"0x{1:032x}"))
    assert wire["p"] == spec.format_price(price) == float_to_wire(price)
    assert wire["s"] == spec.format_size(size) == float_to_wire(size)
    assert float(wire["p"]) == price and float(wire["s"]) == size


def test_invalid_prices_and_sizes_are_refused_before_the_sdk():
    spec = spec_from_meta(META, "BTC")
    with pytest.raises(InvalidParameterError, match="not valid for BTC"):
        order_request(spec, "bid", 90_000.5, 0.001, False, f"0x{1:032x}")
    with pytest.raises(InvalidParameterError, match="not a multiple of the lot"):
        order_request(spec, "bid", 90_000.0, 0.000011, False, f"0x{1:032x}")
    with pytest.raises(InvalidParameterError, match="cloid"):
        order_request(spec, "bid", 90_000.0, 0.001, False, "0x1")


# ---- the SDK's own client, offline -----------------------------------------------------------------


class FakeTransport:
    """Stands in for ``API.post``: records (path, payload) and answers like the exchange."""

    def __init__(self, answer=None):
        self.calls: list[tuple[str, dict]] = []
        self.answer = answer

    def __call__(self, path, payload=None):
        self.calls.append((path, payload))
        if self.answer is not None:
            return self.answer
        action = payload["action"]
        kind = action["type"]
        n = len(action.get("orders", action.get("modifies", action.get("cancels", []))))
        return {"status": "ok", "response": {"type": kind, "data": {"statuses": [{"resting": {"oid": 1}}] * n}}}


@pytest.fixture
def client(wallet, monkeypatch):
    monkeypatch.setattr("hyperliquid.exchange.get_timestamp_ms", lambda: NONCE)
    c = HyperliquidClient(wallet, base_url=TESTNET_API_URL, meta=META, coin="BTC")
    c.exchange.post = FakeTransport()  # type: ignore[method-assign]
    return c


def test_the_sdk_client_sends_exactly_the_dry_run_payloads(client, wallet):
    plan = mixed_plan(client.spec)
    results = client.send(plan)
    assert [r.kind for r in results] == ["cancel", "cancel_oid", "modify", "order"]
    assert all(r.errors == () for r in results)
    calls = client.exchange.post.calls
    assert [path for path, _ in calls] == ["/exchange"] * 4
    for (_, sent), batch in zip(calls, plan.batches, strict=True):
        ours = sign_request(
            wallet,
            batch_action(client.spec, batch),
            kind=batch.kind,
            n_actions=len(batch.actions),
            weight=batch_weight(batch),
            nonce=NONCE,
            base_url=TESTNET_API_URL,
        )
        assert sent == ours.payload()


def test_schedule_cancel_through_the_sdk(client, wallet):
    client.schedule_cancel(NONCE + 60_000)
    ((_, sent),) = client.exchange.post.calls
    assert sent["action"] == {"type": "scheduleCancel", "time": NONCE + 60_000}
    signer = recover_agent_or_user_from_l1_action(sent["action"], sent["signature"], None, NONCE, None, False)
    assert signer == wallet.address


def test_exchange_errors_are_one_line_and_per_order_errors_are_reported(client):
    client.exchange.post.answer = {"status": "err", "response": "User or API Wallet 0x12 does not exist.\nmore"}
    with pytest.raises(ExchangeError, match="rejected by the exchange: User or API Wallet") as exc:
        client.send(mixed_plan(client.spec))
    assert "\n" not in str(exc.value)
    assert len(client.exchange.post.calls) == 1  # the cancels failed: nothing after them was sent
    alo_error = "Post only order would have immediately matched"
    client.exchange.post.answer = {
        "status": "ok",
        "response": {"type": "order", "data": {"statuses": [{"error": alo_error}]}},
    }
    plan = mixed_plan(client.spec)
    res = client.send_batch(plan.batches[-1])
    assert res.errors == ("Post only order would have immediately matched",)


def test_open_orders_are_read_back_as_resting_orders(client, wallet):
    rows = [
        {"coin": "BTC", "side": "B", "limitPx": "89990.0", "sz": "0.001", "oid": 11, "cloid": f"0x{1:032x}"},
        {"coin": "ETH", "side": "A", "limitPx": "3000.0", "sz": "1.0", "oid": 12, "cloid": None},
        {"coin": "BTC", "side": "A", "limitPx": "90010.0", "sz": "0.002", "oid": 13, "reduceOnly": True},
    ]
    client.exchange.info.frontend_open_orders = lambda address, dex="": rows  # type: ignore[method-assign]
    got = client.open_orders()
    assert got == [
        RestingOrder("bid", 89_990.0, 0.001, f"0x{1:032x}", 11, False),
        RestingOrder("ask", 90_010.0, 0.002, None, 13, True),
    ]
    assert "0x" + KEY[2:] not in repr(client) and client.address == wallet.address


# ---- metadata and files ----------------------------------------------------------------------------


def test_spec_from_meta_takes_sz_decimals_and_the_asset_index(tmp_path):
    sol = spec_from_meta(META, "SOL")
    assert (sol.sz_decimals, sol.asset_id) == (2, 5)
    path = tmp_path / "meta.json"
    path.write_text(json.dumps([META, [{"markPx": "1"}] * 6]))  # metaAndAssetCtxs form
    assert spec_from_meta(load_meta(path), "ETH").asset_id == 1
    with pytest.raises(InvalidParameterError, match="'coin' 'DOGE' is not in the exchange's meta"):
        spec_from_meta(META, "DOGE")
    with pytest.raises(InvalidParameterError, match="delisted"):
        spec_from_meta(META, "MATIC")


@pytest.mark.parametrize("text", ["{not json", '{"universe": [{"name": "BTC"}]}', "[]", '"x"'])
def test_malformed_meta_files_are_data_errors(tmp_path, text):
    path = tmp_path / "meta.json"
    path.write_text(text)
    with pytest.raises(DataError, match="meta file"):
        load_meta(path)


def test_resting_json_round_trips_and_rejects_bad_rows():
    orders = [RestingOrder("bid", 100.0, 1.0, f"0x{1:032x}", 5, True), RestingOrder("ask", 101.0, 2.0, None, 6)]
    assert resting_from_json(json.loads(json.dumps([o.to_dict() for o in orders]))) == orders
    with pytest.raises(DataError, match=r"resting orders\[0\]: missing field 'price'"):
        resting_from_json([{"side": "bid", "size": 1.0, "oid": 1}])
    with pytest.raises(DataError, match=r"resting orders\[0\]: 'resting.side' must be one of"):
        resting_from_json([{"side": "buy", "price": 1.0, "size": 1.0, "oid": 1}])
    with pytest.raises(DataError, match="expected a JSON list"):
        resting_from_json({"side": "bid"})


def test_a_real_ladder_signs_end_to_end(snapshot, wallet):
    spec = spec_from_meta(META, "BTC")
    ladder = build_ladder(snapshot, spec, make_allocator("entropy"), rng=0)
    plan = plan_orders(ladder, [], inventory_coins=0.0, max_position_coins=0.5, cloids=CloidFactory(0))
    (req,) = build_requests(plan, spec, wallet, base_url=TESTNET_API_URL, nonces=NonceSource(lambda: NONCE))
    wires = req.action["orders"]
    assert len(wires) == len(ladder.bids) + len(ladder.asks)
    for w, o in zip(wires, ladder.bids + ladder.asks, strict=True):
        assert (w["p"], w["s"], w["b"]) == (spec.format_price(o.price), spec.format_size(o.size), o.side == "bid")


def test_the_client_charges_the_rate_limiter_and_holds_back_what_does_not_fit(wallet, monkeypatch):

    t = [0.0]
    limiter = RateLimiter(clock=lambda: t[0], address=AddressBudget(initial_requests=3))
    monkeypatch.setattr("hyperliquid.exchange.get_timestamp_ms", lambda: NONCE)
    c = HyperliquidClient(wallet, base_url=TESTNET_API_URL, meta=META, coin="BTC", limiter=limiter)
    c.exchange.post = FakeTransport()  # type: ignore[method-assign]
    plan = mixed_plan(c.spec)  # cancel 1, cancel_oid 1, modify 1, order 1
    for b in plan.batches[:3]:
        c.send_batch(b)
    assert limiter.address.used == 3
    c.send_batch(plan.batches[3])  # the budget is spent: one single-action request every 10 s
    t[0] = 4.0
    with pytest.raises(RateLimited, match="order request of 1 actions held back") as exc:
        c.send_batch(plan.batches[3])
    assert exc.value.wait_s == pytest.approx(6.0)
    assert len(c.exchange.post.calls) == 4  # nothing sent
    t[0] = 10.0
    c.send_batch(plan.batches[3])
    assert len(c.exchange.post.calls) == 5
    # an order refused locally spends no budget
    bad = Batch("order", (Place(f"0x{7:032x}", "bid", 90_000.5, 0.001, False, 0),))  # 6 significant figures
    used = limiter.address.used
    with pytest.raises(InvalidParameterError):
        c.send_batch(bad)
    assert limiter.address.used == used


def test_signing_runs_on_the_c_secp256k1_backend():
    # eth-keys falls back to pure Python without coincurve: 4 ms a signature on the loop's hot path, not 0.5 ms
    from eth_keys import KeyAPI
    from eth_keys.backends.coincurve import CoinCurveECCBackend

    assert isinstance(KeyAPI().backend, CoinCurveECCBackend)
