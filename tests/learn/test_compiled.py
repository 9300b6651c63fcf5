"""The compiled learner and learned allocator against the NumPy reference (:mod:`hyper_make.learn._reference`):
the same state after random updates, the same posterior, curves and Thompson draws from the same generator, and the
same ladders (sizes, curves, messages) from the array entry and the reference allocate_both, all bit for bit but
for what passes through numba's ``log`` or ``**`` (the size fit's likelihood, a side's expected PnL: 1e-12)."""

from __future__ import annotations

import copy
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper_make.learn import LearnerConfig, LevelObservations, PayoutLearner
from hyper_make.learn import _reference as ref
from learn._synth import DEPTHS, TrueModel, interval, make_prior, prior_markout, prior_rate

RTOL = 1e-12


def fma(a: float, b: float, c: float) -> float:
    """``a·b + c`` rounded once (exact rationals, then the nearest float)."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def _numpy_sums_as_assumed() -> bool:
    """Whether this machine's NumPy (its BLAS and LAPACK kernels are picked by CPU) sums a small matrix product in
    index order by fused multiply-adds and inverts a 2×2 by LAPACK's LU as the kernels do: where it does, the
    compiled path is the reference's bit for bit and the tests say so; elsewhere they hold it to 1e-12."""
    from hyper_make.learn._kernels import _inv2, _pool
    from hyper_make.learn._learner import pooling_kernel

    rng = np.random.default_rng(0)
    K = pooling_kernel(12, 1.0)
    out = np.empty(12)
    for _ in range(50):
        v = rng.normal(size=(2, 12)) * np.exp(rng.normal(size=(2, 12)) * 3)  # (side, bucket), as the learner pools
        _pool(v[1], K, out)
        x = rng.normal(size=(5, 2))
        m = x.T @ x + rng.uniform(0.1, 10.0) * np.eye(2)
        inv, y = np.linalg.inv(m), rng.normal(size=2)
        lc = np.linalg.cholesky(m)
        if not (
            np.array_equal(out, (v @ K.T)[1])
            and np.array_equal(_inv2(*m.ravel()), inv.ravel())
            and (inv @ y)[0] == fma(inv[0, 0], y[0], inv[0, 1] * y[1])  # the display fit's product
            and lc[1, 0] == m[1, 0] * (1.0 / np.sqrt(m[0, 0]))  # the draw's Cholesky factor
            and (lc @ y)[1] == fma(lc[1, 0], y[0], lc[1, 1] * y[1])
        ):
            return False
    return True


EXACT = _numpy_sums_as_assumed()


def _random_learner(seed: int, **kw: object) -> tuple[PayoutLearner, PayoutLearner, np.random.Generator]:
    """Two copies of one learner config; random intervals (with bad values, drift rows, missing totals) are
    learned by the compiled update on the first and the reference on the second."""
    rng = np.random.default_rng(seed)
    cfg = LearnerConfig(**kw)  # type: ignore[arg-type]
    a, b = PayoutLearner(cfg, make_prior()), PayoutLearner(cfg, make_prior())
    model = TrueModel(
        rate=lambda d: prior_rate(d) * rng.uniform(0.3, 3.0),
        markout=lambda d: prior_markout(d) + rng.normal(0.0, 3.0),
        theta_bps=float(rng.uniform(0.0, 40.0)),
        beta=float(rng.choice([0.5, 1.0])),
        kappa_bps=float(rng.uniform(0.0, 10.0)),
        tail_dof=float(rng.choice([3.0, np.inf])),
    )
    for _ in range(int(rng.integers(1, 8))):
        sizes = rng.uniform(0.002, 0.05, DEPTHS.size)
        obs = interval(
            rng, model, DEPTHS, sizes, duration_s=float(rng.uniform(0.5, 30.0)), horizons_s=cfg.markout_horizons_s
        )
        fills = {
            f: getattr(obs, f).copy() for f in ("fill_side_total_coins", "fill_order_size_coins", "fill_markout_usd")
        }
        if obs.n_fills:  # a venue's gaps: unknown totals and order sizes, a lost markout
            i = rng.integers(0, obs.n_fills, 3)
            fills["fill_side_total_coins"][i[0]] = np.nan
            fills["fill_order_size_coins"][i[1]] = np.nan
            fills["fill_markout_usd"][i[2], 0] = np.inf
        nd = int(rng.integers(0, 3))
        dt = rng.uniform(0.2, 3.0, nd)
        if nd:
            dt[0] = np.nan if rng.random() < 0.3 else dt[0]
        obs = LevelObservations(
            duration_s=obs.duration_s,
            rest_side=obs.rest_side,
            rest_depth_bps=np.where(rng.random(obs.n_resting) < 0.05, np.nan, obs.rest_depth_bps),
            rest_size_coins=obs.rest_size_coins,
            rest_time_s=obs.rest_time_s,
            fill_side=obs.fill_side,
            fill_depth_bps=obs.fill_depth_bps,
            fill_size_coins=obs.fill_size_coins,
            fill_price_usd=obs.fill_price_usd,
            horizons_s=obs.horizons_s,
            drift_dt_s=dt,
            drift_bps=rng.normal(0.0, 2.0, nd),
            drift_display_coins=rng.normal(0.0, 0.05, nd),
            drift_position_coins=rng.normal(0.0, 0.1, nd),
            **fills,
        )
        ra, rb = a.update(obs), ref.update(b, obs)
        assert ra == rb
    return a, b, rng


