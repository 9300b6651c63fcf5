"""Order manager: diff the desired ladder against the resting orders into the fewest exchange actions.

Per side, with ``n`` resting and ``m`` desired orders, an action is a cancel, a new order or a modify (one
resting order re-priced/re-sized in place; Hyperliquid's ``batchModify``). If ``k`` resting orders are kept
as they are, the unmatched ``m - k`` desired orders need a new order or a modify each and the unmatched
``n - k`` resting ones a cancel or a modify each; a modify serves one of each, so the count is
``max(n, m) - k`` and it is smallest when ``k`` is largest. :func:`plan_orders` finds the largest ``k`` with an
assignment solve (:func:`scipy.optimize.linear_sum_assignment`, ties broken by the smallest price/size change),
turns the other assigned pairs into modifies, and cancels or places the rest.

A resting order is *kept* when it matches a desired one within the requote threshold (price move
``<= requote_price_bps`` and relative size change ``<= requote_size_frac``) and has the same reduce-only flag,
so small ladder changes spend no rate-limit budget.

Safety rules applied on top of the diff:

* every new or modified order is post-only (Hyperliquid ``{"limit": {"tif": "Alo"}}``);
* an order is reduce-only when it can only reduce the position: asks when long, bids when short, counted from
  the best price while the cumulative size stays within ``|inventory|`` (coins);
* position guard: after the actions, the side's resting total (coins) must satisfy
  ``Σ bids <= max_position - q`` and ``Σ asks <= max_position + q``, so the position cannot leave
  ``[-max_position, max_position]`` even if every resting order on that side fills. Kept orders larger than
  their target are re-sized first; if the desired ladder itself breaches the limit (e.g. it was built from a
  stale inventory) the side is not quoted at all: its resting orders are cancelled and the reason recorded.

Requests go out cancels first, then modifies, then new orders, in batches of at most ``max_batch_len`` actions
(the venue sends each batch as one request; :mod:`hyper_make.connectors.rate_limit` prices them on Hyperliquid).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numba as nb
import numpy as np
from numpy.typing import NDArray

from .._validate import PYDANTIC_CONFIG, check_choice, check_int, check_real
from ..errors import InvalidParameterError
from ..instrument import Side
from ..ladder import Ladder
from ..projection import Order

#: Tolerance (coins, relative) for comparing float sizes and totals that are sums of lot multiples.
_EPS = 1e-9

#: ``cancel`` goes by cloid (``cancelByCloid``), ``cancel_oid`` by oid (``cancel``, for orders placed elsewhere).
BatchKind = Literal["cancel", "cancel_oid", "modify", "order"]


# ---- data ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestingOrder:
    """An order resting on the exchange (ours, as tracked or read back from ``openOrders``).

    Attributes
    ----------
    side : ``"bid"`` or ``"ask"``.
    price : limit price (USD), ``> 0``.
    size : remaining size (coins), ``> 0``.
    cloid : client order id, ``"0x"`` + 32 hex digits (16 bytes), or ``None`` for an order placed elsewhere.
    oid : the exchange's order id, when known.
    reduce_only : whether the order was placed reduce-only.
    """

    side: Side
    price: float
    size: float
    cloid: str | None = None
    oid: int | None = None
    reduce_only: bool = False

    def __post_init__(self) -> None:
        check_choice("resting.side", self.side, ("bid", "ask"))
        check_real("resting.price", self.price, lo=0.0, lo_open=True, unit="USD")
        check_real("resting.size", self.size, lo=0.0, lo_open=True, unit="coins")
        if self.cloid is not None:
            check_cloid(self.cloid, "resting.cloid")
        if self.oid is not None:
            check_int("resting.oid", self.oid, lo=0)
        if self.cloid is None and self.oid is None:
            raise InvalidParameterError("a resting order needs a 'cloid' or an 'oid' to be cancelled; got neither")

    @classmethod
    def trusted(
        cls, side: Side, price: float, size: float, cloid: str | None, oid: int | None = None, reduce_only: bool = False
    ) -> RestingOrder:
        """An order built from values this library already checked (a plan's action, a venue's own order
        book): the same frozen value without re-running the checks, which a venue's view does for every order of
        every refresh. Anything read from outside goes through the checked constructor."""
        o = object.__new__(cls)
        init = object.__setattr__
        init(o, "side", side)
        init(o, "price", price)
        init(o, "size", size)
        init(o, "cloid", cloid)
        init(o, "oid", oid)
        init(o, "reduce_only", reduce_only)
        return o

    @property
    def key(self) -> str:
        """The id the manager tracks it by: its cloid, else ``"oid:<oid>"``."""
        return self.cloid if self.cloid is not None else f"oid:{self.oid}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the ``--resting`` file format)."""
        return {
            "side": self.side,
            "price": self.price,
            "size": self.size,
            "cloid": self.cloid,
            "oid": self.oid,
            "reduce_only": self.reduce_only,
        }


