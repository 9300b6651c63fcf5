r"""An adversary's view of the stealth layer: fit our size penalty back from the ladders we publish.

The RFC keeps a noise layer "to prevent adversaries from reverse-engineering the exact shape of our impact
function". This module is that adversary, by inverse optimisation: it assumes our ladders are optima of the
two-sided problem of :mod:`hyper_make.allocate._twosided` and fits the size penalty that makes their KKT
conditions hold, by least squares.

The observer's model (the learner's curves, :mod:`hyper_make.learn`)
--------------------------------------------------------------------
Level ``i`` of side ``σ`` (``+1`` bid, ``-1`` ask) has the edge ``a_i`` (USD/coin), the fill fraction ``p_i`` and
the size penalty ``b_i·s^(1+β)`` with ``b_i = θ_σ·p_i·mid/1e4`` (θ in bps of the price per coin^β, one per side,
β one per market; β = 1 is the learner's "linear" model, whose ``c_i·s²`` with ``c_i = θ·p_i·mid/1e4`` has the
same marginal). At an optimum, every *free* level (``0 < s_i < cap_i``) of a side satisfies::

    a_i  =  θ_σ·(1+β)·g_i·s_i^β  +  κ·2p_i(1-p_i)·s_i  +  σ·μ·p_i  +  x_σ,      g_i = p_i·mid/1e4

with ``x_σ`` the side price (marginal cost of the side's total plus its budget's shadow price, USD/coin), ``μ``
the inventory coupling (USD per coin of expected position) and ``κ = γσ²h/2`` the inventory risk (USD per coin²).
``x_σ`` and ``μ`` change with every refresh and are unknown: they are eliminated per snapshot, exactly, by
projecting each snapshot's equations onto the complement of their columns (``[bid indicator, ask indicator,
σ·p]``: the within-snapshot differencing between levels, Frisch–Waugh–Lovell); ``θ_bid``, ``θ_ask`` (and ``κ``)
are then the least-squares fit of the stacked residual equations. For a fixed β this is linear; β, when not
given, minimises the profiled residual sum of squares (a grid, then Brent's method).

What the observer is assumed to know
------------------------------------
Every published ladder (sizes per level per side), the mid, the caps, and the edges ``a_i`` and fill fractions
``p_i`` of the levels: an adversary estimates those from the public tape as well as we do, and this observer is
*given* ours (the posterior mean), so its error is a lower bound on a real one's. It does not know our position:
with ``inventory=True`` it fits ``μ`` per snapshot and ``κ``; with ``inventory=False`` it assumes there is no
inventory term (``κ = μ = 0``). Noise that the observer does not model (Dirichlet shares, Thompson draws of the
curves) shows as residuals, and biases the fit: that bias is what the stealth layer buys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from ._validate import check_real
from .errors import InvalidParameterError

_SIDES = ("bid", "ask")
#: The β search: a grid over ``beta_bounds`` then Brent's method between the best grid point's neighbours.
_BETA_GRID = 40
#: Relative tolerance of the per-snapshot projection's pseudo-inverse (singular values below it are dropped).
_RCOND = 1e-10


def _matrix(name: str, value: ArrayLike, *, lo: float | None, hi: float | None, unit: str) -> NDArray[np.float64]:
    """A ``(T, n)`` float64 array (a 1-D array is one snapshot), every entry finite and in ``[lo, hi]``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"'{name}' must be an array of real numbers ({unit}); got {value!r}") from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InvalidParameterError(f"'{name}' must be 2-dimensional (snapshots × levels); got shape {arr.shape}")
    ok = np.isfinite(arr)
    if lo is not None:
        ok &= arr >= lo
    if hi is not None:
        ok &= arr <= hi
    if not ok.all():
        t, i = (int(v) for v in np.argwhere(~ok)[0])
        rng = f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
        raise InvalidParameterError(f"'{name}[{t}, {i}]' must be finite and in {rng} ({unit}); got {arr[t, i]!r}")
    return np.ascontiguousarray(arr)