CASES = [
    (0, {}),
    (1, {"size_penalty": "linear", "markout_horizons_s": (1.0, 5.0), "half_life_s": math.inf}),
    (2, {"size_penalty": "power", "huber_k": math.inf, "pool_width_buckets": 0.0}),
    (3, {"size_penalty": "sqrt", "prior_fills": 1.0, "size_ref_coins": 0.003}),
    (4, {"size_penalty": "auto", "half_life_s": 20.0}),
    (5, {}),
]


@pytest.mark.parametrize(("seed", "kw"), CASES)
def test_compiled_update_leaves_the_reference_state_bit_for_bit(seed, kw):
    a, b, _ = _random_learner(seed, **kw)
    for name in a.state:
        _close(a.state[name], b.state[name], name)
    assert a.counters == b.counters and a.clock_s == b.clock_s and a.n_updates == b.n_updates


def _close(x, y, what):
    """Bit for bit: what the kernels compute with NumPy's own operations or in its order (1e-12 relative where
    this machine's BLAS sums otherwise, see :func:`_numpy_sums_as_assumed`)."""
    if EXACT:
        np.testing.assert_array_equal(x, y, err_msg=what)
    else:  # pragma: no cover - another BLAS
        np.testing.assert_allclose(x, y, rtol=RTOL, atol=0.0, err_msg=what)


def _near(x, y, what):
    """To 1e-12 relative: what passes through numba's ``log`` or ``**`` (the C library's; NumPy's own SIMD routines
    can differ in the last bit)."""
    np.testing.assert_allclose(x, y, rtol=RTOL, atol=0.0, err_msg=what)


