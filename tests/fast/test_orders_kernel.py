"""The compiled order diff, fit and last look give the Python refresh core's plan, element by element.

Oracle: the Python code itself (``plan_orders`` on a fast-build stub, ``Quoter._fit``, ``Quoter.last_look`` and
``Quoter.release`` on a real ``Quoter``, its last look's margin set to the drawn one) on random ladders, resting,
pending and unseen orders, inventories, limits, thresholds, reduce-only marking and books; and SciPy's
``linear_sum_assignment`` for :func:`lsap`, ties included.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from hyper_make import LadderConfig, default_snapshot, default_spec, make_allocator
from hyper_make.fast._orders import (
    M_ID,
    M_LEVEL,
    M_PRICE,
    M_RO,
    M_SIDE,
    M_SIZE,
    M_TARGET,
    P_ID,
    P_LEVEL,
    P_PRICE,
    P_RO,
    P_SIDE,
    P_SIZE,
    _sole_keeps,
    lsap,
    new_outputs,
    plan_refresh,
    plan_refresh_objects,
    release_objects,
    release_plan,
    warm_up,
)
from hyper_make.strategy.orders import (
    CloidFactory,
    OrderManagerConfig,
    OrderPlan,
    RestingOrder,
    _costs,
    crossing_cloids,
)
from hyper_make.strategy.quoter import Quoter, QuoterConfig
from hyper_make.strategy.venue import BookTop, VenueView

SIDES = ("bid", "ask")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- lsap vs SciPy ----------------------------------------------------------------------------------------------


@st.composite
def cost_matrices(draw: Any) -> np.ndarray:
    n, m = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    kind = draw(st.sampled_from(["float", "int", "const", "orders"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "float":
        return rng.uniform(-5.0, 5.0, (n, m))
    if kind == "int":  # many ties
        return rng.integers(0, draw(st.integers(1, 4)), (n, m)).astype(np.float64)
    if kind == "const":
        return np.full((n, m), draw(st.sampled_from([0.0, 1.0, -2.5])))
    # the order manager's shape: keepable pairs near 0, the rest 1 + a little, inf nowhere
    c = 1.0 + 0.01 * rng.integers(0, 3, (n, m))
    c[rng.random((n, m)) < 0.3] = 0.0
    return c


@SETTINGS
@given(cost_matrices())
def test_lsap_is_scipys_assignment_ties_included(cost: np.ndarray) -> None:
    rows, cols = lsap(cost)
    r_ref, c_ref = linear_sum_assignment(cost)
    assert rows.tolist() == r_ref.tolist() and cols.tolist() == c_ref.tolist()
    # and a transposed (non-contiguous) view gives SciPy's answer for the transpose
    rows_t, cols_t = lsap(cost.T)
    r_ref, c_ref = linear_sum_assignment(cost.T)
    assert rows_t.tolist() == r_ref.tolist() and cols_t.tolist() == c_ref.tolist()


def test_the_forced_assignment_is_lsaps_whenever_it_answers() -> None:
    """``_sole_keeps`` (the plan's shortcut) answers only when the keepable pairs force the assignment, and then it
    is ``lsap``'s on ``_costs``' matrix with every pair keepable; on inputs where it often answers and often not."""
    rng = np.random.default_rng(7)
    answered = 0
    trials = 3000
    for _ in range(trials):
        n, m = int(rng.integers(1, 7)), int(rng.integers(1, 7))
        dp = 100.0 + 0.5 * np.sort(rng.choice(np.arange(1, 12), m, replace=False)).astype(np.float64)
        ds = 0.01 * rng.integers(1, 6, m).astype(np.float64)
        # resting copies of distinct desired orders (the common refresh), or of any, some twice
        j = rng.choice(m, min(n, m), replace=False) if rng.random() < 0.6 else rng.integers(0, m, n)
        n = j.shape[0]
        rp = dp[j] + rng.choice([0.0, 0.0, 0.0, 0.004, 0.5, 3.0], n)
        rs = ds[j] + 0.01 * rng.choice([0, 0, 0, 1, -1], n)
        rs = np.where(rs > 0, rs, 0.01)
        dro = rng.random(m) < 0.2
        rro = np.where(rng.random(n) < 0.9, dro[j], ~dro[j])
        thr_bps, thr_frac = float(rng.choice([0.0, 1.0, 60.0])), float(rng.choice([0.0, 0.5]))
        rows = np.empty(n, np.int64)
        cols = np.empty(n, np.int64)
        k = _sole_keeps(
            rp, rs, rro, dp[None, :], ds[None, :], 0, m, dro, thr_bps, thr_frac, rows, cols, np.empty(m, np.bool_)
        )
        if k < 0:
            continue
        answered += 1
        cost, ok = _costs(rp, rs, rro, dp, ds, dro, thr_bps, thr_frac)
        r_ref, c_ref = lsap(cost)
        assert rows[:k].tolist() == r_ref.tolist() and cols[:k].tolist() == c_ref.tolist()
        assert ok[r_ref, c_ref].all()
    assert 0.2 * trials < answered < 0.8 * trials


def test_lsap_hand_checked_and_its_errors() -> None:
    # the cheapest pairs are (0, 1) and (1, 0): 1 + 2 = 3 < 4 + 5
    rows, cols = lsap(np.array([[4.0, 1.0], [2.0, 5.0]]))
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    # a constant matrix gives the identity; an empty one nothing
    assert lsap(np.zeros((3, 3)))[1].tolist() == [0, 1, 2]
    assert lsap(np.zeros((0, 4)))[0].shape == (0,)
    with pytest.raises(ValueError, match="invalid numeric"):
        lsap(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="infeasible"):
        lsap(np.array([[np.inf, np.inf], [1.0, 2.0]]))


# ---- the refresh plan vs the Python refresh core ----------------------------------------------------------------


class Build:
    """A fast-build stand-in (what ``plan_orders`` reads from :class:`~hyper_make.fast.FastBuild`)."""

    is_fast_build = True

    def __init__(self, px: list[list[float]], sz: list[list[float]], lv: list[list[int]]) -> None:
        self._px, self._sz, self._lv = px, sz, lv

    def prices(self, side: str) -> np.ndarray:
        return np.array(self._px[SIDES.index(side)], dtype=np.float64)

    def sizes(self, side: str) -> np.ndarray:
        return np.array(self._sz[SIDES.index(side)], dtype=np.float64)

    def levels(self, side: str) -> np.ndarray:
        return np.array(self._lv[SIDES.index(side)], dtype=np.int64)


@dataclasses.dataclass
class Case:
    """One refresh: the desired ladder per side, the view's orders, and the limits (USD, coins)."""

    px: list[list[float]]
    sz: list[list[float]]
    lv: list[list[int]]
    resting: list[tuple[int, int, float, float, bool]]  # id, side, price, size, reduce-only
    pending: list[tuple[int, float]]  # side, size
    unseen: list[tuple[int, float]]  # side, price
    inventory: float
    max_position: float
    thr_bps: float
    thr_frac: float
    reduce_only: bool
    book: tuple[float, float] | None
    margin: float
    start: int
    seed: int = 7


def factory(c: Case) -> CloidFactory:
    return CloidFactory(c.seed, start=c.start)


def cloid(c: Case, i: int) -> str:
    return f"0x{factory(c)._prefix}{i:016x}"


def counter(cl: str) -> int:
    return int(cl[18:], 16)


def view_of(c: Case, resting: list[tuple[int, int, float, float, bool]] | None = None) -> VenueView:
    rest = c.resting if resting is None else resting
    return VenueView(
        ts_ns=10**10,
        book=BookTop(c.book[0], c.book[1], 10**10) if c.book is not None else None,
        traded_coins=0.0,
        resting=tuple(RestingOrder(SIDES[s], p, z, cloid(c, i), None, ro) for i, s, p, z, ro in rest),
        pending=tuple(RestingOrder(SIDES[s], 50.0, z, cloid(c, 10**6 + k)) for k, (s, z) in enumerate(c.pending)),
        unseen=tuple(RestingOrder(SIDES[s], p, 1.0, cloid(c, 2 * 10**6 + k)) for k, (s, p) in enumerate(c.unseen)),
        fills=(),
        position_coins=c.inventory,
        margin_usd=1e6,
        pnl_usd=0.0,
        latency_s=0.05,
        book_interval_s=0.05,
    )


_QUOTER: list[Quoter] = []


def quoter(c: Case) -> Quoter:
    """A real refresh core with this case's limit, thresholds and last-look margin (the margin is otherwise
    ``alo_guard_sigmas·σ·√τ`` from the estimator: here the drawn value, as the kernel takes it)."""
    if not _QUOTER:
        _QUOTER.append(
            Quoter(
                spec=default_spec(),
                allocator=make_allocator("flat"),
                prior=default_snapshot(),
                ladder=LadderConfig(),
                config=QuoterConfig(fast_path=False),
                cloids=CloidFactory(),
            )
        )
    q = _QUOTER[0]
    q.max_position_coins = c.max_position
    q.config = QuoterConfig(orders=orders_config(c), fast_path=False)
    q.last_build = None

    def crossing(actions: Any, view: VenueView) -> list[str]:
        # Quoter.crossing with the case's margin in place of the estimator's
        book = view.book
        if book is None or not book.is_two_sided:
            return []
        return crossing_cloids(
            actions,
            best_bid_usd=book.best_bid_usd,
            best_ask_usd=book.best_ask_usd,
            margin_frac=c.margin,
            own_unseen=view.unseen,
        )

    q.crossing = crossing  # type: ignore[method-assign]
    return q


def orders_config(c: Case) -> OrderManagerConfig:
    return OrderManagerConfig(requote_price_bps=c.thr_bps, requote_size_frac=c.thr_frac, reduce_only=c.reduce_only)


def python_refresh(c: Case) -> tuple[dict[str, Any], Quoter, VenueView]:
    """The Python refresh core's plan (after the diff, the fit and the last look), as comparable lists."""
    from hyper_make.strategy.orders import plan_orders

    q, v, cf = quoter(c), view_of(c), factory(c)
    plan = plan_orders(
        Build(c.px, c.sz, c.lv),
        v.resting,
        inventory_coins=c.inventory,
        max_position_coins=c.max_position,
        cloids=cf,
        config=orders_config(c),
    )
    plan, deferred = q._fit(plan, v)
    q._deferred = deferred
    plan, skipped = q.last_look(plan, v)
    out = as_lists(plan)
    out["deferred"] = [
        (counter(p.cloid), SIDES.index(p.side), p.price, p.size, p.reduce_only, p.level) for p in deferred
    ]
    out["crossing"] = skipped
    out["next_id"] = cf.issued
    out["stopped"] = [s for s in SIDES if s in plan.stopped]
    # the object wrapper: the same OrderPlan (batches and reasons included), deferred orders and factory counter
    cf2 = factory(c)
    plan2, deferred2, skipped2 = plan_refresh_objects(
        Build(c.px, c.sz, c.lv), v, cloids=cf2, max_position_coins=c.max_position, config=orders_config(c),
        margin_frac=c.margin,
    )  # fmt: skip
    assert plan2.to_dict() == plan.to_dict() and plan2.kept == plan.kept
    assert deferred2 == deferred and skipped2 == skipped and cf2.issued == cf.issued
    return out, q, v


def as_lists(plan: OrderPlan) -> dict[str, Any]:
    return {
        "kept": [counter(r.cloid) for r in plan.kept],
        "cancels": [counter(a.target.cloid) for a in plan.cancels],
        "modifies": [
            (counter(m.target.cloid), counter(m.cloid), SIDES.index(m.side), m.price, m.size, m.reduce_only, m.level)
            for m in plan.modifies
        ],
        "places": [
            (counter(p.cloid), SIDES.index(p.side), p.price, p.size, p.reduce_only, p.level) for p in plan.places
        ],
    }


def arrays(c: Case, resting: list[tuple[int, int, float, float, bool]] | None = None) -> dict[str, Any]:
    rest = c.resting if resting is None else resting
    nd = max(len(c.px[0]), len(c.px[1]), 1)
    d_px, d_sz, d_lv = np.zeros((2, nd)), np.zeros((2, nd)), np.zeros((2, nd), np.int64)
    for s in range(2):
        n = len(c.px[s])
        d_px[s, :n], d_sz[s, :n], d_lv[s, :n] = c.px[s], c.sz[s], c.lv[s]
    return {
        "d": (d_px, d_sz, d_lv, np.array([len(c.px[0]), len(c.px[1])], np.int64)),
        "r": (
            np.array([o[0] for o in rest], np.int64),
            np.array([o[1] for o in rest], np.int64),
            np.array([o[2] for o in rest], np.float64),
            np.array([o[3] for o in rest], np.float64),
            np.array([o[4] for o in rest], np.bool_),
        ),
        "p": (np.array([o[0] for o in c.pending], np.int64), np.array([o[1] for o in c.pending], np.float64)),
        "u": (np.array([o[0] for o in c.unseen], np.int64), np.array([o[1] for o in c.unseen], np.float64)),
        "book": (c.book is not None, *(c.book if c.book is not None else (0.0, 0.0))),
    }


def kernel_refresh(c: Case) -> tuple[dict[str, Any], np.ndarray, int]:
    """The kernel's plan, as the same lists (ids through the resting arrays and the rows)."""
    a = arrays(c)
    r_id = a["r"][0]
    outs = new_outputs(len(c.resting), len(c.px[0]) + len(c.px[1]))
    n_kept, n_cancel, n_mod, n_place, n_def, n_cross, next_id, stop_b, stop_a = plan_refresh(
        *a["d"],
        *a["r"],
        *a["p"],
        *a["u"],
        c.inventory,
        c.max_position,
        c.thr_bps,
        c.thr_frac,
        c.reduce_only,
        *a["book"],
        c.margin,
        c.start,
        *outs,
    )
    kept, cancel, mod, place, deferred = outs

    def prow(row: np.ndarray) -> tuple[Any, ...]:
        return (int(row[P_ID]), int(row[P_SIDE]), row[P_PRICE], row[P_SIZE], bool(row[P_RO]), int(row[P_LEVEL]))

    out = {
        "kept": [int(r_id[i]) for i in kept[:n_kept]],
        "cancels": [int(r_id[i]) for i in cancel[:n_cancel]],
        "modifies": [
            (
                int(r_id[int(m[M_TARGET])]),
                int(m[M_ID]),
                int(m[M_SIDE]),
                m[M_PRICE],
                m[M_SIZE],
                bool(m[M_RO]),
                int(m[M_LEVEL]),
            )
            for m in mod[:n_mod]
        ],
        "places": [prow(p) for p in place[:n_place]],
        "deferred": [prow(p) for p in deferred[:n_def]],
        "crossing": n_cross,
        "next_id": next_id,
        "stopped": [s for s, hit in zip(SIDES, (stop_b, stop_a), strict=True) if hit],
    }
    return out, deferred, n_def


def check_release(c: Case, q: Quoter, deferred: np.ndarray, n_def: int, later: Case) -> dict[str, Any]:
    """``Quoter.release`` on the later view (its limit and margin) against :func:`release_plan` on the same arrays."""
    assert q is quoter(later)  # the same core, its deferred additions kept, the later limit and margin set
    v = view_of(later)
    objs = q._deferred
    ref = q.release(v)
    mine = release_objects(objs, v, max_position_coins=later.max_position, config=orders_config(later),
                           margin_frac=later.margin)  # fmt: skip
    assert mine.to_dict() == ref.to_dict() and mine.places == ref.places
    a = arrays(later)
    out = np.empty((max(n_def, 1), 6))
    n_place, n_cross = release_plan(
        deferred,
        n_def,
        a["r"][1],
        a["r"][3],
        *a["p"],
        *a["u"],
        later.inventory,
        later.max_position,
        *a["book"],
        later.margin,
        out,
    )
    got = [(int(p[P_ID]), int(p[P_SIDE]), p[P_PRICE], p[P_SIZE], bool(p[P_RO]), int(p[P_LEVEL])) for p in out[:n_place]]
    assert got == as_lists(ref)["places"]
    assert not ref.cancels and not ref.modifies and not ref.kept
    return {"placed": n_place, "crossing": n_cross}


TICK, LOT, MID = 0.5, 0.01, 100.0


def random_case(rnd: np.random.Generator) -> Case:
    """A random refresh (``benchmarks/bench_orders_kernel.py --identity`` runs many): ladders of 0 to 6 orders a side
    on a 0.5 USD grid around 100 USD, lot sizes of 0.01 coins (some splitting the side's room exactly), resting
    copies of desired orders within and just past the thresholds, pending and unseen orders, inventories inside and
    past the limit, books moved through the ladder, every threshold, reduce-only marking and margin."""
    max_pos = float(rnd.choice([0.05, 0.2, 0.5, 1.0, 3.0]))
    # flat, inside the limit, or past it (a side then has no room: it stops)
    inventory = float(np.round(rnd.choice([0.0, rnd.uniform(-0.6, 0.6), rnd.uniform(-1.2, 1.2)]) * max_pos / LOT) * LOT)
    px: list[list[float]] = [[], []]
    sz: list[list[float]] = [[], []]
    lv: list[list[int]] = [[], []]
    for s in range(2):
        n = int(rnd.integers(0, 7))
        ticks = np.sort(rnd.choice(np.arange(1, 20), n, replace=False))  # best first: nearest the mid first
        sign = -1.0 if s == 0 else 1.0
        px[s] = [MID + sign * TICK * float(t) for t in ticks]
        if n and rnd.random() < 0.4:
            # the side's room split into lots: the desired total is the limit, so a kept order larger than its
            # target passes it (the position guard re-sizes it)
            room = round((max_pos - inventory if s == 0 else max_pos + inventory) / LOT)
            cuts = np.sort(rnd.integers(0, room + 1, n - 1)) if room > 0 else np.zeros(n - 1, np.int64)
            lots = np.diff(np.concatenate(([0], cuts, [max(room, 0)])))
            sz[s] = [LOT * float(k) if k > 0 else LOT for k in lots]
        else:
            # sizes up to a fraction or a multiple of the limit per order (a multiple breaches it: the side stops)
            top = max(2, int(max_pos / LOT / max(n, 1) * rnd.choice([0.3, 0.6, 1.0, 1.5, 4.0])))
            sz[s] = [LOT * float(k) for k in rnd.integers(1, top, n)]
        # levels usually ascending, sometimes shuffled or tied (the fit's sort by level is stable)
        lv[s] = list(range(n)) if rnd.random() < 0.6 else rnd.integers(0, 3, n).tolist()
    if rnd.random() < 0.15:
        # a ladder that unwinds the position: the inventory is the first orders of one side (reduce-only at the edge)
        s = int(rnd.integers(0, 2))
        if sz[s]:
            inventory = float(sum(sz[s][: int(rnd.integers(1, len(sz[s]) + 1))])) * (-1.0 if s == 0 else 1.0)
    start = int(rnd.integers(0, 50))
    resting: list[tuple[int, int, float, float, bool]] = []
    ids = rnd.choice(np.arange(0, 80), 12, replace=False).tolist()
    for _ in range(int(rnd.integers(0, 9))):
        s = int(rnd.integers(0, 2))
        ro = bool(rnd.random() < 0.25)
        if px[s] and rnd.random() < 0.6:
            # a copy of a desired order, or one within (or just past) the requote thresholds
            j = int(rnd.integers(0, len(px[s])))
            p = px[s][j] + float(rnd.choice([0.0, 0.0, 0.005, -0.01, TICK]))
            z = sz[s][j] + LOT * float(rnd.choice([0, 0, 1, 1, 1, -1, 5]))
        else:
            p = MID + (-1.0 if s == 0 else 1.0) * TICK * float(rnd.integers(1, 25))
            z = LOT * float(rnd.integers(1, max(2, int(0.4 * max_pos / LOT))))
        if z > 0:
            resting.append((int(ids.pop()), s, p, z, ro))
    pending = [
        (int(rnd.integers(0, 2)), LOT * float(rnd.integers(1, max(2, int(0.5 * max_pos / LOT)))))
        for _ in range(int(rnd.integers(0, 3)))
    ]
    unseen = [
        (s := int(rnd.integers(0, 2)), MID + (1.0 if s == 0 else -1.0) * TICK * float(rnd.integers(-4, 6)))
        for _ in range(int(rnd.integers(0, 3)))
    ]
    book = None
    if rnd.random() < 0.85:
        # sometimes moved through our ladder (a crossing), often at one of its prices (a crossing at equality)
        bid = MID + TICK * float(rnd.integers(-8, 8))
        book = (bid, bid + TICK * float(rnd.integers(1, 5)))
    return Case(
        px=px,
        sz=sz,
        lv=lv,
        resting=resting,
        pending=pending,
        unseen=unseen,
        inventory=inventory,
        max_position=max_pos,
        thr_bps=float(rnd.choice([0.0, 0.5, 1.0, 5.0, 60.0])),
        thr_frac=float(rnd.choice([0.0, 0.05, 0.1, 0.5])),
        reduce_only=bool(rnd.random() < 0.5),
        book=book,
        margin=float(rnd.choice([0.0, 0.0, 1e-4, 1e-2])),
        start=start,
    )


def cases() -> st.SearchStrategy[Case]:
    return st.integers(0, 2**32 - 1).map(lambda seed: random_case(np.random.default_rng(seed)))


def check_case(c: Case, later: Case) -> None:
    """The kernels against the Python on ``c``, then the release of its deferred orders on the view ``later``."""
    ref, q, _ = python_refresh(c)
    got, deferred, n_def = kernel_refresh(c)
    for key in ref:
        assert got[key] == ref[key], key
    # the release on a later view (other resting, pending and unseen orders, book, limit) of the same deferred rows
    later = dataclasses.replace(later, seed=c.seed)
    check_release(c, q, deferred, n_def, later)


@SETTINGS
@given(cases(), cases())
def test_the_kernel_plan_is_the_python_refresh_cores(c: Case, later: Case) -> None:
    check_case(c, later)


# ---- hand-checked refreshes -------------------------------------------------------------------------------------


def hand(**kw: Any) -> Case:
    base: dict[str, Any] = {
        "px": [[], []], "sz": [[], []], "lv": [[], []], "resting": [], "pending": [], "unseen": [], "inventory": 0.0,
        "max_position": 1.0, "thr_bps": 1.0, "thr_frac": 0.1, "reduce_only": False, "book": (100.0, 100.5),
        "margin": 0.0, "start": 0,
    }  # fmt: skip
    return Case(**(base | kw))


def both(c: Case) -> dict[str, Any]:
    ref, _, _ = python_refresh(c)
    got, _, _ = kernel_refresh(c)
    assert got == ref
    return got


def test_a_side_over_its_limit_is_not_quoted_and_its_orders_are_cancelled() -> None:
    # long 0.5 of 1 coin: bids may total 0.5; the desired 0.3 + 0.3 breaches it, the asks (room 1.5) do not
    c = hand(
        px=[[99.5, 99.0], [100.5]],
        sz=[[0.3, 0.3], [0.2]],
        lv=[[0, 1], [0]],
        inventory=0.5,
        resting=[(4, 0, 99.5, 0.3, False), (9, 1, 100.5, 0.2, False), (2, 0, 98.0, 0.1, False)],
    )
    got = both(c)
    assert got["stopped"] == ["bid"] and got["cancels"] == [4, 2]  # every bid, in the view's order
    assert got["kept"] == [9] and not got["places"] and not got["modifies"]
    assert got["next_id"] == 10  # past the resting ids


def test_the_position_guard_resizes_a_kept_order_larger_than_its_target() -> None:
    # the desired bids total the limit (0.5 + 0.5 = 1 coin); the order of 0.55 at 99.5 is within the 10 % size
    # threshold of its target but would take the side to 1.05: it is re-sized (a modify to 0.5), the exact one kept;
    # the worst case then counts the old 0.55 and the new 0.5, so the re-size waits for the cancel (deferred)
    c = hand(
        px=[[99.5, 99.0], []],
        sz=[[0.5, 0.5], []],
        lv=[[0, 1], []],
        resting=[(1, 0, 99.5, 0.55, False), (2, 0, 99.0, 0.5, False)],
    )
    got = both(c)
    assert got["kept"] == [2] and got["cancels"] == [1] and not got["modifies"]
    assert got["deferred"] == [(3, 0, 99.5, 0.5, False, 0)]
    # with room to spare (limit 2 coins) both are kept as they are
    got = both(dataclasses.replace(c, max_position=2.0))
    assert got["kept"] == [1, 2] and not got["cancels"] and not got["deferred"]


def test_a_fit_that_defers_a_modify_and_its_release() -> None:
    # a bid of 0.5 re-priced 99.5 -> 99.0 (a modify); with 0.2 pending, the worst case counts the old and the new
    # order: 0.2 + 0.5 + 0.5 = 1.2 > 1 coin, so the old one is cancelled now and the new one (same id) deferred
    c = hand(px=[[99.0], []], sz=[[0.5], []], lv=[[0], []], resting=[(3, 0, 99.5, 0.5, False)], pending=[(0, 0.2)])
    got = both(c)
    assert got["cancels"] == [3] and not got["modifies"] and not got["places"]
    assert got["deferred"] == [(4, 0, 99.0, 0.5, False, 0)]
    _, q, _ = python_refresh(c)
    _, deferred, n_def = kernel_refresh(c)
    # once the old order is gone: 0.2 + 0.5 fits; with a 0.4 bid still resting it would not (1.1 coins)
    assert check_release(c, q, deferred, n_def, dataclasses.replace(c, resting=[]))["placed"] == 1
    _, q, _ = python_refresh(c)
    assert check_release(c, q, deferred, n_def, dataclasses.replace(c, resting=[(3, 0, 99.5, 0.4, False)])) == {
        "placed": 0,
        "crossing": 0,
    }


def test_a_crossing_modify_becomes_a_cancel_of_its_target() -> None:
    # an ask moved 101 -> 100.5: above the best bid 100, but at our unseen bid of 100.5 (it may rest): it could
    # cross, so the modify becomes a cancel of the old ask; the new bid at 99.5 stays
    c = hand(
        px=[[99.5], [100.5]],
        sz=[[0.1], [0.1]],
        lv=[[0], [0]],
        resting=[(5, 1, 101.0, 0.1, False)],
        unseen=[(0, 100.5)],
        book=(100.0, 101.0),
    )
    got = both(c)
    assert got["crossing"] == 1 and got["cancels"] == [5] and not got["modifies"]
    assert got["places"] == [(6, 0, 99.5, 0.1, False, 0)]
    # without a book nothing is flagged
    assert both(dataclasses.replace(c, book=None))["modifies"] == [(5, 7, 1, 100.5, 0.1, False, 0)]


def test_the_object_wrapper_on_a_built_ladder_and_its_errors() -> None:
    from hyper_make import build_ladder
    from hyper_make.errors import InvalidParameterError
    from hyper_make.strategy.orders import plan_orders

    ladder = build_ladder(default_snapshot(), default_spec(), make_allocator("flat"), rng=0)
    c = hand(max_position=0.5, start=3)
    cf = factory(c)
    o = ladder.bids[1]
    resting = [(1, 0, o.price, o.size, False), (2, 1, ladder.asks[0].price + 5.0, 0.01, False)]
    v = view_of(c, resting)
    ref = plan_orders(ladder, v.resting, inventory_coins=0.0, max_position_coins=0.5, cloids=cf)
    q = quoter(c)
    ref, deferred = q._fit(ref, v)
    ref, skipped = q.last_look(ref, v)
    cf2 = factory(c)
    plan, deferred2, skipped2 = plan_refresh_objects(
        ladder, v, cloids=cf2, max_position_coins=0.5, config=OrderManagerConfig(), margin_frac=0.0
    )
    assert plan.to_dict() == ref.to_dict() and deferred2 == deferred and skipped2 == skipped
    assert [r.cloid for r in plan.kept] == [cloid(c, 1)] and cf2.issued == cf.issued
    kw = {"cloids": factory(c), "max_position_coins": 0.5, "config": OrderManagerConfig(), "margin_frac": 0.0}
    foreign = dataclasses.replace(v, resting=(RestingOrder("bid", 99.0, 0.1, f"0x{1:032x}"),))
    with pytest.raises(InvalidParameterError, match=r"view.resting\[0\].*not a cloid of this factory"):
        plan_refresh_objects(ladder, foreign, **kw)
    twice = dataclasses.replace(v, resting=(v.resting[0], v.resting[0]))
    with pytest.raises(InvalidParameterError, match="same id"):
        plan_refresh_objects(ladder, twice, **kw)
    with pytest.raises(InvalidParameterError, match="'desired' must be a Ladder"):
        plan_refresh_objects(list(ladder.bids), v, **kw)
    assert release_objects((), v, max_position_coins=0.5, config=OrderManagerConfig(), margin_frac=0.0).n_actions == 0


def test_warm_up_plans_a_deferral_without_error() -> None:
    warm_up()  # compiled (or loaded) with a refresh's argument types


def test_bad_arrays_raise_a_clear_error() -> None:
    c = hand(px=[[99.0], []], sz=[[0.5], []], lv=[[0], []])
    a = arrays(c)
    outs = new_outputs(0, 1)
    args = (*a["p"], *a["u"], 0.0, 1.0, 1.0, 0.1, False, *a["book"], 0.0, 0)
    with pytest.raises(ValueError, match="r_side must be 0"):
        plan_refresh(*a["d"], np.array([1]), np.array([2]), np.array([99.0]), np.array([0.1]), np.array([False]),
                     *args, *new_outputs(1, 1))  # fmt: skip
    with pytest.raises(ValueError, match=r"r_id must be in \[0, 2\^53\)"):
        plan_refresh(*a["d"], np.array([2**60]), np.array([0]), np.array([99.0]), np.array([0.1]),
                     np.array([False]), *args, *new_outputs(1, 1))  # fmt: skip
    with pytest.raises(ValueError, match="n_d"):
        plan_refresh(a["d"][0], a["d"][1], a["d"][2], np.array([5, 0]), *a["r"], *args, *outs)
    with pytest.raises(ValueError, match="out_place"):
        plan_refresh(*a["d"], *a["r"], *args, *new_outputs(0, 0))
    bad_inventory = (*args[:4], float("nan"), *args[5:])
    with pytest.raises(ValueError, match="inventory must be finite"):
        plan_refresh(*a["d"], *a["r"], *bad_inventory, *outs)
    e = np.zeros(0, np.int64), np.zeros(0)
    with pytest.raises(ValueError, match="p_side must be 0"):
        release_plan(np.zeros((1, 6)), 1, *e, np.array([3]), np.array([0.1]), *e, 0.0, 1.0, False, 0.0, 0.0, 0.0,
                     np.zeros((1, 6)))  # fmt: skip