@dataclass(frozen=True, slots=True)
class Place:
    """A new post-only order: side, price (USD), size (coins), reduce-only flag, ladder level, and its cloid."""

    cloid: str
    side: Side
    price: float
    size: float
    reduce_only: bool
    level: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "type": "order",
            "cloid": self.cloid,
            "side": self.side,
            "price": self.price,
            "size": self.size,
            "reduce_only": self.reduce_only,
            "level": self.level,
        }


@dataclass(frozen=True, slots=True)
class Modify:
    """Re-price/re-size the resting order ``target`` into a post-only order (USD, coins) with a fresh ``cloid``.

    The replacement gets a new cloid (Hyperliquid replaces a modified order by a new one with a new oid), so a
    late fill of the old order is never credited to the new one.
    """

    target: RestingOrder
    cloid: str
    price: float
    size: float
    reduce_only: bool
    level: int

    @property
    def side(self) -> Side:
        """Side of the order (a modify never changes it)."""
        return self.target.side

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "type": "modify",
            "target": self.target.key,
            "target_oid": self.target.oid,
            "cloid": self.cloid,
            "side": self.side,
            "price": self.price,
            "size": self.size,
            "reduce_only": self.reduce_only,
            "level": self.level,
        }


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel the resting order ``target`` (by cloid when it has one, else by oid)."""

    target: RestingOrder

    @property
    def side(self) -> Side:
        """Side of the cancelled order."""
        return self.target.side

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "type": "cancel",
            "target": self.target.key,
            "cloid": self.target.cloid,
            "oid": self.target.oid,
            "side": self.side,
            "price": self.target.price,
        }


Action = Place | Modify | Cancel


@dataclass(frozen=True, slots=True)
class Batch:
    """One request to the venue: actions of one kind (``cancel``, ``cancel_oid``, ``modify`` or ``order``)."""

    kind: BatchKind
    actions: tuple[Action, ...]

    @property
    def n_actions(self) -> int:
        """Number of actions in the request."""
        return len(self.actions)


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderManagerConfig:
    """How the order manager diffs and batches.

    Parameters
    ----------
    requote_price_bps : float, default 1.0
        A resting order within this price move (bps of the desired price) of a desired one is kept, ``>= 0``.
    requote_size_frac : float, default 0.1
        ... and within this relative size change (fraction of the desired size), in ``[0, 1)``.
    max_batch_len : int, default 79
        Most actions in one request (79 is the longest batch of weight 2), in ``[1, 1000]``.
    reduce_only : bool, default False
        Mark the orders that can only reduce the position reduce-only (they need no margin). Off by default: if
        fills move the position before such an order arrives, the exchange rejects it.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    requote_price_bps: float = 1.0
    requote_size_frac: float = 0.1
    max_batch_len: int = 79
    reduce_only: bool = False

    def __post_init__(self) -> None:
        check_real("orders.requote_price_bps", self.requote_price_bps, lo=0.0, hi=1000.0, unit="bps")
        check_real("orders.requote_size_frac", self.requote_size_frac, lo=0.0, hi=1.0, hi_open=True)
        check_int("orders.max_batch_len", self.max_batch_len, lo=1, hi=1000)


