"""Hyperliquid payloads through the official SDK (``hyperliquid-python-sdk``), and a thin client that sends them.

An :class:`~hyper_make.connectors.orders.OrderPlan` becomes ``/exchange`` actions built with the SDK's own
helpers (``order_request_to_order_wire``, ``order_wires_to_order_action``, the ``batchModify``,
``cancelByCloid``, ``cancel`` and ``scheduleCancel`` shapes of ``Exchange``) and signed with
``hyperliquid.utils.signing.sign_l1_action``; the network (mainnet or not) is the SDK's rule:
``base_url == MAINNET_API_URL``. Every price and size on the wire is the instrument's exact string
(:meth:`InstrumentSpec.format_price` / :meth:`InstrumentSpec.format_size`); a value the exchange would not
accept is refused here, before the SDK's ``float_to_wire`` could raise.

:class:`HyperliquidClient` sends the same actions with ``hyperliquid.exchange.Exchange`` (``bulk_orders``,
``bulk_modify_orders_new``, ``bulk_cancel_by_cloid``, ``bulk_cancel``, ``schedule_cancel``). Asset metadata
comes from ``Info`` (``POST /info {"type": "meta"}``) or from a saved ``meta`` JSON file, so nothing touches the
network until an action is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.constants import MAINNET_API_URL, TESTNET_API_URL
from hyperliquid.utils.signing import (
    CancelByCloidRequest,
    CancelRequest,
    ModifyRequest,
    OrderRequest,
    OrderType,
    OrderWire,
    order_request_to_order_wire,
    order_wires_to_order_action,
    sign_l1_action,
)
from hyperliquid.utils.types import Cloid

from .._json import read_json_file
from ..errors import DataError, ExchangeError, InvalidParameterError, RateLimited
from ..instrument import InstrumentSpec, Side, spec_from_meta
from ..strategy.orders import Batch, Cancel, Modify, OrderPlan, Place, RestingOrder, check_cloid
from .rate_limit import RateLimiter, batch_weight

#: Post-only ("add liquidity only"): the exchange rejects the order instead of letting it take.
ALO: OrderType = {"limit": {"tif": "Alo"}}
#: A spot metadata with no markets: lets ``Info``/``Exchange`` start offline (this package trades perps only).
EMPTY_SPOT_META: dict[str, list[Any]] = {"universe": [], "tokens": []}
#: ``scheduleCancel`` must be at least this far in the future (ms; the SDK's docstring).
SCHEDULE_CANCEL_MIN_MS = 5_000


def normalize_base_url(base_url: str) -> str:
    """``base_url`` without trailing slashes (the SDK compares it to ``MAINNET_API_URL`` verbatim)."""
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise InvalidParameterError(f"'base_url' must be an http(s) URL; got {base_url!r}")
    return base_url.rstrip("/")


def is_mainnet(base_url: str) -> bool:
    """Whether actions for ``base_url`` are signed for mainnet (the SDK's rule: ``base_url == MAINNET_API_URL``)."""
    return normalize_base_url(base_url) == MAINNET_API_URL


def network_url(testnet: bool) -> str:
    """Hyperliquid's public API URL: testnet or mainnet."""
    return TESTNET_API_URL if testnet else MAINNET_API_URL


# ---- metadata --------------------------------------------------------------------------------------


def load_meta(path: str | Path) -> dict[str, Any]:
    """Read a saved perp ``meta`` (``{"universe": [...]}``, or the ``[meta, ctxs]`` of ``metaAndAssetCtxs``).

    Raises
    ------
    DataError
        If the file is empty, binary, not JSON, or has no ``universe`` list of ``{"name", "szDecimals"}`` entries.
    """
    p = Path(path)
    raw = read_json_file(p, "meta file")
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        raw = raw[0]
    universe = raw.get("universe") if isinstance(raw, dict) else None
    if not isinstance(universe, list) or not all(
        isinstance(a, dict) and isinstance(a.get("name"), str) and isinstance(a.get("szDecimals"), int)
        for a in universe
    ):
        raise DataError(f"meta file {p}: expected {{'universe': [{{'name': str, 'szDecimals': int}}, ...]}}")
    return raw


def fetch_meta(base_url: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """Perp metadata from ``POST /info {"type": "meta"}`` (network)."""
    info = Info(normalize_base_url(base_url), True, {"universe": []}, EMPTY_SPOT_META, None, timeout_s)
    return info.meta()


# ---- wire ------------------------------------------------------------------------------------------


def order_request(
    spec: InstrumentSpec, side: Side, price: float, size: float, reduce_only: bool, cloid: str
) -> OrderRequest:
    """The SDK's ``OrderRequest`` for a post-only order (price USD, size coins), checked against ``spec``."""
    if not spec.is_valid_price(price):
        raise InvalidParameterError(
            f"order price {price!r} USD is not valid for {spec.coin} (5 significant figures, "
            f"at most {spec.max_price_decimals} decimals)"
        )
    if not spec.is_valid_size(size):
        raise InvalidParameterError(f"order size {size!r} coins is not a multiple of the lot {spec.lot_size:g}")
    return {
        "coin": spec.coin,
        "is_buy": side == "bid",
        "sz": float(size),
        "limit_px": float(price),
        "order_type": ALO,
        "reduce_only": bool(reduce_only),
        "cloid": Cloid(check_cloid(cloid)),
    }


def order_wire(spec: InstrumentSpec, request: OrderRequest) -> OrderWire:
    """``order_request_to_order_wire`` at ``spec.asset_id``, checked to carry the spec's exact strings."""
    asset = spec.require_asset_id()
    try:
        wire = order_request_to_order_wire(request, asset)
    except ValueError as exc:  # float_to_wire refuses values it would round
        raise InvalidParameterError(f"order cannot be put on the wire: {exc}") from None
    px, sz = spec.format_price(request["limit_px"]), spec.format_size(request["sz"])
    if wire["p"] != px or wire["s"] != sz:
        raise InvalidParameterError(f"wire p={wire['p']!r} s={wire['s']!r} differ from the spec's {px!r}, {sz!r}")
    return wire


def _place_wire(spec: InstrumentSpec, a: Place | Modify) -> OrderWire:
    return order_wire(spec, order_request(spec, a.side, a.price, a.size, a.reduce_only, a.cloid))


def order_action(spec: InstrumentSpec, places: Sequence[Place]) -> dict[str, Any]:
    """``{"type": "order", "orders": [...], "grouping": "na"}`` (``order_wires_to_order_action``)."""
    return order_wires_to_order_action([_place_wire(spec, p) for p in places], None, "na")


def modify_action(spec: InstrumentSpec, modifies: Sequence[Modify]) -> dict[str, Any]:
    """``{"type": "batchModify", "modifies": [{"oid": oid or cloid, "order": wire}, ...]}`` as the SDK builds it."""
    return {
        "type": "batchModify",
        "modifies": [
            {"oid": m.target.oid if m.target.oid is not None else m.target.cloid, "order": _place_wire(spec, m)}
            for m in modifies
        ],
    }


def cancel_by_cloid_action(spec: InstrumentSpec, cancels: Sequence[Cancel]) -> dict[str, Any]:
    """``{"type": "cancelByCloid", "cancels": [{"asset": a, "cloid": c}, ...]}``."""
    asset = spec.require_asset_id()
    return {"type": "cancelByCloid", "cancels": [{"asset": asset, "cloid": c.target.cloid} for c in cancels]}


def cancel_by_oid_action(spec: InstrumentSpec, cancels: Sequence[Cancel]) -> dict[str, Any]:
    """``{"type": "cancel", "cancels": [{"a": a, "o": oid}, ...]}``."""
    asset = spec.require_asset_id()
    return {"type": "cancel", "cancels": [{"a": asset, "o": c.target.oid} for c in cancels]}


def schedule_cancel_action(time_ms: int | None) -> dict[str, Any]:
    """Dead-man switch: cancel every open order at ``time_ms`` (UTC ms); ``None`` unsets it."""
    action: dict[str, Any] = {"type": "scheduleCancel"}
    if time_ms is not None:
        action["time"] = int(time_ms)
    return action


def batch_action(spec: InstrumentSpec, batch: Batch) -> dict[str, Any]:
    """The ``/exchange`` action of one batch of the plan."""
    acts: Any = batch.actions
    if batch.kind == "order":
        return order_action(spec, acts)
    if batch.kind == "modify":
        return modify_action(spec, acts)
    if batch.kind == "cancel":
        return cancel_by_cloid_action(spec, acts)
    return cancel_by_oid_action(spec, acts)


# ---- signing ---------------------------------------------------------------------------------------


class NonceSource:
    """Strictly increasing nonces: the clock in ms (Hyperliquid wants a recent timestamp), bumped on ties.

    ``clock_ms`` is injectable for tests.
    """

    def __init__(self, clock_ms: Callable[[], int] | None = None) -> None:
        self._clock = clock_ms if clock_ms is not None else (lambda: int(time.time() * 1000))
        self._last = 0

    def __call__(self) -> int:
        """The next nonce (ms)."""
        n = max(int(self._clock()), self._last + 1)
        self._last = n
        return n


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """One signed ``/exchange`` request, ready to POST.

    Attributes
    ----------
    kind : ``order``, ``modify``, ``cancel``, ``cancel_oid`` or ``schedule_cancel``.
    n_actions : actions it carries (per-address requests); ``weight`` its IP weight.
    action, nonce (ms), signature (``{"r", "s", "v"}``), vault_address, expires_after (ms): the payload's parts.
    """

    kind: str
    n_actions: int
    weight: int
    action: dict[str, Any]
    nonce: int
    signature: dict[str, Any]
    vault_address: str | None = None
    expires_after: int | None = None

    def payload(self) -> dict[str, Any]:
        """The JSON body, exactly as ``Exchange._post_action`` sends it."""
        return {
            "action": self.action,
            "nonce": self.nonce,
            "signature": self.signature,
            "vaultAddress": self.vault_address,
            "expiresAfter": self.expires_after,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: kind, counts and the payload."""
        return {"kind": self.kind, "n_actions": self.n_actions, "weight": self.weight, "payload": self.payload()}


def sign_request(
    wallet: LocalAccount,
    action: dict[str, Any],
    *,
    kind: str,
    n_actions: int,
    weight: int,
    nonce: int,
    base_url: str,
    vault_address: str | None = None,
    expires_after: int | None = None,
) -> SignedRequest:
    """Sign ``action`` with ``sign_l1_action`` for the network of ``base_url``."""
    sig = sign_l1_action(wallet, action, vault_address, nonce, expires_after, is_mainnet(base_url))
    return SignedRequest(kind, n_actions, weight, action, nonce, sig, vault_address, expires_after)


def build_requests(
    plan: OrderPlan,
    spec: InstrumentSpec,
    wallet: LocalAccount,
    *,
    base_url: str,
    nonces: NonceSource,
    schedule_cancel_ms: int | None = None,
    vault_address: str | None = None,
    expires_after: int | None = None,
) -> list[SignedRequest]:
    """Every request of ``plan`` in sending order, signed; optionally a ``scheduleCancel`` at ``schedule_cancel_ms``.

    The dead-man switch goes first, so that the orders placed after it are covered by it.
    """
    out: list[SignedRequest] = []
    common: dict[str, Any] = {"base_url": base_url, "vault_address": vault_address, "expires_after": expires_after}
    if schedule_cancel_ms is not None:
        action = schedule_cancel_action(schedule_cancel_ms)
        sc = sign_request(wallet, action, kind="schedule_cancel", n_actions=1, weight=1, nonce=nonces(), **common)
        out.append(sc)
    for b in plan.batches:
        out.append(
            sign_request(
                wallet,
                batch_action(spec, b),
                kind=b.kind,
                n_actions=len(b.actions),
                weight=batch_weight(b),
                nonce=nonces(),
                **common,
            )
        )
    return out


# ---- reading resting orders ------------------------------------------------------------------------


def resting_from_json(items: Any, coin: str | None = None) -> list[RestingOrder]:
    """Resting orders from JSON: ours (``side`` bid/ask, ``price``, ``size``, ``cloid``, ``oid``, ``reduce_only``)
    or Hyperliquid's ``openOrders`` / ``frontendOpenOrders`` rows (``side`` B/A, ``limitPx``, ``sz``, ``oid``,
    ``cloid``, ``reduceOnly``, ``coin``); rows of another ``coin`` are skipped.

    Raises
    ------
    DataError
        If ``items`` is not a list of such objects.
    """
    if not isinstance(items, list):
        raise DataError(f"resting orders: expected a JSON list of orders; got {type(items).__name__}")
    out = []
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            raise DataError(f"resting orders[{i}]: expected an object; got {type(it).__name__}")
        if coin is not None and "coin" in it and it["coin"] != coin:
            continue
        side = {"B": "bid", "A": "ask"}.get(it.get("side"), it.get("side"))
        try:
            out.append(
                RestingOrder(
                    side,  # type: ignore[arg-type]
                    float(it["limitPx"] if "limitPx" in it else it["price"]),
                    float(it["sz"] if "sz" in it else it["size"]),
                    it.get("cloid"),
                    it.get("oid"),
                    bool(it.get("reduceOnly", it.get("reduce_only", False))),
                )
            )
        except KeyError as exc:
            raise DataError(f"resting orders[{i}]: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise DataError(f"resting orders[{i}]: {str(exc).splitlines()[0]}") from None
    return out


# ---- the client ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the exchange answered to one request: its kind, the raw response, and per-action errors."""

    kind: str
    response: Any
    errors: tuple[str, ...]


class HyperliquidClient:
    """Sends order plans through the SDK's unchanged ``Exchange`` (one coin).

    Parameters
    ----------
    wallet : the signing account (see :mod:`hyper_make.connectors.keys`); never printed.
    base_url : API URL (mainnet, testnet, or a local exchange).
    meta : perp metadata (``Info.meta()`` or :func:`load_meta`); with it, construction makes no network call.
    coin : the perp to trade.
    vault_address, account_address : as in ``Exchange``.
    timeout_s : HTTP timeout (seconds).
    limiter : if given, every request is charged to it first and held back (:class:`RateLimited`) if it does
        not fit.
    clock_ms : our wall clock, UNIX ms (default: the system's; injectable for tests, with the local exchange on
        the same clock).

    Nonces are the SDK's (the local clock in ms) while :attr:`clock_offset_ms` is 0. When the exchange's clock
    is known to differ from ours (``clock_offset_ms = exchange - local``, ms), the same actions are built with the
    SDK's wire helpers, signed with ``sign_l1_action`` under a nonce on the exchange's clock, and posted with the
    SDK's ``API.post``: Hyperliquid only accepts nonces within (now - 2 days, now + 1 day) of its own time, and a
    ``scheduleCancel`` time at least 5 s ahead of it.
    """

    def __init__(
        self,
        wallet: LocalAccount,
        *,
        base_url: str,
        meta: dict[str, Any],
        coin: str,
        vault_address: str | None = None,
        account_address: str | None = None,
        timeout_s: float = 10.0,
        limiter: RateLimiter | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.limiter = limiter
        self.clock_offset_ms = 0
        self._clock_ms: Callable[[], int] = clock_ms if clock_ms is not None else (lambda: int(time.time() * 1000))
        self._nonces = NonceSource(lambda: self._clock_ms() + self.clock_offset_ms)
        self._vault_address = vault_address
        self.spec = spec_from_meta(meta, coin)
        self.exchange = Exchange(
            wallet,
            self.base_url,
            meta=meta,  # type: ignore[arg-type]
            vault_address=vault_address,
            account_address=account_address,
            spot_meta=EMPTY_SPOT_META,  # type: ignore[arg-type]
            timeout=timeout_s,
        )

    def __repr__(self) -> str:
        return f"HyperliquidClient(base_url={self.base_url!r}, coin={self.spec.coin!r})"

    @property
    def address(self) -> str:
        """Public address of the signing wallet."""
        return str(self.exchange.wallet.address)

    def send_batch(self, batch: Batch, expires_after_ms: int | None = None) -> SendResult:
        """Send one batch with the matching ``Exchange.bulk_*`` method.

        ``expires_after_ms`` (exchange-clock UNIX ms, optional) makes the exchange refuse the request if it arrives
        later, so a request whose answer was lost cannot take effect after that time.

        The requests are built and checked first, then charged to the rate limiter (if any), then sent: a batch
        that is refused locally spends no budget.

        Raises
        ------
        InvalidParameterError : an order the exchange would not accept (nothing sent).
        RateLimited : the batch does not fit the rate limits now (nothing sent).
        ExchangeError : the exchange rejected the whole request.
        """
        acts: Any = batch.actions
        spec = self.spec
        send: Callable[[], Any]
        if batch.kind == "order":
            reqs = [order_request(spec, a.side, a.price, a.size, a.reduce_only, a.cloid) for a in acts]
            for r in reqs:  # the spec's exact wire strings, or refuse before anything is sent
                order_wire(spec, r)
            send = lambda: self.exchange.bulk_orders(reqs)  # noqa: E731
        elif batch.kind == "modify":
            mods: list[ModifyRequest] = []
            for m in acts:
                r = order_request(spec, m.side, m.price, m.size, m.reduce_only, m.cloid)
                order_wire(spec, r)
                target = m.target.oid if m.target.oid is not None else Cloid(m.target.cloid)
                mods.append({"oid": target, "order": r})
            send = lambda: self.exchange.bulk_modify_orders_new(mods)  # noqa: E731
        elif batch.kind == "cancel":
            creqs: list[CancelByCloidRequest] = [{"coin": spec.coin, "cloid": Cloid(c.target.cloid)} for c in acts]
            send = lambda: self.exchange.bulk_cancel_by_cloid(creqs)  # noqa: E731
        else:
            oreqs: list[CancelRequest] = [{"coin": spec.coin, "oid": int(c.target.oid)} for c in acts]
            send = lambda: self.exchange.bulk_cancel(oreqs)  # noqa: E731
        if self.clock_offset_ms:
            action = batch_action(spec, batch)
            send = lambda: self._post_signed(action, batch.kind, expires_after_ms)  # noqa: E731
        if self.limiter is not None and not self.limiter.try_send(batch):
            wait = self.limiter.wait_s(batch)
            msg = f"{batch.kind} request of {len(acts)} actions held back by the rate limits for {wait:.2f} s"
            raise RateLimited(msg, wait)
        self.exchange.set_expires_after(expires_after_ms)
        try:
            resp = send()
        finally:
            self.exchange.set_expires_after(None)
        return SendResult(batch.kind, resp, _check_response(resp, batch.kind))

    def local_time_ms(self) -> int:
        """Our wall clock (UNIX ms)."""
        return int(self._clock_ms())

    def exchange_time_ms(self) -> int:
        """The exchange's clock as we know it: local UNIX ms plus :attr:`clock_offset_ms`."""
        return self.local_time_ms() + self.clock_offset_ms

    def _post_signed(self, action: dict[str, Any], kind: str, expires_after_ms: int | None = None) -> Any:
        """Sign ``action`` under a nonce on the exchange's clock and POST it with the SDK's ``API.post``."""
        req = sign_request(
            self.exchange.wallet,
            action,
            kind=kind,
            n_actions=1,
            weight=1,
            nonce=self._nonces(),
            base_url=self.base_url,
            vault_address=self._vault_address,
            expires_after=expires_after_ms,
        )
        return self.exchange.post("/exchange", req.payload())

    def send(self, plan: OrderPlan) -> list[SendResult]:
        """Send every batch of ``plan`` in order (cancels, modifies, new orders).

        Stops at the first request that fails as a whole (an exception): the batches after it, e.g. new orders
        after cancels that did not go through, are not sent, so the position guard's assumption (the cancels
        happened) is never silently broken. Per-action errors are returned in each :class:`SendResult`.
        """
        return [self.send_batch(b) for b in plan.batches]

    def schedule_cancel(self, time_ms: int | None) -> SendResult:
        """Set (or, with ``None``, unset) the dead-man switch: every open order is cancelled at ``time_ms``."""
        if self.clock_offset_ms:
            resp = self._post_signed(schedule_cancel_action(time_ms), "schedule_cancel")
        else:
            resp = self.exchange.schedule_cancel(time_ms)
        return SendResult("schedule_cancel", resp, _check_response(resp, "schedule_cancel"))

    def open_orders(self, address: str | None = None) -> list[RestingOrder]:
        """This coin's open orders of ``address`` (default: the wallet's), via ``Info.frontend_open_orders``."""
        rows = self.exchange.info.frontend_open_orders(address or self.address)
        return resting_from_json(rows, self.spec.coin)


def _check_response(resp: Any, kind: str) -> tuple[str, ...]:
    """Raise :class:`ExchangeError` if the request failed as a whole; return the per-action error strings."""
    if not isinstance(resp, dict) or resp.get("status") != "ok":
        detail = resp.get("response") if isinstance(resp, dict) else resp
        raise ExchangeError(f"{kind} request rejected by the exchange: {str(detail).splitlines()[0][:300]}")
    data = resp.get("response", {})
    statuses = data.get("data", {}).get("statuses", []) if isinstance(data, dict) else []
    return tuple(str(s["error"]) for s in statuses if isinstance(s, dict) and "error" in s)