@dataclass(frozen=True, eq=False)
class PublishedLadders:
    """What the observer sees over ``T`` refreshes: the ladders and the market's public curves.

    Attributes
    ----------
    bid_sizes_coins, ask_sizes_coins : published size per level (coins), shape ``(T, n_bid)`` / ``(T, n_ask)``,
        finite, ``>= 0`` (a 1-D array is one snapshot).
    mid_usd : the mid at each refresh (USD), shape ``(T,)``, ``> 0``.
    bid_edge_usd, ask_edge_usd : each level's linear edge ``a_i`` (USD per coin) as the observer estimates it,
        the shape of the sizes, finite.
    bid_fill_prob, ask_fill_prob : each level's expected filled fraction ``p_i`` over the horizon, in ``[0, 1]``.
    bid_caps_coins, ask_caps_coins : per-level caps (coins), ``(n,)`` or ``(T, n)``, in ``[0, inf]``; ``None`` =
        no caps. A level at its cap is not free (its KKT condition is an inequality) and is left out.
    """

    bid_sizes_coins: NDArray[np.float64]
    ask_sizes_coins: NDArray[np.float64]
    mid_usd: NDArray[np.float64]
    bid_edge_usd: NDArray[np.float64]
    ask_edge_usd: NDArray[np.float64]
    bid_fill_prob: NDArray[np.float64]
    ask_fill_prob: NDArray[np.float64]
    bid_caps_coins: NDArray[np.float64] | None = None
    ask_caps_coins: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        shapes = {}
        for side in _SIDES:
            s = _matrix(f"{side}_sizes_coins", getattr(self, f"{side}_sizes_coins"), lo=0.0, hi=None, unit="coins")
            a = _matrix(f"{side}_edge_usd", getattr(self, f"{side}_edge_usd"), lo=None, hi=None, unit="USD per coin")
            p = _matrix(f"{side}_fill_prob", getattr(self, f"{side}_fill_prob"), lo=0.0, hi=1.0, unit="fraction")
            for nm, arr in (("edge_usd", a), ("fill_prob", p)):
                if arr.shape != s.shape:
                    raise InvalidParameterError(
                        f"'{side}_{nm}' must have the shape of '{side}_sizes_coins' {s.shape}; got {arr.shape}"
                    )
            caps = getattr(self, f"{side}_caps_coins")
            if caps is None:
                u = np.full(s.shape, np.inf)
            else:
                u = np.asarray(caps, dtype=np.float64)
                if u.ndim == 1 and u.shape[0] == s.shape[1]:
                    u = np.broadcast_to(u, s.shape)
                if u.shape != s.shape:
                    raise InvalidParameterError(
                        f"'{side}_caps_coins' must have shape ({s.shape[1]},) or {s.shape}; got {np.shape(caps)}"
                    )
                bad = ~(u >= 0)  # NaN fails
                if bad.any():
                    t, i = (int(v) for v in np.argwhere(bad)[0])
                    raise InvalidParameterError(
                        f"'{side}_caps_coins[{t}, {i}]' must be in [0, inf] (coins); got {u[t, i]!r}"
                    )
                u = np.ascontiguousarray(u)
            object.__setattr__(self, f"{side}_sizes_coins", s)
            object.__setattr__(self, f"{side}_edge_usd", a)
            object.__setattr__(self, f"{side}_fill_prob", p)
            object.__setattr__(self, f"{side}_caps_coins", u)
            shapes[side] = s.shape
        tb, nb_ = shapes["bid"]
        ta, na = shapes["ask"]
        if tb != ta:
            raise InvalidParameterError(
                f"'bid_sizes_coins' and 'ask_sizes_coins' must have the same number of snapshots; got {tb} and {ta}"
            )
        if tb == 0:
            raise InvalidParameterError("'bid_sizes_coins' must hold at least one snapshot; got 0")
        if nb_ + na == 0:
            raise InvalidParameterError("the ladders have no level on either side (n_bid = n_ask = 0)")
        mid = np.atleast_1d(np.asarray(self.mid_usd, dtype=np.float64))
        if mid.shape != (tb,):
            raise InvalidParameterError(f"'mid_usd' must have one value per snapshot, shape ({tb},); got {mid.shape}")
        bad = ~(np.isfinite(mid) & (mid > 0))
        if bad.any():
            t = int(np.flatnonzero(bad)[0])
            raise InvalidParameterError(f"'mid_usd[{t}]' must be finite and > 0 (USD); got {mid[t]!r}")
        object.__setattr__(self, "mid_usd", mid)

    @property
    def n_snapshots(self) -> int:
        """Number of published ladders ``T``."""
        return int(self.mid_usd.shape[0])

    def averaged(self) -> PublishedLadders:
        """One snapshot: the mean published sizes, for a market whose state (mid, edges, fill fractions, caps)
        did not change over the snapshots (raises otherwise).

        Noise with mean zero in the sizes (Dirichlet shares around the optimum) averages out here, so an observer
        of a stationary market can undo it by waiting: the fit of :func:`fit_size_penalty` on the average is
        that of the optimum plus an error that shrinks like ``1/√T``.
        """
        for name in ("mid_usd", "bid_edge_usd", "ask_edge_usd", "bid_fill_prob", "ask_fill_prob",
                     "bid_caps_coins", "ask_caps_coins"):  # fmt: skip
            v = getattr(self, name)
            if not np.array_equal(v, np.broadcast_to(v[:1], v.shape)):
                raise InvalidParameterError(
                    f"'{name}' changes between snapshots: averaging sizes needs a market whose state is constant"
                )
        return PublishedLadders(
            bid_sizes_coins=self.bid_sizes_coins.mean(axis=0),
            ask_sizes_coins=self.ask_sizes_coins.mean(axis=0),
            mid_usd=self.mid_usd[:1],
            bid_edge_usd=self.bid_edge_usd[0],
            ask_edge_usd=self.ask_edge_usd[0],
            bid_fill_prob=self.bid_fill_prob[0],
            ask_fill_prob=self.ask_fill_prob[0],
            bid_caps_coins=self.bid_caps_coins[0],  # type: ignore[index]
            ask_caps_coins=self.ask_caps_coins[0],  # type: ignore[index]
        )