@pytest.mark.parametrize(("seed", "kw"), CASES)
def test_compiled_posterior_and_curves_match_the_reference(seed, kw):
    a, b, rng = _random_learner(seed, **kw)
    posts = ref.posteriors(b)
    for h, rp in enumerate(posts):
        cp = a._posterior(h)
        for f in ("rate_shape", "rate_rate", "dev_kappa", "dev_mean", "dev_alpha", "dev_beta", "coef", "coef_cov"):
            _close(getattr(cp, f), getattr(rp, f), f"{f} at horizon {h}")
        fa, fb = cp.fit, rp.fit
        assert (fa.beta, fa.model, fa.preferred) == (fb.beta, fb.model, fb.preferred)
        _close(
            np.array([*fa.theta_bps, *fa.kappa_bps, *fa.theta_se_bps, *fa.kappa_se_bps, *fa.n_fills]),
            np.array([*fb.theta_bps, *fb.kappa_bps, *fb.theta_se_bps, *fb.kappa_se_bps, *fb.n_fills]),
            "size fit",
        )
        _near(np.array([*fa.loglik.values(), fa.aic_sqrt, fa.aic_linear]),
              np.array([*fb.loglik.values(), fb.aic_sqrt, fb.aic_linear]), "size fit likelihood")  # fmt: skip
    da, sa, _, _ = a._display_posterior()
    dr, sr, _, _ = ref.display_posterior(b)
    _close(da, dr, "display mean")
    _close(sa, sr, "display cov")
    db, dk = np.sort(rng.uniform(0.0, 80.0, 7)), np.sort(rng.uniform(0.0, 80.0, 5))
    kw2 = {"mid_usd": float(rng.uniform(10.0, 1e5)), "horizon_s": float(rng.uniform(0.1, 10.0))}
    for i in range(3):
        pairs = [(a.mean(db, dk, **kw2), ref.mean(b, db, dk, **kw2))]
        pairs.append(
            (a.sample(np.random.default_rng(i), db, dk, **kw2), ref.sample(b, np.random.default_rng(i), db, dk, **kw2))
        )
        for ca, cb in pairs:
            assert (ca.beta, ca.model) == (cb.beta, cb.model)
            for s in ("bid", "ask"):
                for f in ("a", "b", "c", "p"):
                    _close(getattr(getattr(ca, s), f), getattr(getattr(cb, s), f), f"{s}.{f}")
                _close(getattr(ca, s).k, getattr(cb, s).k, f"{s}.k")
            _close(np.array([*ca.theta_bps, *ca.kappa_bps, ca.display_bps_per_coin_s]),
                   np.array([*cb.theta_bps, *cb.kappa_bps, cb.display_bps_per_coin_s]), "slopes")  # fmt: skip


def test_state_round_trip_after_compiled_updates(tmp_path):
    a, b, _ = _random_learner(7)
    # the schema-2 file of the compiled learner is the reference's, byte for byte
    if EXACT:
        assert a.save(tmp_path / "a.json").read_bytes() == b.save(tmp_path / "b.json").read_bytes()
    back = PayoutLearner.load(a.save(tmp_path / "s.json"))
    for name in a.state:
        np.testing.assert_array_equal(a.state[name], back.state[name])
    kw = {"mid_usd": 1e5, "horizon_s": 1.0}
    x, y = (
        a.sample(np.random.default_rng(3), DEPTHS, DEPTHS, **kw),
        back.sample(np.random.default_rng(3), DEPTHS, DEPTHS, **kw),
    )
    np.testing.assert_array_equal(x.bid.a, y.bid.a)
    c = copy.deepcopy(a)
    assert c.mean(DEPTHS, DEPTHS, **kw).ask.p.tolist() == a.mean(DEPTHS, DEPTHS, **kw).ask.p.tolist()


# ---- the learned allocator: the array entry against the reference allocate_both ----------------------------------
def _ladders(alloc, snap, lrn, seed, interval_s):
    """The ladder of the compiled allocate_both and of the reference on the same inputs and seed."""
    from hyper_make import LadderConfig, build_ladder, default_spec
    from hyper_make.allocate._learned import LearnedAllocator

    spec, cfg = default_spec(), LadderConfig()
    kw = {"config": cfg, "rng": seed, "learner": lrn, "interval_s": interval_s}
    got = build_ladder(snap, spec, alloc, **kw)
    orig = LearnedAllocator.allocate_both
    try:
        LearnedAllocator.allocate_both = lambda self, b, a, c, r: ref.allocate_both(self, b, a, c, r)  # type: ignore[method-assign]
        want = build_ladder(snap, spec, alloc, **kw)
    finally:
        LearnedAllocator.allocate_both = orig  # type: ignore[method-assign]
    return got, want


ALLOCATORS = [
    {},
    {"sampling": "mean"},
    {"size_penalty": "linear"},
    {"size_penalty": "power", "sampling_cost": False},
    {"risk_aversion": 0.0, "interval_s": 5.0},
]


