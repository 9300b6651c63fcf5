"""The local exchange's state machine: Hyperliquid's ``/info`` and ``/exchange`` semantics, in memory.

It verifies what Hyperliquid verifies before an action takes effect:

* the L1 signature (``sign_l1_action``'s EIP-712 "Agent" message, recovered with the SDK's
  ``recover_agent_or_user_from_l1_action``; the local exchange is not mainnet, so the phantom agent's source is
  ``"b"``); the recovered address is the account (created with ``starting_balance_usd`` on first use);
* the nonce, per signer (Hyperliquid's "Nonces and API wallets" rules): within ``(now - 2 days, now + 1 day)``,
  never used before, and larger than the smallest of the 100 highest nonces seen;
* ``expiresAfter`` (ms) not passed;

and then, per order, the rules of the error table on Hyperliquid's "Error responses" page, with its strings:
``Price must be divisible by tick size.`` (5 significant figures, ``6 - szDecimals`` decimals),
``Order must have minimum value of $10.``, ``Insufficient margin to place order.``,
``Reduce only order would increase position.`` (these three followed by `` asset={a}``, as the exchange's
answers in public logs show),
``Post only order would have immediately matched, bbo was {bid}@{ask}. asset={a}``,
``Order could not immediately match against any resting orders.``,
``Order was never placed, already canceled, or filled.``.

The per-address request budget (Hyperliquid's "address-based limits"): every address may send
``address_initial_requests`` (10,000) actions plus one per USDC it has traded (``cumVlm``, cumulative); a request
of ``n`` orders, cancels or modifies counts ``n`` (a ``scheduleCancel`` 1), cancels up to the higher cap
``min(cap + 100000, 2·cap)``. Past the cap the whole request is refused with the exchange's string
``Too many cumulative requests sent (used > cap) for cumulative volume traded $V. Place taker orders to free up
1 request per USDC traded.``, except one request every 10 s. ``info {"type": "userRateLimit"}`` answers
``cumVlm``, ``nRequestsUsed``, ``nRequestsCap``, ``nRequestsSurplus``.

Matching: our resting orders fill when others' trades print through them (a buy at ``px`` fills our asks priced
``<= px``, best price first, then oldest), at our price, as maker; crossing ``Gtc``/``Ioc`` orders take others'
book as taker. Positions are one-way per coin with an average entry price; realised PnL and fees (maker
``maker_fee_frac``, taker ``taker_fee_frac`` of notional) go to the USD balance. Thread-safe (one lock).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from eth_utils import keccak
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action

from .._validate import check_int, check_real
from ..instrument import InstrumentSpec
from .market import MarketModel, MarketTrade

#: Hyperliquid's error strings ("Error responses" page).
ERR_TICK = "Price must be divisible by tick size."
ERR_MIN_NOTIONAL = "Order must have minimum value of $10."
ERR_MARGIN = "Insufficient margin to place order."
ERR_REDUCE_ONLY = "Reduce only order would increase position."
ERR_IOC = "Order could not immediately match against any resting orders."
ERR_MISSING = "Order was never placed, already canceled, or filled."
ERR_SIZE = "Order has invalid size."

NONCE_PAST_MS = 2 * 86_400_000
NONCE_FUTURE_MS = 86_400_000
NONCE_KEEP = 100
SCHEDULE_CANCEL_MIN_MS = 5_000
#: Most rows a time-range info request (``userFunding``) answers (Hyperliquid: 500); the caller reads on from the
#: last row's time.
TIME_RANGE_MAX_ROWS = 500
#: Actions an address may send before it has traded (Hyperliquid: 10,000), and one more per USDC traded.
ADDRESS_INITIAL_REQUESTS = 10_000
#: Past its cap an address may send one request every this many ms.
ADDRESS_THROTTLED_MS = 10_000


@dataclass(frozen=True, kw_only=True, slots=True)
class Faults:
    """Fault injection for testing clients (all off by default; random draws from ``seed``).

    Parameters
    ----------
    exchange_error_frac : fraction of ``/exchange`` requests answered ``{"status": "err"}`` with no effect, [0, 1].
    http_delay_s : delay (s, on the exchange's clock) added to a fraction ``http_delay_frac`` of HTTP answers
        (client timeouts), ``>= 0``.
    ws_drop_after_s : close every WebSocket this many seconds after it opened (reconnect tests), ``> 0``.
    duplicate_fill_frac : fraction of streamed fill messages sent twice (idempotency tests), [0, 1].
    reorder_fills : hold each streamed fill message back until the next one (out-of-order tests).
    clock_skew_ms : the exchange's clock minus the true clock (ms), for nonce-window tests.
    seed : seed of the fault draws.
    """

    exchange_error_frac: float = 0.0
    http_delay_s: float = 0.0
    http_delay_frac: float = 0.0
    ws_drop_after_s: float | None = None
    duplicate_fill_frac: float = 0.0
    reorder_fills: bool = False
    clock_skew_ms: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        check_real("faults.exchange_error_frac", self.exchange_error_frac, lo=0.0, hi=1.0)
        check_real("faults.http_delay_s", self.http_delay_s, lo=0.0, hi=600.0, unit="s")
        check_real("faults.http_delay_frac", self.http_delay_frac, lo=0.0, hi=1.0)
        if self.ws_drop_after_s is not None:
            check_real("faults.ws_drop_after_s", self.ws_drop_after_s, lo=0.0, lo_open=True, unit="s")
        check_real("faults.duplicate_fill_frac", self.duplicate_fill_frac, lo=0.0, hi=1.0)
        check_int("faults.clock_skew_ms", self.clock_skew_ms, unit="ms")


@dataclass
class LocalOrder:
    """A resting order: ids, owner, coin, side, limit price (USD), remaining and original size (coins)."""

    oid: int
    cloid: str | None
    user: str
    coin: str
    is_buy: bool
    px: float
    sz: float
    orig_sz: float
    reduce_only: bool
    tif: str
    timestamp_ms: int

    def to_open_order(self, frontend: bool = False) -> dict[str, Any]:
        """The ``openOrders`` row (``frontendOpenOrders`` adds order type, tif and flags)."""
        row: dict[str, Any] = {
            "coin": self.coin,
            "side": "B" if self.is_buy else "A",
            "limitPx": _s(self.px),
            "sz": _s(self.sz),
            "oid": self.oid,
            "timestamp": self.timestamp_ms,
            "origSz": _s(self.orig_sz),
        }
        if self.cloid is not None:
            row["cloid"] = self.cloid
        if frontend:
            row |= {
                "orderType": "Limit",
                "tif": self.tif,
                "reduceOnly": self.reduce_only,
                "isTrigger": False,
                "triggerPx": "0.0",
                "triggerCondition": "N/A",
                "isPositionTpsl": False,
            }
        return row


@dataclass
class Account:
    """One address: USD balance (realised PnL and fees included), per-coin position (coins) and entry (USD)."""

    address: str
    usd: float
    szi: dict[str, float] = field(default_factory=dict)
    entry_px: dict[str, float] = field(default_factory=dict)
    fills: list[dict[str, Any]] = field(default_factory=list)
    nonces: list[int] = field(default_factory=list)
    cancel_at_ms: int | None = None
    volume_usd: float = 0.0  # notional traded, both sides (USD)
    funding: list[dict[str, Any]] = field(default_factory=list)  # userFunding records, oldest first
    n_requests: int = 0  # actions sent (cumulative), against the address budget
    last_throttled_ms: int | None = None  # when the last request past the cap was let through (exchange ms)


class LocalExchange:
    """In-memory Hyperliquid: ``info(request)`` and ``exchange(payload)`` take and return the API's JSON.

    Parameters
    ----------
    specs : the perps it lists (asset index = position in this list).
    market : others' book and trades (see :mod:`.market`).
    starting_balance_usd : USD of a new account.
    leverage : cross leverage for margin (position and open-order notional / leverage).
    maker_fee_frac, taker_fee_frac : fees as fractions of notional.
    clock_ms : wall clock in ms (nonces are checked against it; injectable for tests).
    faults : fault injection (default: none).
    schedule_cancel_min_volume_usd : an account that has traded less than this (USD) gets ``scheduleCancel``
        refused, to set or to unset, as Hyperliquid refuses it below $1,000,000 of volume; ``0`` (default) lets
        every account use it.
    funding_rate_frac : funding rate per ``funding_interval_s`` (fraction of position value): every interval of
        market time each position pays ``szi·mark·rate`` USD (longs pay a positive rate, shorts receive it), into
        the USD balance and ``userFunding``, as Hyperliquid's hourly funding; ``0`` (default): no funding.
    funding_interval_s : market seconds between funding payments, ``> 0`` (Hyperliquid: 3,600).
    address_initial_requests : actions a new address may send before it has traded, ``>= 0`` (Hyperliquid:
        10,000; it earns one more per USDC traded).
    time_range_max_rows : most rows a time-range read (``userFunding``) answers, ``>= 1`` (Hyperliquid: 500).
    """

    def __init__(
        self,
        specs: list[InstrumentSpec],
        market: MarketModel,
        *,
        starting_balance_usd: float = 100_000.0,
        leverage: float = 20.0,
        maker_fee_frac: float = 0.00015,
        taker_fee_frac: float = 0.00045,
        clock_ms: Callable[[], int] | None = None,
        faults: Faults | None = None,
        schedule_cancel_min_volume_usd: float = 0.0,
        funding_rate_frac: float = 0.0,
        funding_interval_s: float = 3_600.0,
        address_initial_requests: int = ADDRESS_INITIAL_REQUESTS,
        time_range_max_rows: int = TIME_RANGE_MAX_ROWS,
    ) -> None:
        self.time_range_max_rows = check_int("time_range_max_rows", time_range_max_rows, lo=1)
        self.address_initial_requests = check_int("address_initial_requests", address_initial_requests, lo=0)
        self.funding_rate = check_real("funding_rate_frac", funding_rate_frac, lo=-0.01, hi=0.01)
        self.funding_interval_s = check_real("funding_interval_s", funding_interval_s, lo=0.0, lo_open=True, unit="s")
        self._since_funding_s = 0.0
        self.specs = list(specs)
        self.schedule_cancel_min_volume_usd = check_real(
            "schedule_cancel_min_volume_usd", schedule_cancel_min_volume_usd, lo=0.0, unit="USD"
        )
        self.coin_index = {s.coin: i for i, s in enumerate(self.specs)}
        self.market = market
        self.starting_balance_usd = check_real("starting_balance_usd", starting_balance_usd, lo=0.0, unit="USD")
        self.leverage = check_real("leverage", leverage, lo=1.0, hi=100.0)
        self.maker_fee = check_real("maker_fee_frac", maker_fee_frac, lo=-0.01, hi=0.01)
        self.taker_fee = check_real("taker_fee_frac", taker_fee_frac, lo=0.0, hi=0.01)
        self.faults = faults if faults is not None else Faults()
        wall = clock_ms if clock_ms is not None else (lambda: int(time.time() * 1000))
        self._clock = (lambda: wall() + self.faults.clock_skew_ms) if self.faults.clock_skew_ms else wall
        self.fault_rng = np.random.default_rng(self.faults.seed)
        self._held_fill: dict[str, Any] | None = None
        self.accounts: dict[str, Account] = {}
        self.orders: dict[int, LocalOrder] = {}
        self._oids = itertools.count(1)
        self._tids = itertools.count(1)
        self.trades: list[dict[str, Any]] = []
        self.lock = threading.RLock()
        #: callbacks receiving every WebSocket-style message (``{"channel": ..., "data": ...}``) as it happens
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        # a market that matches our orders itself (SimMarket) gets the resting orders of one account
        self._delegate = hasattr(market, "place_order")
        self._owner: str | None = None
        self._delegated: dict[int, tuple[str, str, bool, str | None]] = {}  # oid -> (user, coin, is_buy, cloid)

    def now_ms(self) -> int:
        """The exchange's clock (UNIX ms, the configured clock plus any injected skew)."""
        return int(self._clock())

    def _emit(self, channel: str, data: Any) -> None:
        for listener in list(self.listeners):
            listener({"channel": channel, "data": data})

    # ---- accounts and helpers ---------------------------------------------------------------------
    def account(self, address: str) -> Account:
        """The account of ``address`` (lower-cased), created with the starting balance on first use."""
        a = address.lower()
        if a not in self.accounts:
            self.accounts[a] = Account(a, self.starting_balance_usd)
        return self.accounts[a]

    def meta(self) -> dict[str, Any]:
        """Perp ``meta``: ``{"universe": [{"name", "szDecimals", "maxLeverage"}]}``."""
        return {"universe": [{"name": s.coin, "szDecimals": s.sz_decimals, "maxLeverage": 50} for s in self.specs]}

    def _bbo(self, coin: str) -> tuple[float | None, float | None]:
        bids, asks = self.market.book(coin)
        best_bid = bids[0][0] if bids else None
        best_ask = asks[0][0] if asks else None
        for o in self.orders.values():
            if o.coin != coin:
                continue
            if o.is_buy and (best_bid is None or o.px > best_bid):
                best_bid = o.px
            if not o.is_buy and (best_ask is None or o.px < best_ask):
                best_ask = o.px
        return best_bid, best_ask

    def _mark(self, coin: str) -> float:
        return self.market.mid(coin)

    def _equity(self, acct: Account) -> float:
        upnl = sum(q * (self._mark(c) - acct.entry_px.get(c, 0.0)) for c, q in acct.szi.items())
        return acct.usd + upnl

    def _margin_used(self, acct: Account) -> float:
        pos = sum(abs(q) * self._mark(c) for c, q in acct.szi.items())
        opn = sum(o.px * o.sz for o in self.orders.values() if o.user == acct.address and not o.reduce_only)
        return (pos + opn) / self.leverage

    # ---- /info ------------------------------------------------------------------------------------
    def info(self, request: dict[str, Any]) -> Any:
        """Answer a ``POST /info`` body."""
        with self.lock:
            self._run_schedules()
            kind = request.get("type")
            if kind == "meta":
                return self.meta()
            if kind == "spotMeta":
                return {"universe": [], "tokens": []}
            if kind == "allMids":
                return {s.coin: _s(self.market.mid(s.coin)) for s in self.specs}
            if kind == "l2Book":
                return self._l2_book(str(request.get("coin")))
            user = str(request.get("user", "")).lower()
            if kind == "openOrders":
                return [o.to_open_order() for o in self.orders.values() if o.user == user]
            if kind == "frontendOpenOrders":
                return [o.to_open_order(frontend=True) for o in self.orders.values() if o.user == user]
            if kind == "clearinghouseState":
                return self._clearinghouse(self.account(user))
            if kind == "userFills":
                return list(reversed(self.account(user).fills))
            if kind == "userRateLimit":
                acct = self.account(user)
                return {
                    "cumVlm": _s(acct.volume_usd),
                    "nRequestsUsed": acct.n_requests,
                    "nRequestsCap": self._request_cap(acct),
                    "nRequestsSurplus": 0,
                }
            if kind == "userFunding":
                t0 = int(request.get("startTime") or 0)
                t1 = request.get("endTime")
                hi = int(t1) if t1 is not None else None
                rows = [r for r in self.account(user).funding if r["time"] >= t0 and (hi is None or r["time"] <= hi)]
                return rows[: self.time_range_max_rows]  # the oldest first, as Hyperliquid pages a time range
            raise LocalExchangeError(f"unsupported info type {kind!r}")

    def _l2_book(self, coin: str) -> dict[str, Any]:
        if coin not in self.coin_index:
            raise LocalExchangeError(f"unknown coin {coin!r}")
        bids, asks = self.market.book(coin)
        levels: list[dict[float, list[float]]] = [{}, {}]
        for i, side in enumerate((bids, asks)):
            for px, sz in side:
                levels[i].setdefault(px, [0.0, 0])[0] += sz
                levels[i][px][1] += 1
        for o in self.orders.values():
            if o.coin == coin:
                lv = levels[0 if o.is_buy else 1].setdefault(o.px, [0.0, 0])
                lv[0] += o.sz
                lv[1] += 1
        out = []
        for i, lv in enumerate(levels):
            pxs = sorted(lv, reverse=i == 0)[:20]
            out.append([{"px": _s(p), "sz": _s(lv[p][0]), "n": int(lv[p][1])} for p in pxs])
        return {"coin": coin, "time": self._clock(), "levels": out}

    def _clearinghouse(self, acct: Account) -> dict[str, Any]:
        positions = []
        ntl = 0.0
        for coin, q in acct.szi.items():
            if q == 0:
                continue
            mark = self._mark(coin)
            entry = acct.entry_px[coin]
            value = abs(q) * mark
            ntl += value
            positions.append(
                {
                    "type": "oneWay",
                    "position": {
                        "coin": coin,
                        "szi": _s(q),
                        "entryPx": _s(entry),
                        "positionValue": _s(value),
                        "unrealizedPnl": _s(q * (mark - entry)),
                        "returnOnEquity": _s(q * (mark - entry) / (abs(q) * entry / self.leverage)),
                        "liquidationPx": None,
                        "leverage": {"type": "cross", "value": int(self.leverage)},
                        "marginUsed": _s(value / self.leverage),
                        "maxLeverage": 50,
                    },
                }
            )
        equity = self._equity(acct)
        used = self._margin_used(acct)
        # as on Hyperliquid: accountValue = totalRawUsd + Σ szi·mark (raw USD carries the positions' entry cost)
        summary = {
            "accountValue": _s(equity),
            "totalNtlPos": _s(ntl),
            "totalRawUsd": _s(acct.usd - sum(q * acct.entry_px.get(c, 0.0) for c, q in acct.szi.items())),
            "totalMarginUsed": _s(used),
        }
        return {
            "marginSummary": summary,
            "crossMarginSummary": summary,
            "crossMaintenanceMarginUsed": _s(used / 2),
            "withdrawable": _s(max(equity - used, 0.0)),
            "assetPositions": positions,
            "time": self._clock(),
        }

    # ---- /exchange --------------------------------------------------------------------------------
    def exchange(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Verify and apply a ``POST /exchange`` body; answer as Hyperliquid does."""
        with self.lock:
            self._run_schedules()
            if self.faults.exchange_error_frac and self.fault_rng.random() < self.faults.exchange_error_frac:
                return _err("Injected fault: the exchange could not process the action")
            try:
                action = payload["action"]
                nonce = int(payload["nonce"])
                sig = payload["signature"]
                vault = payload.get("vaultAddress")
                expires = payload.get("expiresAfter")
            except (KeyError, TypeError, ValueError):
                return _err("Invalid request: expected action, nonce and signature")
            if vault is not None:
                return _err("Vault and subaccount trading is not supported by the local exchange")
            now = self._clock()
            if expires is not None and now > int(expires):
                return _err(f"Action expired: expiresAfter {expires} < now {now}")
            try:
                if sig.get("v") not in (27, 28):  # an ECDSA recovery id in Ethereum's form, as the exchange wants
                    raise ValueError("v")
                user = str(recover_agent_or_user_from_l1_action(action, sig, vault, nonce, expires, False)).lower()
            except Exception:
                return _err("Invalid signature")
            acct = self.account(user)
            why = self._check_nonce(acct, nonce, now)
            if why:
                return _err(why)
            kind = action.get("type") if isinstance(action, dict) else None
            why = self._charge_requests(acct, kind, action, now)
            if why:
                return _err(why)
            if kind == "order":
                statuses = [self._place(acct, w) for w in action.get("orders", [])]
                return _ok("order", statuses)
            if kind == "cancel":
                return _ok("cancel", [self._cancel(acct, c.get("a"), oid=c.get("o")) for c in action["cancels"]])
            if kind == "cancelByCloid":
                st = [self._cancel(acct, c.get("asset"), cloid=c.get("cloid")) for c in action["cancels"]]
                return _ok("cancel", st)
            if kind == "batchModify":
                return _ok("order", [self._modify(acct, m) for m in action.get("modifies", [])])
            if kind == "scheduleCancel":
                if acct.volume_usd < self.schedule_cancel_min_volume_usd:
                    return _err(
                        "Cannot set scheduled cancel time until enough volume traded. "
                        f"Required: ${_usd(self.schedule_cancel_min_volume_usd)}. Traded: ${_usd(acct.volume_usd)}."
                    )
                t = action.get("time")
                if t is not None and int(t) < now + SCHEDULE_CANCEL_MIN_MS:
                    return _err("Scheduled cancel time too early, must be at least 5 seconds from now.")
                acct.cancel_at_ms = None if t is None else int(t)
                return {"status": "ok", "response": {"type": "default"}}
            return _err(f"Unsupported action type {kind!r}")

    def _request_cap(self, acct: Account) -> int:
        """Actions the address may have sent so far: the initial budget plus one per USDC traded."""
        return self.address_initial_requests + int(acct.volume_usd)

    def _charge_requests(self, acct: Account, kind: Any, action: dict[str, Any], now_ms: int) -> str:
        """Count the request's actions against the address budget; the refusal string if it does not fit."""
        if kind in ("order", "cancel", "cancelByCloid", "batchModify"):
            key = {"order": "orders", "batchModify": "modifies"}.get(kind, "cancels")
            items = action.get(key)
            n = len(items) if isinstance(items, list) else 1
        else:
            n = 1
        cap = self._request_cap(acct)
        limit = min(cap + 100_000, 2 * cap) if kind in ("cancel", "cancelByCloid") else cap
        if acct.n_requests + n > limit:
            last = acct.last_throttled_ms
            if n > 1 or (last is not None and now_ms - last < ADDRESS_THROTTLED_MS):
                return (
                    f"Too many cumulative requests sent ({acct.n_requests + n} > {limit}) for cumulative volume "
                    f"traded ${acct.volume_usd:.2f}. Place taker orders to free up 1 request per USDC traded."
                )
            acct.last_throttled_ms = now_ms
        acct.n_requests += n
        return ""

    def _check_nonce(self, acct: Account, nonce: int, now: int) -> str:
        if not now - NONCE_PAST_MS < nonce < now + NONCE_FUTURE_MS:
            return f"Invalid nonce: {nonce} is outside (now - 2 days, now + 1 day), now = {now}"
        if nonce in acct.nonces:
            return f"Invalid nonce: duplicate nonce {nonce}"
        if len(acct.nonces) >= NONCE_KEEP and nonce <= acct.nonces[0]:
            return f"Invalid nonce: {nonce} is not above the smallest of the 100 highest nonces ({acct.nonces[0]})"
        acct.nonces.append(nonce)
        acct.nonces.sort()
        del acct.nonces[:-NONCE_KEEP]
        return ""

    def _parse_wire(self, w: dict[str, Any]) -> tuple[InstrumentSpec, bool, float, float, bool, str, str | None]:
        a = int(w["a"])
        if not 0 <= a < len(self.specs):
            raise _Reject(f"Invalid asset {a}")
        tif = w.get("t", {}).get("limit", {}).get("tif")
        if tif not in ("Alo", "Gtc", "Ioc"):
            raise _Reject("Only limit orders with tif Alo, Gtc or Ioc are supported by the local exchange")
        return self.specs[a], bool(w["b"]), float(w["p"]), float(w["s"]), bool(w["r"]), tif, w.get("c")

    def _place(self, acct: Account, w: dict[str, Any]) -> dict[str, Any]:
        try:
            spec, is_buy, px, sz, reduce_only, tif, cloid = self._parse_wire(w)
            return self._place_checked(acct, spec, is_buy, px, sz, reduce_only, tif, cloid)
        except _Reject as r:
            return {"error": str(r)}
        except (KeyError, TypeError, ValueError):
            return {"error": "Invalid order wire"}

    def _place_checked(
        self,
        acct: Account,
        spec: InstrumentSpec,
        is_buy: bool,
        px: float,
        sz: float,
        reduce_only: bool,
        tif: str,
        cloid: str | None,
    ) -> dict[str, Any]:
        coin = spec.coin
        if not spec.is_valid_price(px):
            raise _Reject(ERR_TICK)
        if not spec.is_valid_size(sz):
            raise _Reject(ERR_SIZE)
        if px * sz < spec.min_notional_usd:
            raise _Reject(f"{ERR_MIN_NOTIONAL} asset={self.coin_index[coin]}")
        if cloid is not None and any(o.cloid == cloid and o.user == acct.address for o in self.orders.values()):
            raise _Reject(f"Duplicate cloid {cloid}")
        q = acct.szi.get(coin, 0.0)
        if reduce_only and (q == 0 or (q > 0) == is_buy or sz > abs(q) + 1e-12):
            raise _Reject(f"{ERR_REDUCE_ONLY} asset={self.coin_index[coin]}")
        if not reduce_only and self._margin_used(acct) + px * sz / self.leverage > self._equity(acct) + 1e-9:
            raise _Reject(f"{ERR_MARGIN} asset={self.coin_index[coin]}")
        best_bid, best_ask = self._bbo(coin)
        crosses = (best_ask is not None and px >= best_ask) if is_buy else (best_bid is not None and px <= best_bid)
        oid = next(self._oids)
        if crosses and tif == "Alo":
            bbo = f"{_s(best_bid) if best_bid else ''}@{_s(best_ask) if best_ask else ''}"
            raise _Reject(
                f"Post only order would have immediately matched, bbo was {bbo}. asset={self.coin_index[coin]}"
            )
        if self._delegate and crosses:
            raise _Reject("The simulated market takes resting (non-crossing) orders only")
        filled = 0.0
        cost = 0.0
        if crosses:
            filled, cost = self._take(acct, spec, is_buy, px, sz, oid, cloid)
        remaining = spec.round_size_down(sz - filled) if sz - filled > 0 else 0.0
        ids: dict[str, Any] = {"oid": oid} | ({"cloid": cloid} if cloid else {})
        if tif == "Ioc" or remaining <= 0:
            if filled <= 0:
                raise _Reject(ERR_IOC)
            return {"filled": {"totalSz": _s(filled), "avgPx": _s(cost / filled), **ids}}
        if self._delegate:
            if self._owner not in (None, acct.address):
                raise _Reject("The simulated market serves one account; another one is already trading")
            why = self.market.place_order(oid, is_buy, px, remaining)  # type: ignore[attr-defined]
            if why:
                raise _Reject(why)
            self._owner = acct.address
            self._delegated[oid] = (acct.address, coin, is_buy, cloid)
        self.orders[oid] = LocalOrder(
            oid, cloid, acct.address, coin, is_buy, px, remaining, sz, reduce_only, tif, self._clock()
        )
        if filled > 0:
            return {"filled": {"totalSz": _s(filled), "avgPx": _s(cost / filled), **ids}}
        return {"resting": ids}

    def _take(
        self, acct: Account, spec: InstrumentSpec, is_buy: bool, px: float, sz: float, oid: int, cloid: str | None
    ) -> tuple[float, float]:
        """Fill against others' book up to ``px`` (taker); returns (size, notional)."""
        bids, asks = self.market.book(spec.coin)
        filled = cost = 0.0
        for lpx, lsz in asks if is_buy else bids:
            if (is_buy and lpx > px) or (not is_buy and lpx < px) or filled >= sz:
                break
            take = min(lsz, sz - filled)
            self._fill(acct, spec.coin, is_buy, lpx, take, oid, cloid, crossed=True)
            filled += take
            cost += take * lpx
        return filled, cost

    def _find(self, acct: Account, asset: Any, oid: Any = None, cloid: Any = None) -> LocalOrder | None:
        for o in self.orders.values():
            if o.user != acct.address or (asset is not None and self.coin_index.get(o.coin) != int(asset)):
                continue
            if (oid is not None and o.oid == oid) or (cloid is not None and o.cloid == cloid):
                return o
        return None

    def _cancel(self, acct: Account, asset: Any, oid: Any = None, cloid: Any = None) -> Any:
        o = self._find(acct, asset, oid=oid, cloid=cloid)
        if o is None:
            return {"error": ERR_MISSING}
        self._remove(o.oid)
        return "success"

    def _remove(self, oid: int) -> None:
        """Take an order off the book (and out of a delegated market, where it may still fill while cancelling)."""
        del self.orders[oid]
        if self._delegate:
            self.market.cancel_order(oid)  # type: ignore[attr-defined]

    def _modify(self, acct: Account, m: dict[str, Any]) -> dict[str, Any]:
        ref = m.get("oid")
        w = m.get("order", {})
        asset = w.get("a")
        o = self._find(acct, asset, oid=ref) if isinstance(ref, int) else self._find(acct, asset, cloid=ref)
        if o is None:
            return {"error": "Cannot modify canceled or filled order"}
        saved = self.orders.pop(o.oid)
        status = self._place(acct, w)
        if "error" in status:
            self.orders[saved.oid] = saved  # a rejected modify leaves the order as it was
        elif self._delegate:
            self.market.cancel_order(saved.oid)  # type: ignore[attr-defined]
        return status

    # ---- the market -------------------------------------------------------------------------------
    def advance(self, dt_s: float) -> list[MarketTrade]:
        """Step the market ``dt_s`` seconds and fill our resting orders its trades print through."""
        with self.lock:
            trades = self.market.step(dt_s)
            if self._delegate:
                self._take_delegated_fills()
            now = self._clock()
            self._since_funding_s += dt_s
            while self._since_funding_s >= self.funding_interval_s:
                self._since_funding_s -= self.funding_interval_s
                if self.funding_rate:
                    self._pay_funding(now)
            printed: dict[str, list[dict[str, Any]]] = {}
            for t in trades:
                self._match(t)
                tid = next(self._tids)
                row = {
                    "coin": t.coin,
                    "side": t.side,
                    "px": _s(t.px),
                    "sz": _s(t.sz),
                    "time": now,
                    "hash": "0x" + keccak(text=f"trade:{tid}").hex(),
                    "tid": tid,
                }
                self.trades.append(row)
                printed.setdefault(t.coin, []).append(row)
            self._run_schedules()
            if self.listeners:
                for rows in printed.values():
                    self._emit("trades", rows)
                for spec in self.specs:
                    self._emit("l2Book", self._l2_book(spec.coin))
            return trades

    def _pay_funding(self, now_ms: int) -> None:
        """Every position pays ``szi·mark·rate`` (USD) into the balance, recorded as ``userFunding`` shows it."""
        for acct in self.accounts.values():
            for coin, q in acct.szi.items():
                if q == 0:
                    continue
                usdc = -q * self._mark(coin) * self.funding_rate
                acct.usd += usdc
                # one row per coin and time, as on Hyperliquid (a market step spanning several intervals pays
                # each a millisecond apart)
                last = max((r["time"] for r in acct.funding if r["delta"]["coin"] == coin), default=now_ms - 1)
                acct.funding.append(
                    {
                        "time": max(now_ms, last + 1),
                        "hash": "0x" + "0" * 64,
                        "delta": {
                            "type": "funding",
                            "coin": coin,
                            "usdc": _s(usdc),
                            "szi": _s(q),
                            "fundingRate": _s(self.funding_rate),
                            "nSamples": None,
                        },
                    }
                )

    def _take_delegated_fills(self) -> None:
        fills, gone = self.market.take_fills()  # type: ignore[attr-defined]
        for oid, px, sz in fills:
            user, coin, is_buy, cloid = self._delegated[oid]
            self._fill(self.accounts[user], coin, is_buy, px, sz, oid, cloid, crossed=False)
            o = self.orders.get(oid)
            if o is not None:
                o.sz = float(self.specs[self.coin_index[coin]].round_size_down(o.sz - sz + 1e-12))
                if o.sz <= 0:
                    del self.orders[oid]
        for oid in gone:  # filled, cancelled, or dropped by the simulator on arrival
            self.orders.pop(oid, None)
            self._delegated.pop(oid, None)

    def _match(self, t: MarketTrade) -> None:
        buy = t.side == "B"
        # a market buy fills resting asks priced at or below its print, best price first, then oldest
        hit = [o for o in self.orders.values() if o.coin == t.coin and o.is_buy != buy]
        hit = [o for o in hit if (o.px <= t.px if buy else o.px >= t.px)]
        hit.sort(key=lambda o: (o.px if buy else -o.px, o.oid))
        left = t.sz
        for o in hit:
            if left <= 0:
                break
            take = min(o.sz, left)
            spec = self.specs[self.coin_index[o.coin]]
            take = float(spec.round_size_down(take))
            if take <= 0:
                break
            acct = self.accounts[o.user]
            self._fill(acct, o.coin, o.is_buy, o.px, take, o.oid, o.cloid, crossed=False)
            o.sz = float(spec.round_size_down(o.sz - take + 1e-12))
            left -= take
            if o.sz <= 0:
                del self.orders[o.oid]

    def _fill(
        self, acct: Account, coin: str, is_buy: bool, px: float, sz: float, oid: int, cloid: str | None, crossed: bool
    ) -> None:
        q0 = acct.szi.get(coin, 0.0)
        entry = acct.entry_px.get(coin, 0.0)
        signed = sz if is_buy else -sz
        closed = 0.0
        if q0 != 0 and (q0 > 0) != is_buy:  # reduces (maybe flips) the position
            n = min(abs(q0), sz)
            closed = n * (px - entry) * (1 if q0 > 0 else -1)
        q1 = q0 + signed
        if abs(q1) < 1e-12:
            q1 = 0.0
        if q0 == 0 or ((q0 > 0) == (q1 > 0) and abs(q1) > abs(q0)):
            entry = (abs(q0) * entry + sz * px) / abs(q1)  # adds: average in
        elif q1 != 0 and (q0 > 0) != (q1 > 0):
            entry = px  # flipped: the new position opened at this price
        fee = (self.taker_fee if crossed else self.maker_fee) * px * sz
        acct.usd += closed - fee
        acct.volume_usd += px * sz
        acct.szi[coin] = q1
        acct.entry_px[coin] = entry if q1 != 0 else 0.0
        tid = next(self._tids)
        direction = (
            ("Open Long" if q0 >= 0 else "Close Short") if is_buy else ("Open Short" if q0 <= 0 else "Close Long")
        )
        fill = {
            "coin": coin,
            "px": _s(px),
            "sz": _s(sz),
            "side": "B" if is_buy else "A",
            "time": self._clock(),
            "startPosition": _s(q0),
            "dir": direction,
            "closedPnl": _s(closed),
            "hash": "0x" + keccak(text=f"{oid}:{tid}").hex(),
            "oid": oid,
            "crossed": crossed,
            "fee": _s(fee),
            "tid": tid,
            "feeToken": "USDC",
        }
        if cloid is not None:
            fill["cloid"] = cloid
        acct.fills.append(fill)
        if self.listeners:
            self._emit_fill({"user": acct.address, "isSnapshot": False, "fills": [fill]})

    def _emit_fill(self, data: dict[str, Any]) -> None:
        """Stream one fill message, with the configured duplicates and reordering."""
        f = self.faults
        out = [data]
        if f.reorder_fills:
            if self._held_fill is None:  # hold this one back ...
                self._held_fill, out = data, []
            else:  # ... until the next overtakes it
                out, self._held_fill = [data, self._held_fill], None
        for d in out:
            self._emit("userFills", d)
            if f.duplicate_fill_frac and self.fault_rng.random() < f.duplicate_fill_frac:
                self._emit("userFills", d)

    def _run_schedules(self) -> None:
        now = self._clock()
        for acct in self.accounts.values():
            if acct.cancel_at_ms is not None and now >= acct.cancel_at_ms:
                for oid in [o.oid for o in self.orders.values() if o.user == acct.address]:
                    self._remove(oid)
                acct.cancel_at_ms = None


class LocalExchangeError(Exception):
    """A request the local exchange cannot answer (unknown info type or coin)."""


class _Reject(Exception):
    """An order rejected with an exchange error string."""


def _ok(kind: str, statuses: list[Any]) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


def _err(message: str) -> dict[str, Any]:
    return {"status": "err", "response": message}


def _usd(x: float) -> str:
    """USD as the exchange's messages print it: cents, trailing zeros trimmed (``45.63``, ``1000000``)."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _s(x: float | None) -> str:
    """A number as the API prints it: a decimal string, no exponent, trailing zeros trimmed."""
    if x is None:
        return ""
    s = f"{x:.10f}".rstrip("0")
    return s + "0" if s.endswith(".") else s