@dataclass(frozen=True, slots=True, eq=False)
class OrderPlan:
    """What to send to turn the resting orders into the desired ladder.

    Attributes
    ----------
    kept : resting orders left as they are (within the requote threshold).
    cancels, modifies, places : the actions.
    stopped : per side not quoted, why (the position guard refused the desired ladder).
    batches : the requests in sending order (cancels, modifies, new orders).
    """

    kept: tuple[RestingOrder, ...]
    cancels: tuple[Cancel, ...]
    modifies: tuple[Modify, ...]
    places: tuple[Place, ...]
    stopped: dict[str, str]
    batches: tuple[Batch, ...]

    @property
    def n_actions(self) -> int:
        """Number of actions (cancels + modifies + new orders)."""
        return len(self.cancels) + len(self.modifies) + len(self.places)

    def final_orders(self) -> tuple[RestingOrder, ...]:
        """The resting set once every action has succeeded (new orders without an oid yet)."""
        out = list(self.kept)
        out += [RestingOrder.trusted(m.side, m.price, m.size, m.cloid, None, m.reduce_only) for m in self.modifies]
        out += [RestingOrder.trusted(p.side, p.price, p.size, p.cloid, None, p.reduce_only) for p in self.places]
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "n_actions": self.n_actions,
            "kept": [o.to_dict() for o in self.kept],
            "cancels": [a.to_dict() for a in self.cancels],
            "modifies": [a.to_dict() for a in self.modifies],
            "places": [a.to_dict() for a in self.places],
            "stopped": dict(self.stopped),
            "batches": [{"kind": b.kind, "n": b.n_actions} for b in self.batches],
        }


# ---- client order ids ------------------------------------------------------------------------------


def check_cloid(cloid: Any, name: str = "cloid") -> str:
    """Return ``cloid`` if it is ``"0x"`` + 32 hex digits (Hyperliquid's 16-byte client order id), else raise."""
    ok = isinstance(cloid, str) and len(cloid) == 34 and cloid[:2] == "0x"
    if ok:
        try:
            int(cloid[2:], 16)
        except ValueError:
            ok = False
    if not ok:
        raise InvalidParameterError(f"'{name}' must be '0x' followed by 32 hex digits (16 bytes); got {cloid!r}")
    return str(cloid)


class CloidFactory:
    """Deterministic 16-byte client order ids: 8 bytes from the seed, then an 8-byte counter.

    ``CloidFactory(seed=7)()`` -> ``"0x<blake2b_8(seed)><counter:016x>"``; the same seed and start give the
    same sequence (reproducible tests and dry runs); use a different seed per live session so that ids never
    repeat across sessions.
    """

    def __init__(self, seed: int = 0, start: int = 0) -> None:
        check_int("cloid seed", seed, lo=0)
        check_int("cloid start", start, lo=0, hi=2**64 - 1)
        self._prefix = hashlib.blake2b(str(seed).encode(), digest_size=8).hexdigest()
        self._next = start

    @property
    def issued(self) -> int:
        """The counter value the next id will carry."""
        return self._next

    def skip_past(self, cloids: Iterable[str | None]) -> None:
        """Advance the counter past every id in ``cloids`` that this factory could have issued (same seed)."""
        prefix = "0x" + self._prefix
        ours = [int(c[18:], 16) for c in cloids if c is not None and c.startswith(prefix)]
        if ours:
            self._next = max(self._next, max(ours) + 1)

    def __call__(self) -> str:
        """The next cloid (``"0x"`` + 32 hex digits)."""
        if self._next >= 2**64:
            raise InvalidParameterError("cloid counter exhausted (2^64 ids); start a factory with a new seed")
        c = f"0x{self._prefix}{self._next:016x}"
        self._next += 1
        return c


