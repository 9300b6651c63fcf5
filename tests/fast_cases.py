"""Random snapshots for the fast path's identity check: the compiled build against the reference, order by order.

Shared by ``tests/fast/test_identity.py`` (a few hundred cases in CI) and ``benchmarks/bench_fastpath.py`` (10^5
per allocator). Case ``i`` of seed ``s`` for allocator ``name`` starts from :func:`ladder_fuzz.case` (mid 1e-4 to
1e6 USD, ``szDecimals`` 0 to 6, inventory up to 1.5x the limit either way, rebates to 5 bps fees, σ, volume
missing one time in ten or a profile, every grid spacing and touch, every fill and adverse model, impact on/off
and β in [0.3, 2], stealth modes), and adds what the refresh core passes: reserved coins on either side (a third
of the cases), a second build from the first one's state (``entropy``, whose target carries over). Half the cases
are moved to a market where ladders rest (σ, fees, volume and models of a real perp's, a position limit of 3 to
300 minimum orders), a quarter get a limit of a few minimum orders so that the minimum-order search binds. The
generators of the two paths must end in the same state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

import ladder_fuzz
from hyper_make import (
    ExponentialAdverse,
    ExponentialIntensity,
    InvalidParameterError,
    SquareRootImpact,
    build_ladder,
    make_allocator,
)
from hyper_make.fast import FastLadder


@dataclass(frozen=True)
class FastCase:
    """One random market, its reserved coins and the allocator."""

    base: ladder_fuzz.Case
    reserved: dict[str, float]


def fast_case(seed: int, index: int, allocator: str) -> FastCase:
    """The ``index``-th case of ``seed`` run with ``allocator`` (see the module docstring)."""
    c = ladder_fuzz.case(seed, index)
    rng = np.random.default_rng([seed, index, 15])
    snap, cfg = c.snapshot, c.config
    if allocator.startswith("impact-") and cfg.stealth.mode != "off":
        cfg = dataclasses.replace(cfg, stealth=dataclasses.replace(cfg.stealth, mode="off"))
    if rng.random() < 0.5:
        # a market where ladders rest (the fuzz ranges leave many sides empty): σ, fees, volume and models of the
        # order of a real perp's, margin ample, a position limit of 3 to 300 minimum orders
        min_coins = c.spec.min_notional_usd / snap.mid_usd
        limit = min_coins * float(10.0 ** rng.uniform(0.5, 2.5))
        snap = dataclasses.replace(
            snap,
            sigma_frac=float(10.0 ** rng.uniform(-5.0, -3.0)),
            maker_fee_bps=float(rng.uniform(-0.5, 2.0)),
            daily_volume_coins=limit * float(10.0 ** rng.uniform(4.0, 7.0)),
            max_position_coins=limit,
            inventory_coins=limit * float(rng.uniform(-1.2, 1.2)),
            margin_usd=limit * snap.mid_usd * 10.0,
        )
        cfg = dataclasses.replace(
            cfg,
            fill=ExponentialIntensity(
                intensity_per_s=float(10.0 ** rng.uniform(-1.5, 0.5)), kappa_per_bps=float(rng.uniform(0.05, 0.6))
            ),
            adverse=ExponentialAdverse(as0_bps=float(rng.uniform(0.0, 5.0)), decay_bps=float(rng.uniform(2.0, 20.0))),
            impact=SquareRootImpact(
                forward_coef=float(rng.uniform(0.0, 2.0)), roundtrip_coef=float(rng.uniform(0.0, 2.0)), beta=0.5
            ),
            horizon_s=float(rng.uniform(5.0, 60.0)),
        )
    elif rng.random() < 0.5:
        # a position limit of a few minimum orders: the minimum-order search decides what rests
        min_coins = c.spec.min_notional_usd / snap.mid_usd
        snap = dataclasses.replace(
            snap,
            max_position_coins=min_coins * float(rng.uniform(0.5, 12.0)),
            inventory_coins=min_coins * float(rng.uniform(-3.0, 3.0)),
        )
    reserved: dict[str, float] = {}
    if rng.random() < 1 / 3:
        for side in ("bid", "ask"):
            if rng.random() < 0.7:
                reserved[side] = float(snap.max_position_coins * rng.uniform(0.0, 1.2))
    return FastCase(dataclasses.replace(c, snapshot=snap, config=cfg, allocator=allocator), reserved)


def mismatch(fc: FastCase) -> str:
    """``""`` when the fast path gives the reference's orders and state on ``fc`` (both refusing counts as equal),
    else what differs."""
    return check(fc)[0]


def check(fc: FastCase) -> tuple[str, bool]:
    """:func:`mismatch` and whether the fast path rested any order."""
    what, fast = _compare(fc)
    return what, bool(getattr(fast, "n_bid", 0) or getattr(fast, "n_ask", 0))


def _compare(fc: FastCase) -> tuple[str, Any]:
    c = fc.base
    alloc = make_allocator(c.allocator)
    ref: Any
    g_ref, g_fast = np.random.default_rng([c.seed, c.index]), np.random.default_rng([c.seed, c.index])
    try:
        ref = build_ladder(c.snapshot, c.spec, alloc, config=c.config, rng=g_ref, reserved_coins=fc.reserved)
    except InvalidParameterError as exc:
        ref = exc
    try:
        builder = FastLadder(c.spec, alloc, c.config)
        try:
            # a first build on another generator: the compared one then runs as a loop's builds do, after the first
            builder.build(c.snapshot, rng=np.random.default_rng(0), reserved_coins=fc.reserved)
        except InvalidParameterError:
            pass
        fast: Any = builder.build(c.snapshot, rng=g_fast, reserved_coins=fc.reserved)
    except InvalidParameterError as exc:
        fast = exc
    if g_ref.bit_generator.state != g_fast.bit_generator.state:
        return "the generators' states differ after the builds", fast
    if isinstance(ref, Exception) or isinstance(fast, Exception):
        if isinstance(ref, Exception) and isinstance(fast, Exception) and str(ref) == str(fast):
            return "", fast
        return f"reference {ref!r} vs fast {fast!r}", fast
    if c.allocator == "entropy" and not (isinstance(ref, Exception) or isinstance(fast, Exception)):
        # a second refresh from each path's own state: the carried entropy target must agree too
        g_ref, g_fast = np.random.default_rng([c.seed, c.index, 1]), np.random.default_rng([c.seed, c.index, 1])
        ref = build_ladder(
            c.snapshot, c.spec, alloc, config=c.config, rng=g_ref, reserved_coins=fc.reserved, state=ref.state
        )
        fast = builder.build(c.snapshot, rng=g_fast, reserved_coins=fc.reserved, state=fast.state)
        if g_ref.bit_generator.state != g_fast.bit_generator.state:
            return "the generators' states differ after the builds", fast
    for side in ("bid", "ask"):
        orders = ref.side(side).orders
        want_p = np.array([o.price for o in orders])
        want_s = np.array([o.size for o in orders])
        want_l = np.array([o.level for o in orders], dtype=np.int64)
        if not (
            np.array_equal(want_p, fast.prices(side))
            and np.array_equal(want_s, fast.sizes(side))
            and np.array_equal(want_l, fast.levels(side))
        ):
            return (
                f"{side}: reference prices {want_p.tolist()} sizes {want_s.tolist()} vs fast "
                f"{fast.prices(side).tolist()} {fast.sizes(side).tolist()}"
            ), fast
        # the curve terms of the orders' levels (what the run record sums), as the reference's curves publish them
        c_ref = ref.side(side).curves
        for name, arr in (
            ("fill_prob", c_ref.fill_prob), ("capture", c_ref.capture_usd), ("adverse", c_ref.adverse_usd),
            ("inventory", c_ref.inventory), ("b_forward", c_ref.b_forward), ("b_roundtrip", c_ref.b_roundtrip),
        ):  # fmt: skip
            if not np.array_equal(np.asarray(arr)[want_l], fast.row(side, name)):
                return f"{side}: curve term {name} differs", fast
    diag = ref.bid.allocation.diagnostics or ref.ask.allocation.diagnostics
    for key in ("sampling_cost_usd", "inventory_risk_usd"):
        if diag.get(key) != fast.allocation_diagnostics.get(key):
            return f"diagnostic {key}: {diag.get(key)!r} vs {fast.allocation_diagnostics.get(key)!r}", fast
    if repr(ref.state) != repr(fast.state) or ref.reservation_usd != fast.reservation_usd:
        return (
            f"state/reservation: {ref.state!r} {ref.reservation_usd!r} vs {fast.state!r} {fast.reservation_usd!r}"
        ), fast
    return "", fast
