"""The exact convex allocator: maximise ``Σ_i a_i·s_i - b_i·s_i^(1+β)`` s.t. ``Σ s_i <= B``, ``0 <= s_i <= u_i``.

KKT: there is a shadow price ``λ >= 0`` (USD per coin) of the budget such that every level rests the size at
which its marginal value ``a_i - (1+β)·b_i·s^β`` equals ``λ``, clipped to ``[0, u_i]``::

    s_i(λ) = min(u_i, ((a_i - λ)_+ / ((1+β)·b_i))^(1/β))          (b_i > 0, "curved" levels)
    s_i(λ) = u_i if a_i > λ, anything in [0, u_i] if a_i = λ, else 0   (b_i = 0, "linear" levels)

and either ``λ = 0`` and ``Σ s_i(0) <= B`` (the marginal value runs out before the budget: budget left unspent),
or ``λ > 0`` and ``Σ s_i(λ) = B``. ``S(λ) = Σ s_i(λ)`` is non-increasing and piecewise smooth between the
breakpoints ``a_i`` (a level starts) and ``a_i - (1+β)·b_i·u_i^β`` (it reaches its cap); linear levels make it
jump by ``u_i`` at ``a_i``. The solver evaluates ``S`` at every breakpoint at once (vectorised), finds the piece
that holds the root, and solves that piece: in closed form for β = 0.5 (a quadratic in λ) and β = 1 (linear),
by safeguarded Newton (bisection fallback) otherwise. A jump that straddles the budget fixes ``λ = a_j`` and
the tied linear levels share what is left, equally (capped). Non-positive edges never get size.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import PYDANTIC_CONFIG, check_int, check_real
from ..errors import InvalidParameterError
from ._base import AllocationResult, Binding, SideProblem, empty_result, water_fill

#: Newton iterations on one piece before giving up (never reached in practice: quadratic convergence).
_MAX_NEWTON = 100
#: Relative tolerance of the budget equation ``Σ s = B`` in the iterative (β ∉ {0.5, 1}) branch.
_RTOL = 1e-15


@dataclass(frozen=True, slots=True, eq=False)
class ConcaveSolution:
    """The optimum of one separable concave allocation problem.

    Attributes
    ----------
    sizes : size per level (same unit as the budget, e.g. coins), shape ``(n,)``, ``>= 0``, ``<= caps``,
        ``Σ sizes <= budget``.
    shadow_price : ``λ``, the marginal objective of one more unit of budget (objective units per size unit,
        e.g. USD per coin); 0 when the budget does not bind.
    objective : ``Σ a_i·s_i - b_i·s_i^(1+β)`` at ``sizes`` (e.g. USD).
    binding : ``"budget"`` (λ > 0), ``"caps"`` (every level with a positive edge is at its cap), ``"marginal"``
        (λ = 0: the marginal values ran out first) or ``"empty"`` (no positive edge or a zero budget).
    status : ``"optimal"``, or ``"max_iter"`` if the iterative branch stopped early (then ``message`` says so).
    message : one line for humans.
    n_iter : Newton iterations used (0 in the closed-form branches).
    """

    sizes: NDArray[np.float64]
    shadow_price: float
    objective: float
    binding: Binding
    status: str = "optimal"
    message: str = ""
    n_iter: int = 0

    @property
    def active(self) -> NDArray[np.bool_]:
        """Mask of the levels with a positive size."""
        return self.sizes > 0

    @property
    def total(self) -> float:
        """``Σ sizes``."""
        return float(self.sizes.sum())


def _check_inputs(
    a: ArrayLike, b: ArrayLike, budget: float, beta: float, caps: ArrayLike | None
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float, NDArray[np.float64]]:
    """Validate and convert; every error names the argument and its allowed range."""
    av = np.asarray(a, dtype=np.float64)
    bv = np.asarray(b, dtype=np.float64)
    if av.ndim != 1:
        raise InvalidParameterError(
            f"'a' must be 1-dimensional (one edge per level, USD per coin); got shape {av.shape}"
        )
    if bv.shape != av.shape:
        raise InvalidParameterError(f"'b' must have the shape of 'a' {av.shape}; got {bv.shape}")
    if not np.isfinite(av).all():
        i = int(np.flatnonzero(~np.isfinite(av))[0])
        raise InvalidParameterError(f"'a[{i}]' must be finite (linear edge, USD per coin); got {av[i]!r}")
    if not (np.isfinite(bv).all() and (bv >= 0).all()):
        i = int(np.flatnonzero(~(np.isfinite(bv) & (bv >= 0)))[0])
        raise InvalidParameterError(
            f"'b[{i}]' must be in [0, inf) (impact coefficient, USD per coin^(1+beta)); got {bv[i]!r}"
        )
    bud = check_real("budget", budget, lo=0.0)
    be = check_real("beta", beta, lo=0.0, lo_open=True, hi=2.0)
    if caps is None:
        uv = np.full(av.shape, np.inf)
    else:
        uv = np.broadcast_to(np.asarray(caps, dtype=np.float64), av.shape).astype(np.float64)
        bad = np.isnan(uv) | (uv < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidParameterError(f"'caps[{i}]' must be in [0, inf] (size cap per level); got {uv[i]!r}")
    return av, bv, bud, be, uv


def allocate_concave(
    a: ArrayLike,
    b: ArrayLike,
    budget: float,
    *,
    beta: float = 0.5,
    caps: ArrayLike | None = None,
) -> ConcaveSolution:
    """Exact maximiser of ``Σ a_i·s_i - b_i·s_i^(1+β)`` s.t. ``Σ s_i <= budget``, ``0 <= s_i <= caps_i``.

    Parameters
    ----------
    a : array of shape (n,)
        Linear edge per level (e.g. USD per coin), finite; levels with ``a_i <= 0`` get nothing.
    b : array of shape (n,)
        Impact coefficient per level (e.g. USD per coin^(1+β)), ``>= 0`` and finite; 0 = linear level.
    budget : float
        Total size allowed (e.g. coins), ``>= 0`` and finite.
    beta : float, default 0.5
        Impact exponent β in ``(0, 2]``.
    caps : array of shape (n,) or scalar, optional
        Per-level size cap, in ``[0, inf]``; ``None`` = no caps.

    Returns
    -------
    ConcaveSolution
        ``.sizes``, ``.shadow_price`` (λ), ``.objective``, ``.binding``, ``.status``, ``.message``.

    Raises
    ------
    InvalidParameterError
        Non-finite ``a``, negative or non-finite ``b``, negative or non-finite budget, β outside ``(0, 2]``,
        negative or NaN caps, or mismatched shapes. (The budget is finite, so the problem is always bounded.)

    Examples
    --------
    >>> sol = allocate_concave([3.0, 2.0], [1.0, 1.0], 1.0)
    >>> sol.sizes.round(4), round(sol.shadow_price, 4)
    (array([0.9157, 0.0843]), 1.5646)
    """
    av, bv, bud, be, uv = _check_inputs(a, b, budget, beta, caps)
    return solve_concave(av, bv, bud, be, uv)


def solve_concave(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    budget: float,
    beta: float,
    caps: NDArray[np.float64],
) -> ConcaveSolution:
    """:func:`allocate_concave` on already validated float64 arrays (no checks; the hot path)."""
    n = a.shape[0]
    sizes = np.zeros(n)
    cand = (a > 0) & (caps > 0)
    if not cand.any():
        return ConcaveSolution(sizes, 0.0, 0.0, "empty", message="no level has a positive edge")
    if budget <= 0:
        # one more unit of budget would go to the best edge: that is the shadow price
        return ConcaveSolution(sizes, float(a[cand].max()), 0.0, "empty", message="budget is zero")
    idx = np.flatnonzero(cand)
    ac, bc, uc = a[idx], b[idx], caps[idx]
    k = 1.0 + beta
    p = 1.0 / beta
    lin = bc == 0.0
    any_lin = bool(lin.any())
    with np.errstate(divide="ignore"):
        r = 1.0 / (k * bc)  # inf on linear levels; never used there
    # ---- λ = 0: does everything fit? -----------------------------------------------------------------
    if any_lin:
        s0 = np.where(lin, uc, np.minimum(_pow((ac * np.where(lin, 0.0, r)), p, beta), uc))
    else:
        s0 = np.minimum(_pow(ac * r, p, beta), uc)
    total0 = float(s0.sum())
    if total0 <= budget:
        sizes[idx] = s0
        at_cap = bool(np.all(s0 >= uc))
        binding: Binding = "caps" if at_cap else "marginal"
        msg = (
            "every level with a positive edge is at its cap"
            if at_cap
            else f"marginal value runs out before the budget: {total0:.6g} of {budget:.6g} used"
        )
        return ConcaveSolution(sizes, 0.0, _objective(a, b, sizes, k), binding, message=msg)
    # ---- breakpoints (descending) and S at each one -----------------------------------------------------
    with np.errstate(invalid="ignore"):
        low = ac - k * bc * uc**beta  # λ at which a curved level reaches its cap (-inf if uncapped)
    cap_ev = (~lin) & (low > 0)
    ev = np.concatenate((ac, low[cap_ev], [0.0]))
    ev = -np.sort(-ev)
    gap = ac[None, :] - ev[:, None]  # (m, n')
    if any_lin:
        rr = np.where(lin, 0.0, r)
        curved = np.minimum(_pow(np.maximum(gap, 0.0) * rr, p, beta), uc)
        s_strict = np.where(lin, np.where(gap > 0, uc, 0.0), curved).sum(axis=1)
        s_incl = s_strict + np.where(lin & (gap == 0), uc, 0.0).sum(axis=1)
    else:
        s_strict = np.minimum(_pow(np.maximum(gap, 0.0) * r, p, beta), uc).sum(axis=1)
        s_incl = s_strict
    j = int(np.argmax(s_incl >= budget))  # exists: S(0) > budget and ev[-1] = 0
    lam_lo = float(ev[j])
    n_iter = 0
    status = "optimal"
    if s_strict[j] < budget:
        # the budget falls inside the jump of the linear level(s) whose edge is exactly ev[j]
        lam = lam_lo
        out = _sizes_at(ac, r, uc, lin, lam, p, beta)
        tied = lin & (ac == lam)
        out[tied] = water_fill(tied.astype(np.float64), budget - float(out.sum()), np.where(tied, uc, 0.0))[tied]
    else:
        lam_hi = float(ev[j - 1])
        mid = 0.5 * (lam_lo + lam_hi)
        free = (~lin) & (ac > mid) & (low < mid)
        fixed = float(np.sum(np.where(lin & (ac > mid), uc, 0.0)) + np.sum(np.where((~lin) & (low >= mid), uc, 0.0)))
        rest = budget - fixed
        d = ac[free] - lam_lo  # > 0
        rf = r[free]
        width = lam_hi - lam_lo
        if d.size == 0 or rest <= 0:
            t = 0.0  # S is flat on this piece (equal to the budget up to rounding): its lower end is the root
        elif beta == 0.5:
            t = _root_quadratic(d, rf, rest, width)
        elif beta == 1.0:
            t = min(max((float(np.dot(rf, d)) - rest) / float(rf.sum()), 0.0), width)
        else:
            t, n_iter, ok = _root_newton(d, rf, rest, width, p)
            status = "optimal" if ok else "max_iter"
        lam = lam_lo + t
        out = _sizes_at(ac, r, uc, lin, lam, p, beta)
        # exact budget: the closed forms are accurate to rounding; put the residual on the free levels
        excess = float(out.sum()) - budget
        if excess != 0.0 and free.any():
            fs = out[free]
            tot = float(fs.sum())
            if tot > 0:
                out[free] = fs * max(1.0 - excess / tot, 0.0)
    # last-ulp guard: never over the budget, whatever the rounding of the sums above
    sizes[idx] = out
    while float(sizes.sum()) > budget:
        sizes *= budget / float(sizes.sum()) * (1.0 - 4e-16)
    nact = int(np.count_nonzero(sizes))
    msg = f"budget binds: shadow price {lam:.6g} per unit, {nact} active level{'s' if nact != 1 else ''}"
    if status != "optimal":
        msg = f"Newton stopped after {n_iter} iterations; " + msg
    return ConcaveSolution(sizes, lam, _objective(a, b, sizes, k), "budget", status, msg, n_iter)


def _pow(x: NDArray[np.float64], p: float, beta: float) -> NDArray[np.float64]:
    """``x^p`` with the common exponents done by multiplication (several times faster than ``**``)."""
    if beta == 0.5:
        return x * x
    if beta == 1.0:
        return x
    return x**p


def _sizes_at(
    ac: NDArray[np.float64],
    r: NDArray[np.float64],
    uc: NDArray[np.float64],
    lin: NDArray[np.bool_],
    lam: float,
    p: float,
    beta: float,
) -> NDArray[np.float64]:
    """``s_i(λ)`` for every candidate level (linear levels at their cap iff ``a_i > λ``)."""
    g = np.maximum(ac - lam, 0.0)
    with np.errstate(invalid="ignore"):
        curved = np.minimum(_pow(g * np.where(lin, 0.0, r), p, beta), uc)
    return np.where(lin, np.where(g > 0, uc, 0.0), curved)


def _root_quadratic(d: NDArray[np.float64], r: NDArray[np.float64], rest: float, width: float) -> float:
    """Smallest ``t >= 0`` with ``Σ (r_i·(d_i - t))² = rest`` (β = 0.5), in the cancellation-free form.

    ``W·t² - 2D·t + (Q - rest) = 0`` with ``W = Σr²``, ``D = Σr²d``, ``Q = Σr²d²`` gives
    ``t = (Q - rest) / (D + √(D² - W·(Q - rest)))``.
    """
    r2 = r * r
    w = float(r2.sum())
    dd = float(np.dot(r2, d))
    q = float(np.dot(r2 * d, d))
    c = q - rest
    if c <= 0:
        return 0.0
    disc = max(dd * dd - w * c, 0.0)
    t = c / (dd + math.sqrt(disc))
    return min(t, width)


def _root_newton(
    d: NDArray[np.float64], r: NDArray[np.float64], rest: float, width: float, p: float
) -> tuple[float, int, bool]:
    """Root ``t`` in ``[0, width]`` of ``h(t) = Σ (r_i·(d_i - t))^p - rest`` (decreasing), safeguarded Newton."""
    lo, hi = 0.0, width
    t = 0.0
    tol = _RTOL * max(rest, 1e-300)
    for it in range(1, _MAX_NEWTON + 1):
        x = r * (d - t)
        xp = x**p
        h = float(xp.sum()) - rest
        if abs(h) <= tol:
            return t, it, True
        if h > 0:
            lo = t
        else:
            hi = t
        dh = -p * float(np.sum(xp / np.maximum(x, 1e-300) * r))
        step = t - h / dh if dh < 0 else 0.5 * (lo + hi)
        t = step if lo < step < hi else 0.5 * (lo + hi)
        if hi - lo <= 4e-16 * max(abs(lo), abs(hi), 1e-300):
            return t, it, True
    return t, _MAX_NEWTON, False


def _objective(a: NDArray[np.float64], b: NDArray[np.float64], s: NDArray[np.float64], k: float) -> float:
    if k == 1.5:
        return float(np.dot(a, s) - np.dot(b, s * np.sqrt(s)))
    return float(np.dot(a, s) - np.dot(b, s**k))


# ---- the allocator -------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ImpactAllocator:
    """Exact maximiser of the side's ``Σ E[PnL]_i(s_i)`` under the budget and the per-level caps (RFC step 3).

    No entropy floor, no temperature: dispersion comes from the concave impact cost alone. The continuous
    optimum is solved exactly (:func:`allocate_concave`), then, with ``discrete = True``, re-solved exactly on
    the exchange's lot grid with the minimum-order rule ("0 or at least the minimum") handled explicitly
    (:func:`hyper_make.allocate._discrete.discrete_allocation`), so the projection only confirms the sizes.

    Parameters
    ----------
    discrete : bool, default True
        Lot-exact sizes with the minimum order handled here; ``False`` returns the continuous optimum and leaves
        rounding to the exchange projection.
    max_search_levels : int, default 4
        Levels below the minimum order tried both ways (dropped / raised to the minimum) exhaustively, in
        ``[0, 10]``; beyond that they are dropped and the rest re-solved.

    Diagnostics: ``solve_ns`` (whole allocate call, ns), ``continuous_pnl_usd``, ``discrete_loss_usd`` (continuous
    optimum minus the lot-exact one, USD, ``>= 0``), ``active_levels``, ``min_order_dropped``,
    ``min_order_raised``, and the PnL split (``spread_capture_usd``, ``adverse_selection_usd``,
    ``forward_impact_usd``, ``roundtrip_impact_usd``).
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    name: ClassVar[str] = "impact"

    discrete: bool = True
    max_search_levels: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.discrete, bool):
            raise InvalidParameterError(f"'impact.discrete' must be true or false; got {self.discrete!r}")
        check_int("impact.max_search_levels", self.max_search_levels, lo=0, hi=10)

    def allocate(self, problem: SideProblem, rng: np.random.Generator) -> AllocationResult:
        """Solve the side exactly (``rng`` is unused: the optimum is deterministic)."""
        t0 = time.perf_counter_ns()
        c = problem.curves
        if c.n == 0:
            return empty_result(0, "no price levels on this side")
        a, b, beta = c.a, c.b, float(c.beta)
        cont = solve_concave(a, b, float(problem.budget_coins), beta, problem.caps_coins)
        return self.finish(problem, cont, a, b, t0)

    def finish(
        self,
        problem: SideProblem,
        cont: ConcaveSolution,
        a: NDArray[np.float64],
        b: NDArray[np.float64],
        t0_ns: int,
        diag: dict[str, float | int | bool | str] | None = None,
    ) -> AllocationResult:
        """Discrete step (when on) and packaging: sizes, the continuous λ/binding, PnL split, diagnostics (ns)."""
        c = problem.curves
        if cont.binding == "empty":
            return empty_result(c.n, cont.message)
        out: dict[str, float | int | bool | str] = {"continuous_pnl_usd": cont.objective, **(diag or {})}
        sizes = cont.sizes
        if self.discrete:
            from ._discrete import discrete_allocation

            disc = discrete_allocation(
                a,
                b,
                float(c.beta),
                float(problem.lot_coins),
                float(problem.budget_coins),
                problem.caps_coins,
                problem.min_size_coins,
                cont.sizes,
                max_search_levels=self.max_search_levels,
            )
            sizes = disc.sizes
            out |= {"min_order_dropped": disc.dropped, "min_order_raised": disc.raised}
            if not sizes.any():
                return empty_result(c.n, "side budget or edge too small for the exchange's minimum order value")
        split = c.split(sizes)
        pnl = sum(split.values())
        if self.discrete:
            out["discrete_loss_usd"] = cont.objective - pnl
        out |= {"active_levels": int(np.count_nonzero(sizes)), **split, "solve_ns": time.perf_counter_ns() - t0_ns}
        return AllocationResult(
            sizes=sizes,
            expected_pnl_usd=pnl,
            shadow_price=cont.shadow_price,
            binding=cont.binding,
            message=cont.message,
            diagnostics=out,
        )


__all__ = ["ConcaveSolution", "ImpactAllocator", "allocate_concave", "solve_concave"]