# ---- the diff --------------------------------------------------------------------------------------


def reduce_only_flags(side: Side, sizes_best_first: Sequence[float], inventory_coins: float) -> list[bool]:
    """Which orders of one side can only reduce the position (coins).

    Asks when long (bids when short), from the best price, while the cumulative size stays ``<= |q|``; every
    other order may add to the position and is not reduce-only.
    """
    reducing = inventory_coins > 0 if side == "ask" else inventory_coins < 0
    room = abs(inventory_coins) if reducing else 0.0
    flags, cum = [], 0.0
    for s in sizes_best_first:
        cum += s
        flags.append(reducing and cum <= room * (1 + _EPS) + _EPS)
    return flags


def side_limit_coins(side: Side, inventory_coins: float, max_position_coins: float) -> float:
    """Most size (coins) all resting orders of ``side`` may total: bids ``max - q``, asks ``max + q``."""
    return max_position_coins - inventory_coins if side == "bid" else max_position_coins + inventory_coins


def plan_orders(
    desired: Ladder | Iterable[Order] | Any,
    resting: Iterable[RestingOrder],
    *,
    inventory_coins: float,
    max_position_coins: float,
    cloids: CloidFactory,
    config: OrderManagerConfig | None = None,
) -> OrderPlan:
    """Diff the desired orders (a :class:`~hyper_make.ladder.Ladder` or its orders) against ``resting``.

    Parameters
    ----------
    desired : the ladder to reach, its orders, or a fast-path build (:class:`~hyper_make.fast.FastBuild`, read from
        its arrays without an object per order); prices (USD) and sizes (coins) must already be valid on the exchange.
    resting : the orders resting now (one coin).
    inventory_coins : current position ``q`` (coins, positive long).
    max_position_coins : absolute position limit (coins), ``> 0``.
    cloids : source of client order ids for new and modified orders.
    config : requote threshold and batch length.

    Returns
    -------
    OrderPlan
        The fewest actions (``max(n, m) - k`` per side, ``k`` the most orders that can be kept) that reach the
        desired set, subject to the position guard (see the module docstring).
    """
    cfg = config if config is not None else OrderManagerConfig()
    check_real("inventory_coins", inventory_coins, unit="coins")
    check_real("max_position_coins", max_position_coins, lo=0.0, lo_open=True, unit="coins")
    # per side: prices (USD), sizes (coins) and levels of the desired orders, best first
    by_side: dict[str, tuple[NDArray[np.float64], NDArray[np.float64], list[int]]]
    if getattr(desired, "is_fast_build", False):
        # a fast-path build: valid by construction, its arrays best first
        by_side = {
            s: (desired.prices(s), desired.sizes(s), desired.levels(s).tolist())  # type: ignore[union-attr]
            for s in ("bid", "ask")
        }
    elif isinstance(desired, Ladder):
        # built by build_ladder: valid by construction, each side best first
        by_side = {s: _arrays(os) for s, os in (("bid", desired.bids), ("ask", desired.asks))}
    else:
        wanted = list(desired)
        for i, o in enumerate(wanted):
            check_choice(f"desired[{i}].side", o.side, ("bid", "ask"))
            check_real(f"desired[{i}].price", o.price, lo=0.0, lo_open=True, unit="USD")
            check_real(f"desired[{i}].size", o.size, lo=0.0, lo_open=True, unit="coins")
        # best first: bids by descending price, asks by ascending price
        by_side = {
            "bid": _arrays(sorted((o for o in wanted if o.side == "bid"), key=lambda o: -o.price)),
            "ask": _arrays(sorted((o for o in wanted if o.side == "ask"), key=lambda o: o.price)),
        }
    rest = list(resting)
    keys = [r.cloid if r.cloid is not None else f"oid:{r.oid}" for r in rest]  # RestingOrder.key, inlined
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise InvalidParameterError(f"'resting' holds two orders with the same id {dup!r}")
    # never hand out an id that is still resting (e.g. a dry run re-planned from its own output)
    cloids.skip_past(keys)
    kept: list[RestingOrder] = []
    cancels: list[Cancel] = []
    modifies: list[Modify] = []
    places: list[Place] = []
    stopped: dict[str, str] = {}
    r_by_side: dict[str, list[RestingOrder]] = {"bid": [], "ask": []}
    for r in rest:
        r_by_side[r.side].append(r)
    for side in ("bid", "ask"):
        d_px, d_sz, d_lv = by_side[side]
        sizes = d_sz.tolist()
        r_side = r_by_side[side]
        limit = side_limit_coins(side, inventory_coins, max_position_coins)
        total = sum(sizes)
        if total > limit * (1 + _EPS) + _EPS:
            stopped[side] = (
                f"desired {side}s total {total:g} coins but the position limit leaves {max(limit, 0.0):g} "
                f"(inventory {inventory_coins:g}, max_position {max_position_coins:g} coins); side not quoted"
            )
            cancels += [Cancel(r) for r in r_side]
            continue
        if cfg.reduce_only:
            flags = reduce_only_flags(side, sizes, inventory_coins)
        else:
            flags = [False] * len(sizes)
        k, m, c, p = _diff_side(side, d_px, d_sz, d_lv, flags, r_side, limit, cfg, cloids)
        kept += k
        modifies += m
        cancels += c
        places += p
    return assemble_plan(kept, cancels, modifies, places, stopped, cfg.max_batch_len)