@dataclass(frozen=True, slots=True)
class InverseFit:
    """The size penalty an observer recovers from published ladders (see the module docstring).

    Attributes
    ----------
    theta_bps : per side (bid, ask), θ (bps of the price per coin^β); NaN for a side with no identifying
        equation (fewer than two free levels in every snapshot).
    theta_se_bps : per side, its least-squares standard error (NaN without residual degrees of freedom).
    beta : the exponent used: given, or fitted.
    beta_fitted : whether β was fitted.
    kappa_usd : the inventory risk κ (USD per coin²); NaN when not fitted (``inventory=False``).
    rss_usd2 : residual sum of squares of the KKT equations after eliminating ``x`` and ``μ`` (USD² per coin²).
    rmse_usd : ``√(rss / dof)`` (USD per coin), the typical misfit of one equation; NaN when ``dof = 0``.
    n_equations : free-level equations used (before elimination).
    dof : residual degrees of freedom (equations minus eliminated unknowns minus fitted coefficients).
    n_snapshots : snapshots with at least one free level.
    """

    theta_bps: tuple[float, float]
    theta_se_bps: tuple[float, float]
    beta: float
    beta_fitted: bool
    kappa_usd: float
    rss_usd2: float
    rmse_usd: float
    n_equations: int
    dof: int
    n_snapshots: int

    def relative_error(self, theta_true_bps: tuple[float, float] | float) -> float:
        """Mean over the identified sides of ``|θ̂ - θ| / |θ|`` (dimensionless); ``θ`` per side or one for both."""
        true = np.broadcast_to(np.asarray(theta_true_bps, dtype=np.float64), (2,))
        if not (np.isfinite(true).all() and (true != 0).all()):
            raise InvalidParameterError(f"'theta_true_bps' must be finite and non-zero (bps); got {theta_true_bps!r}")
        est = np.asarray(self.theta_bps)
        ok = np.isfinite(est)
        return float(np.mean(np.abs(est[ok] - true[ok]) / np.abs(true[ok])))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "theta_bps": dict(zip(_SIDES, self.theta_bps, strict=True)),
            "theta_se_bps": dict(zip(_SIDES, self.theta_se_bps, strict=True)),
            "beta": self.beta,
            "beta_fitted": self.beta_fitted,
            "kappa_usd": self.kappa_usd,
            "rss_usd2": self.rss_usd2,
            "rmse_usd": self.rmse_usd,
            "n_equations": self.n_equations,
            "dof": self.dof,
            "n_snapshots": self.n_snapshots,
        }


@dataclass(frozen=True, slots=True, eq=False)
class _System:
    """The stacked free-level equations, with the per-snapshot projection that eliminates ``x`` and ``μ``."""

    sizes: NDArray[np.float64]  # (T, n) both sides, bid first
    scale: NDArray[np.float64]  # g_i = p_i·mid/1e4 (USD per bps)
    var_reg: NDArray[np.float64]  # 2p(1-p)·s (coins), κ's regressor
    is_bid: NDArray[np.bool_]  # (n,)
    mask: NDArray[np.float64]  # (T, n) 1 on free levels
    z: NDArray[np.float64]  # (T, n, k) the eliminated columns on the free levels (0 elsewhere)
    zpinv: NDArray[np.float64]  # (T, k, k) (ZᵀZ)⁺
    y: NDArray[np.float64]  # (T, n) projected edges
    n_eq: int
    n_elim: int
    n_snap: int