@pytest.mark.parametrize("case", range(10))
def test_learned_ladders_match_the_reference(case):
    from hyper_make import default_snapshot, make_allocator

    rng = np.random.default_rng(100 + case)
    kw = ALLOCATORS[case % len(ALLOCATORS)]
    alloc = make_allocator("learned", **kw)
    snap = default_snapshot()
    lrn = None
    if case % 3:  # a trained learner (its layout the allocator's); else the prior of the ladder's models
        lrn, _, _ = _random_learner(case, markout_horizons_s=alloc.markout_horizons_s, size_penalty=alloc.size_penalty)
    import dataclasses

    # the last two at the position limit: one side has no budget and enters the solve empty
    inv = float(rng.uniform(-0.4, 0.4)) if case < 8 else (1.0 if case == 8 else -1.0) * snap.max_position_coins
    snap = dataclasses.replace(snap, inventory_coins=inv,
                               sigma_frac=snap.sigma_frac * float(rng.uniform(0.3, 5.0)))  # fmt: skip
    for seed in range(4):
        got, want = _ladders(alloc, snap, lrn, seed, float(rng.choice([0.2, 1.0, 3.0])))
        for side in ("bid", "ask"):
            g, w = getattr(got, side), getattr(want, side)
            np.testing.assert_array_equal(g.allocation.sizes, w.allocation.sizes)
            np.testing.assert_array_equal(g.projection.sizes, w.projection.sizes)
            assert g.allocation.message == w.allocation.message
            assert g.allocation.binding == w.allocation.binding
            for f in ("fill_prob", "capture_usd", "b_forward"):
                _close(getattr(g.curves, f), getattr(w.curves, f), f"{side} {f}")
            assert g.curves.beta == w.curves.beta
            _near(g.allocation.expected_pnl_usd, w.allocation.expected_pnl_usd, f"{side} pnl")
            dg, dw = g.allocation.diagnostics, w.allocation.diagnostics
            assert dg.keys() == dw.keys()
            for k in dg:
                if k == "solve_ns":
                    continue
                if isinstance(dw[k], str):
                    assert dg[k] == dw[k], k
                else:  # objective parts are sums of terms of both signs: to the rounding of their terms
                    np.testing.assert_allclose(dg[k], dw[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_allocate_arrays_checks_its_scalars_and_generator():
    from hyper_make import make_allocator
    from hyper_make.errors import InvalidParameterError

    alloc = make_allocator("learned")
    lrn, _, _ = _random_learner(1, markout_horizons_s=alloc.markout_horizons_s)
    d = np.array([1.0, 3.0])
    inf = np.full(2, np.inf)
    kw = dict(budget_bid_coins=0.1, budget_ask_coins=0.1, caps_bid_coins=inf, caps_ask_coins=inf, lot_coins=1e-5,
              min_bid_coins=np.zeros(2), min_ask_coins=np.zeros(2), mid_usd=1e5, inventory_coins=0.0,
              sigma_usd_per_sqrt_s=5.0, risk_aversion=0.1, horizon_s=30.0, interval_s=1.0, learner=lrn)  # fmt: skip
    r = alloc.allocate_arrays(d, d, rng=np.random.default_rng(0), **kw)
    assert r.bid_sizes.sum() <= 0.1 + 1e-12 and r.sampling_cost_usd >= -1e-9
    with pytest.raises(InvalidParameterError, match="mid_usd"):
        alloc.allocate_arrays(d, d, rng=np.random.default_rng(0), **{**kw, "mid_usd": float("nan")})
    with pytest.raises(InvalidParameterError, match="lot_coins"):
        alloc.allocate_arrays(d, d, rng=np.random.default_rng(0), **{**kw, "lot_coins": 0.0})
    with pytest.raises(InvalidParameterError, match="rng"):
        alloc.allocate_arrays(d, d, rng=None, **kw)
    assert math.isnan(
        make_allocator("learned", sampling="mean").allocate_arrays(d, d, rng=None, **kw).sampling_cost_usd
    )


def test_the_state_dict_stays_the_learners_state():
    """The kernels work on one packed buffer; the state dict's arrays are views of it: writing through them,
    replacing one, copying or pickling the learner all keep the dict the state the learner learns from."""
    import pickle

    a, b, _ = _random_learner(11)
    kw = {"mid_usd": 1e5, "horizon_s": 1.0}
    before = a.mean(DEPTHS, DEPTHS, **kw).bid.a.copy()
    a.state["mk_y"] *= 0.5  # in place, then invalidate: the posterior reads it
    b.state["mk_y"] *= 0.5
    a.invalidate()
    np.testing.assert_allclose(a.mean(DEPTHS, DEPTHS, **kw).bid.a, ref.mean(b, DEPTHS, DEPTHS, **kw).bid.a, rtol=RTOL)
    assert not np.array_equal(a.mean(DEPTHS, DEPTHS, **kw).bid.a, before)
    a.state["filled_coins"] = a.state["filled_coins"] * 3.0  # a new array: repacked before the next use
    b.state["filled_coins"] = b.state["filled_coins"] * 3.0
    a.invalidate()
    np.testing.assert_allclose(a.mean(DEPTHS, DEPTHS, **kw).ask.p, ref.mean(b, DEPTHS, DEPTHS, **kw).ask.p, rtol=RTOL)
    obs = interval(np.random.default_rng(0), TrueModel(prior_rate, prior_markout), DEPTHS, np.full(DEPTHS.size, 0.01))
    for c in (copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        c.update(obs)  # the copy learns; the original does not move
        assert c.state["fill_count"].sum() > a.state["fill_count"].sum()
        assert all(np.shares_memory(c.state[k], c._buf) for k in c.state)
    ref.update(b, obs)
    a.update(obs)
    for name in a.state:
        _close(a.state[name], b.state[name], name)


# ---- the exact reductions the kernels are built on -----------------------------------------------------------------
_floats = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_subnormal=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(_floats, min_size=0, max_size=300))
def test_np_sum_is_numpys_pairwise_sum_bit_for_bit(xs):
    from hyper_make._exact import np_sum

    a = np.array(xs, dtype=np.float64)
    assert np_sum(a) == a.sum() or (a.size == 0 and np_sum(a) == 0.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 16), st.floats(0.0, 3.0), st.integers(0, 2**32 - 1))
def test_pooling_is_numpys_matrix_product_bit_for_bit(n_buckets, width, seed):
    from hyper_make.learn._kernels import _pool
    from hyper_make.learn._learner import pooling_kernel

    rng = np.random.default_rng(seed)
    K = pooling_kernel(n_buckets, width)
    v = rng.normal(size=(2, n_buckets)) * np.exp(rng.normal(size=(2, n_buckets)) * 3)
    out = np.empty(n_buckets)
    want = v @ K.T
    for s in range(2):
        _pool(v[s], K, out)
        _close(out, want[s], "pooled row")


def test_prior_learner_is_the_one_build_ladder_uses():
    from hyper_make import LadderConfig, build_ladder, default_snapshot, default_spec, make_allocator

    alloc, snap, spec, cfg = make_allocator("learned"), default_snapshot(), default_spec(), LadderConfig()
    lrn = alloc.prior_learner(spec.coin, cfg, mid_usd=snap.mid_usd, sigma_usd_per_sqrt_s=snap.sigma_price_per_sqrt_s(),
                              maker_fee_bps=snap.maker_fee_bps, max_position_coins=snap.max_position_coins)  # fmt: skip
    a = build_ladder(snap, spec, alloc, config=cfg, rng=3)
    b = build_ladder(snap, spec, alloc, config=cfg, rng=3, learner=lrn)
    np.testing.assert_array_equal(a.bid.allocation.sizes, b.bid.allocation.sizes)
    np.testing.assert_array_equal(a.ask.curves.fill_prob, b.ask.curves.fill_prob)
    assert lrn.n_updates == 0 and lrn.config.size_ref_coins == 0.02 * snap.max_position_coins