def assemble_plan(
    kept: Sequence[RestingOrder],
    cancels: Sequence[Cancel],
    modifies: Sequence[Modify],
    places: Sequence[Place],
    stopped: dict[str, str],
    max_batch_len: int,
) -> OrderPlan:
    """An :class:`OrderPlan` of these actions with its batches: cancels (by cloid, then by oid), modifies, new orders,
    at most ``max_batch_len`` actions a batch."""
    batches: list[Batch] = []
    by_cloid = [c for c in cancels if c.target.cloid is not None]
    by_oid = [c for c in cancels if c.target.cloid is None] if len(by_cloid) < len(cancels) else []
    for kind, acts in (("cancel", by_cloid), ("cancel_oid", by_oid), ("modify", modifies), ("order", places)):
        if len(acts) <= max_batch_len:
            if acts:
                batches.append(Batch(kind, tuple(acts)))  # type: ignore[arg-type]
            continue
        for i in range(0, len(acts), max_batch_len):
            batches.append(Batch(kind, tuple(acts[i : i + max_batch_len])))  # type: ignore[arg-type]
    return OrderPlan(
        tuple(kept), tuple(by_cloid + by_oid), tuple(modifies), tuple(places), dict(stopped), tuple(batches)
    )


def demote(
    plan: OrderPlan,
    *,
    sides: Iterable[Side] = (),
    cloids: Iterable[str] = (),
    reason: str = "",
    config: OrderManagerConfig | None = None,
) -> OrderPlan:
    """``plan`` without the orders it would add on ``sides`` or under ``cloids``: only removals are left there.

    Their new orders are dropped and their modifies become cancels of the modified order, so nothing is added
    where adding is unsafe now (a side whose worst case would pass the position limit; an order the book moved
    through since the ladder was built). Each demoted side is recorded in ``stopped`` with ``reason``.
    """
    cfg = config if config is not None else OrderManagerConfig()
    side_set, cloid_set = set(sides), set(cloids)
    hit = lambda a: a.side in side_set or a.cloid in cloid_set  # noqa: E731
    places = [p for p in plan.places if not hit(p)]
    modifies = [m for m in plan.modifies if not hit(m)]
    cancels = list(plan.cancels) + [Cancel(m.target) for m in plan.modifies if hit(m)]
    stopped = dict(plan.stopped) | {s: reason for s in sorted(side_set) if s not in plan.stopped}
    return assemble_plan(plan.kept, cancels, modifies, places, stopped, cfg.max_batch_len)