def _system(ladders: PublishedLadders, inventory: bool) -> _System:
    lad = ladders
    s = np.concatenate((lad.bid_sizes_coins, lad.ask_sizes_coins), axis=1)
    a = np.concatenate((lad.bid_edge_usd, lad.ask_edge_usd), axis=1)
    p = np.concatenate((lad.bid_fill_prob, lad.ask_fill_prob), axis=1)
    u = np.concatenate((lad.bid_caps_coins, lad.ask_caps_coins), axis=1)  # type: ignore[arg-type]
    nb_ = lad.bid_sizes_coins.shape[1]
    is_bid = np.arange(s.shape[1]) < nb_
    free = (s > 0) & (s < u) & (p > 0)  # p = 0: the level's penalty is 0 too, its condition says nothing of θ
    mask = free.astype(np.float64)
    sgn = np.where(is_bid, 1.0, -1.0)
    cols = [np.broadcast_to(is_bid, s.shape).astype(np.float64), np.broadcast_to(~is_bid, s.shape).astype(np.float64)]
    if inventory:
        cols.append(sgn[None, :] * p)
    z = np.stack(cols, axis=-1) * mask[..., None]  # (T, n, k)
    ztz = np.einsum("tnk,tnl->tkl", z, z)
    pinv = np.linalg.pinv(ztz, rcond=_RCOND)
    rank = np.linalg.matrix_rank(z, rtol=_RCOND) if z.shape[1] else np.zeros(s.shape[0], np.int64)
    return _System(
        sizes=s,
        scale=p * lad.mid_usd[:, None] * 1e-4,
        var_reg=2.0 * p * (1.0 - p) * s,
        is_bid=is_bid,
        mask=mask,
        z=z,
        zpinv=pinv,
        y=_project(z, pinv, mask, a),
        n_eq=int(free.sum()),
        n_elim=int(np.sum(rank)),
        n_snap=int(free.any(axis=1).sum()),
    )


def _project(
    z: NDArray[np.float64], zpinv: NDArray[np.float64], mask: NDArray[np.float64], v: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``v - Z(ZᵀZ)⁺Zᵀv`` on each snapshot's free levels, 0 elsewhere: ``(T, n)``, in O(T·n·k) memory."""
    vm = v * mask
    return vm - np.einsum("tnk,tk->tn", z, np.einsum("tkl,tl->tk", zpinv, np.einsum("tnl,tn->tl", z, vm)))


def _regressors(sys_: _System, beta: float, inventory: bool) -> NDArray[np.float64]:
    """Projected regressors ``(T·n, k)``: θ_bid, θ_ask columns (and κ's)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (1.0 + beta) * sys_.scale * np.where(sys_.mask > 0, sys_.sizes, 0.0) ** beta
    cols = [np.where(sys_.is_bid[None, :], r, 0.0), np.where(~sys_.is_bid[None, :], r, 0.0)]
    if inventory:
        cols.append(sys_.var_reg)
    x = np.stack([_project(sys_.z, sys_.zpinv, sys_.mask, c) for c in cols], axis=-1)
    return x.reshape(-1, len(cols))


def _solve(sys_: _System, beta: float, inventory: bool) -> tuple[NDArray[np.float64], float, NDArray[np.float64], int]:
    """Least squares at one β: coefficients (NaN for unidentified columns), RSS, their covariance, dof."""
    x = _regressors(sys_, beta, inventory)
    y = sys_.y.reshape(-1)
    norms = np.sqrt((x * x).sum(axis=0))
    yscale = max(float(np.sqrt((y * y).sum())), 1e-300)
    # a column that the elimination left (numerically) empty carries nothing on its coefficient
    keep = norms > 1e-12 * max(float(norms.max(initial=0.0)), yscale)
    coef = np.full(x.shape[1], np.nan)
    cov = np.full((x.shape[1], x.shape[1]), np.nan)
    if not keep[:2].any():
        raise InvalidParameterError(
            "the size penalty is not identifiable from these ladders: no snapshot has two free levels "
            "(0 < size < cap, fill fraction > 0) on one side"
        )
    xk = x[:, keep] / norms[keep]  # unit columns: the rank test and the conditioning do not depend on units
    sol, _, rank, sv = np.linalg.lstsq(xk, y, rcond=None)
    if rank < xk.shape[1] or sv[-1] < 1e-10 * sv[0]:
        raise InvalidParameterError(
            "the size penalty is not identifiable from these ladders: its regressors are collinear after "
            "eliminating the side prices (every free level of a side has the same size and fill fraction?)"
        )
    resid = y - xk @ sol
    rss = float(resid @ resid)
    dof = sys_.n_eq - sys_.n_elim - int(keep.sum())
    coef[keep] = sol / norms[keep]
    if dof > 0:
        inv = np.linalg.inv(xk.T @ xk) * (rss / dof)
        cov[np.ix_(keep, keep)] = inv / np.outer(norms[keep], norms[keep])
    return coef, rss, cov, dof


def fit_size_penalty(
    ladders: PublishedLadders,
    *,
    beta: float | None = 0.5,
    inventory: bool = True,
    beta_bounds: tuple[float, float] = (0.05, 2.0),
) -> InverseFit:
    """Least squares on the KKT conditions of the published ladders: θ per side (bps per coin^β), κ, and β.

    ``beta`` given (in ``(0, 2]``): the observer knows the penalty's form (the strongest observer of θ);
    ``None``: β is fitted within ``beta_bounds`` by minimising the profiled residual sum of squares. ``inventory``:
    fit the coupling ``μ`` per snapshot and κ (the observer does not know our position), or assume none.

    Raises
    ------
    InvalidParameterError
        ``ladders`` not a :class:`PublishedLadders`; β or its bounds outside ``(0, 2]``; no side of any snapshot
        with two free levels, or collinear regressors (the size penalty is then not identifiable).

    Examples
    --------
    Two free levels whose sizes are the exact optimum for θ = 4 bps/coin^0.5 (``a_i = x + 1.5·θ·g_i·√s_i``):

    >>> g, s = np.array([5.0, 2.0]), np.array([0.04, 0.01])
    >>> a = 1.0 + 1.5 * 4.0 * g * np.sqrt(s)
    >>> lad = PublishedLadders(s, s, [1e5], a, a, g / 10.0, g / 10.0)
    >>> fit = fit_size_penalty(lad, inventory=False)
    >>> [round(t, 9) for t in fit.theta_bps]
    [4.0, 4.0]
    """
    if not isinstance(ladders, PublishedLadders):
        raise InvalidParameterError(f"'ladders' must be a PublishedLadders; got {type(ladders).__name__}")
    lo = check_real("beta_bounds[0]", beta_bounds[0], lo=0.0, lo_open=True, hi=2.0)
    hi = check_real("beta_bounds[1]", beta_bounds[1], lo=lo, lo_open=True, hi=2.0)
    sys_ = _system(ladders, bool(inventory))
    if sys_.n_eq == 0:
        raise InvalidParameterError(
            "the ladders have no free level (0 < size < cap with a fill fraction > 0): nothing to fit"
        )
    if beta is not None:
        be = check_real("beta", beta, lo=0.0, lo_open=True, hi=2.0)
        fitted = False
    else:
        grid = np.linspace(lo, hi, _BETA_GRID)
        rss = np.array([_rss_or_inf(sys_, float(b), inventory) for b in grid])
        if not np.isfinite(rss).any():
            _solve(sys_, float(grid[0]), inventory)  # raises the identifiability error
        j = int(np.argmin(rss))
        a_, b_ = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
        res = optimize.minimize_scalar(
            lambda b: _rss_or_inf(sys_, float(b), inventory), bounds=(a_, b_), method="bounded",
            options={"xatol": 1e-12},
        )  # fmt: skip
        be = float(res.x) if res.fun <= rss[j] else float(grid[j])
        fitted = True
    coef, rss_, cov, dof = _solve(sys_, be, bool(inventory))
    se = np.sqrt(np.diag(cov))
    return InverseFit(
        theta_bps=(float(coef[0]), float(coef[1])),
        theta_se_bps=(float(se[0]), float(se[1])),
        beta=be,
        beta_fitted=fitted,
        kappa_usd=float(coef[2]) if inventory else math.nan,
        rss_usd2=rss_,
        rmse_usd=math.sqrt(rss_ / dof) if dof > 0 else math.nan,
        n_equations=sys_.n_eq,
        dof=dof,
        n_snapshots=sys_.n_snap,
    )


def _rss_or_inf(sys_: _System, beta: float, inventory: bool) -> float:
    try:
        return _solve(sys_, beta, inventory)[1]
    except InvalidParameterError:
        return math.inf


__all__ = ["InverseFit", "PublishedLadders", "fit_size_penalty"]