def crossing_cloids(
    actions: Iterable[Action],
    *,
    best_bid_usd: float,
    best_ask_usd: float,
    margin_frac: float = 0.0,
    own_unseen: Iterable[RestingOrder] = (),
) -> list[str]:
    """Cloids of the new prices in ``actions`` that a post-only order could cross on arrival.

    A bid at ``p`` is flagged when ``p >= min(best_ask·(1 − margin_frac), our unseen asks)``, an ask when
    ``p <= max(best_bid·(1 + margin_frac), our unseen bids)``. ``margin_frac`` (fraction of price) is how far the
    book may move before the order lands; ``own_unseen`` are our orders that may rest without being in the book
    we hold (their request went unanswered): the exchange counts our own orders in its best bid and offer.
    Cancels are never flagged. Prices in USD.
    """
    bid_limit = best_bid_usd * (1.0 + margin_frac)
    ask_limit = best_ask_usd * (1.0 - margin_frac)
    for o in own_unseen:
        if o.side == "bid":
            bid_limit = max(bid_limit, o.price)
        else:
            ask_limit = min(ask_limit, o.price)
    return [
        a.cloid
        for a in actions
        if not isinstance(a, Cancel) and ((a.price >= ask_limit) if a.side == "bid" else (a.price <= bid_limit))
    ]


@nb.njit(cache=True, inline="always")
def _keepable(rp, rs, rro, dp, ds, dro, thr_bps, thr_frac):  # type: ignore[no-untyped-def]
    """Whether resting ``(rp USD, rs coins, rro)`` may stay for desired ``(dp, ds, dro)``, with the price move (bps of
    ``dp``) and the size change (fraction of ``ds``): within the requote thresholds, the same reduce-only flag, and
    never a reduce-only order larger than its target (it would reduce past the position)."""
    move = abs(rp - dp) / dp * 1e4
    frac = abs(rs - ds) / ds
    keep = move <= thr_bps + 1e-9 and frac <= thr_frac + 1e-12 and rro == dro and not (dro and rs > ds)
    return keep, move, frac


@nb.njit(cache=True)
def _costs(rp, rs, rro, dp, ds, dro, thr_bps, thr_frac):  # type: ignore[no-untyped-def]
    """The assignment's cost matrix (resting × desired) and which pairs are keepable (:func:`_keepable`; compiled: it
    runs every refresh on every venue).

    A keepable pair costs ``eps·dev < 1/(2K+2)`` (``dev`` the mean of the two normalised changes, at most 1), any
    other pair ``1 + eps·min(move_bps/1000, 1)``, so the solve first maximises the number of keeps, then minimises
    the changes among them, and pairs the rest by price proximity (a modify moves an order as little as possible).
    """
    n, m = rp.shape[0], dp.shape[0]
    eps = 0.99 / (2 * min(n, m) + 2)
    cost = np.empty((n, m))
    ok = np.empty((n, m), dtype=np.bool_)
    for i in range(n):
        for j in range(m):
            keep, move, frac = _keepable(rp[i], rs[i], rro[i], dp[j], ds[j], dro[j], thr_bps, thr_frac)
            ok[i, j] = keep
            if keep:
                p_dev = move / thr_bps if thr_bps > 0 else 0.0
                s_dev = frac / thr_frac if thr_frac > 0 else 0.0
                cost[i, j] = eps * min(0.5 * (p_dev + s_dev), 1.0)
            else:
                cost[i, j] = 1.0 + eps * min(move * 1e-3, 1.0)
    return cost, ok


def _arrays(orders: Sequence[Order]) -> tuple[NDArray[np.float64], NDArray[np.float64], list[int]]:
    """Prices (USD), sizes (coins) and levels of ``orders``, in their order."""
    return (
        np.array([o.price for o in orders], dtype=np.float64),
        np.array([o.size for o in orders], dtype=np.float64),
        [o.level for o in orders],
    )


def _diff_side(
    side: Side,
    d_px: NDArray[np.float64],
    d_sz: NDArray[np.float64],
    d_lv: list[int],
    flags: list[bool],
    resting: list[RestingOrder],
    limit: float,
    cfg: OrderManagerConfig,
    cloids: CloidFactory,
) -> tuple[list[RestingOrder], list[Modify], list[Cancel], list[Place]]:
    """One side's diff: desired prices (USD), sizes (coins) and levels, best first, against its resting orders."""
    n, m = len(resting), d_px.shape[0]
    sizes = d_sz.tolist()
    prices = d_px.tolist()
    pairs: list[tuple[int, int]] = []  # the assignment, ordered by desired index
    keep: list[tuple[int, int]] = []
    if n and m:
        cost, ok = _costs(
            np.array([r.price for r in resting]), np.array([r.size for r in resting]),
            np.array([r.reduce_only for r in resting], dtype=np.bool_), np.ascontiguousarray(d_px),
            np.ascontiguousarray(d_sz), np.array(flags, dtype=np.bool_), float(cfg.requote_price_bps),
            float(cfg.requote_size_frac),
        )  # fmt: skip
        from scipy.optimize import linear_sum_assignment  # here, not at import: SciPy costs ~0.2 s of start-up

        rows, cols = linear_sum_assignment(cost)
        ok_rows = ok.tolist()
        by_row = list(zip(rows.tolist(), cols.tolist(), strict=True))
        keep = [(i, j) for i, j in by_row if ok_rows[i][j]]
        pairs = sorted(by_row, key=lambda ij: ij[1])
    if keep:
        # position guard: kept orders larger than their target may push the side over its limit; re-size the
        # largest excesses first until the side fits (the desired total alone fits: checked by the caller)
        kept_d = {j for _, j in keep}
        final_total = sum(resting[i].size for i, _ in keep) + sum(sz for j, sz in enumerate(sizes) if j not in kept_d)
        cap = limit * (1 + _EPS) + _EPS
        if final_total > cap:
            for ij in sorted(keep, key=lambda ij: sizes[ij[1]] - resting[ij[0]].size):
                i, j = ij
                if resting[i].size <= sizes[j]:
                    break
                keep.remove(ij)
                final_total -= resting[i].size - sizes[j]
                if final_total <= cap:
                    break
    keep_set = set(keep)
    kept = [resting[i] for i, _ in keep]
    modifies: list[Modify] = []
    used_r = [False] * n
    used_d = [False] * m
    for i, j in pairs:
        used_r[i] = used_d[j] = True
        if (i, j) not in keep_set:
            modifies.append(Modify(resting[i], cloids(), prices[j], sizes[j], flags[j], d_lv[j]))
    cancels = [Cancel(r) for i, r in enumerate(resting) if not used_r[i]]
    places = [Place(cloids(), side, prices[j], sizes[j], flags[j], d_lv[j]) for j in range(m) if not used_d[j]]
    return kept, modifies, cancels, places


def apply_plan(resting: Iterable[RestingOrder], plan: OrderPlan) -> tuple[RestingOrder, ...]:
    """The resting set after every action of ``plan`` succeeded (a simulation; raises if a target is missing)."""
    book = {r.key: r for r in resting}
    for c in plan.cancels:
        if book.pop(c.target.key, None) is None:
            raise InvalidParameterError(f"cancel targets {c.target.key!r}, which is not resting")
    for mo in plan.modifies:
        if book.pop(mo.target.key, None) is None:
            raise InvalidParameterError(f"modify targets {mo.target.key!r}, which is not resting")
        book[mo.cloid] = RestingOrder.trusted(mo.side, mo.price, mo.size, mo.cloid, None, mo.reduce_only)
    for p in plan.places:
        if p.cloid in book:
            raise InvalidParameterError(f"new order reuses the resting id {p.cloid!r}")
        book[p.cloid] = RestingOrder.trusted(p.side, p.price, p.size, p.cloid, None, p.reduce_only)
    return tuple(book.values())
