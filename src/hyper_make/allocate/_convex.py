"""The exact convex allocator: maximise ``Σ_i a_i·s_i - b_i·s_i^(1+β)`` s.t. ``Σ s_i <= B``, ``0 <= s_i <= u_i``.

KKT: there is a shadow price ``λ >= 0`` (USD per coin) of the budget such that every level rests the size at
which its marginal value ``a_i - (1+β)·b_i·s^β`` equals ``λ``, clipped to ``[0, u_i]``::

    s_i(λ) = min(u_i, ((a_i - λ)_+ / ((1+β)·b_i))^(1/β))          (b_i > 0, "curved" levels)
    s_i(λ) = u_i if a_i > λ, anything in [0, u_i] if a_i = λ, else 0   (b_i = 0, "linear" levels)

and either ``λ = 0`` and ``Σ s_i(0) <= B`` (the marginal value runs out before the budget: budget left unspent),
or ``λ > 0`` and ``Σ s_i(λ) = B``. ``S(λ) = Σ s_i(λ)`` is non-increasing and piecewise smooth between the
breakpoints ``a_i`` (a level starts) and ``a_i - (1+β)·b_i·u_i^β`` (it reaches its cap); linear levels make it
jump by ``u_i`` at ``a_i``. The solver sorts the breakpoints, binary-searches the piece that holds the root
(``O(n log n)``), and solves that piece: in closed form for β = 0.5 (a quadratic in λ, in its cancellation-free
form) and β = 1 (linear), by safeguarded Newton (bisection fallback) otherwise. A jump that straddles the budget
fixes ``λ = a_j`` and the tied linear levels share what is left, equally (capped). Non-positive edges never get
size. The loops run compiled (:mod:`hyper_make.allocate._kkt`, numba): ~10 µs per call for 25 levels, most
of it the Python wrapper.
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
from ._base import AllocationResult, Binding, SideProblem, empty_result
from ._discrete import discrete_allocation
from ._kkt import _MAX_NEWTON, BUDGET, CAPS, EMPTY_BUDGET, EMPTY_EDGE, FAILED, kkt_solve


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
    status : ``"optimal"`` (sizes finite and optimal to rounding), ``"max_iter"`` if the iterative branch stopped
        early, ``"inexact"`` if the sizes are beyond what float64 resolves (e.g. 1e200 coins with β = 2; feasible,
        not certified), or ``"failed"`` (no finite answer: sizes are zero, binding ``"empty"``). Sizes are always
        within the caps and the budget; ``message`` says what happened.
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


def _float_array(name: str, x: ArrayLike, what: str) -> NDArray[np.float64]:
    """``x`` as a C-contiguous float64 array (one compiled signature), or an error naming ``name``."""
    try:
        return np.ascontiguousarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"'{name}' must be an array of real numbers ({what}); got {x!r}") from None


def _check_inputs(
    a: ArrayLike, b: ArrayLike, budget: float, beta: float, caps: ArrayLike | None
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float, NDArray[np.float64]]:
    """Validate and convert; every error names the argument and its allowed range (few NumPy calls when valid)."""
    av = _float_array("a", a, "linear edge per level, USD per coin")
    bv = _float_array("b", b, "impact coefficient per level, USD per coin^(1+beta)")
    if av.ndim != 1:
        raise InvalidParameterError(f"'a' must be 1-dimensional (one edge per level, USD/coin); got shape {av.shape}")
    if bv.shape != av.shape:
        raise InvalidParameterError(f"'b' must have the shape of 'a' {av.shape}; got {bv.shape}")
    if not np.isfinite(av).all():
        i = int(np.flatnonzero(~np.isfinite(av))[0])
        raise InvalidParameterError(f"'a[{i}]' must be finite (linear edge, USD per coin); got {av[i]!r}")
    if not ((bv >= 0).all() and (bv < np.inf).all()):  # NaN fails the first test
        i = int(np.flatnonzero(~((bv >= 0) & (bv < np.inf)))[0])
        raise InvalidParameterError(
            f"'b[{i}]' must be in [0, inf) (impact coefficient, USD per coin^(1+beta)); got {bv[i]!r}"
        )
    bud = check_real("budget", budget, lo=0.0)
    be = check_real("beta", beta, lo=0.0, lo_open=True, hi=2.0)
    if caps is None:
        uv = np.full(av.shape, np.inf)
    else:
        uv = _float_array("caps", caps, "size cap per level")
        if uv.shape != av.shape:
            if uv.ndim > 1 or uv.size != 1:
                raise InvalidParameterError(
                    f"'caps' must be a scalar or have the shape of 'a' {av.shape}; got shape {uv.shape}"
                )
            uv = np.full(av.shape, float(uv.reshape(-1)[0]))
        if not (uv >= 0).all():  # NaN fails too
            i = int(np.flatnonzero(~(uv >= 0))[0])
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
    """:func:`allocate_concave` on already validated float64 arrays (no checks; the hot path).

    The work is done by the compiled kernel :func:`hyper_make.allocate._kkt.kkt_solve`; this wrapper turns its
    return code into ``binding``, ``status`` and a message.
    """
    n = a.shape[0]
    sizes = np.empty(n)
    code, lam, n_iter, ok, obj = kkt_solve(a, b, np.zeros(n), caps, float(budget), float(beta), sizes)
    if code == EMPTY_EDGE:
        return ConcaveSolution(sizes, 0.0, 0.0, "empty", message="no level has a positive edge")
    if code == EMPTY_BUDGET:
        # one more unit of budget would go to the best edge: that is the shadow price
        return ConcaveSolution(sizes, lam, 0.0, "empty", message="budget is zero")
    if code == FAILED:
        return ConcaveSolution(
            sizes,
            0.0,
            0.0,
            "empty",
            "failed",
            "the solver produced a non-finite size on these inputs; nothing is allocated",
            n_iter,
        )
    status, prefix = "optimal", ""
    if not math.isfinite(obj):
        status, prefix = "inexact", "the objective exceeds the float range; "
    elif not ok:
        status, prefix = (
            ("max_iter", f"Newton stopped after {n_iter} iterations; ")
            if n_iter >= _MAX_NEWTON
            else ("inexact", "sizes beyond float precision (feasible, not certified optimal); ")
        )
    if code != BUDGET:
        total = float(sizes.sum())
        binding: Binding = "caps" if code == CAPS else "marginal"
        msg = (
            "every level with a positive edge is at its cap"
            if code == CAPS
            else f"marginal value runs out before the budget: {total:.6g} of {budget:.6g} used"
        )
        return ConcaveSolution(sizes, 0.0, obj, binding, status, prefix + msg, n_iter)
    # last-ulp guard in NumPy's own summation order (the kernel's sequential sum may differ by an ulp)
    for _ in range(3):
        total = float(sizes.sum())
        if total <= budget:
            break
        sizes *= budget / total * (1.0 - 4e-16)
    nact = int(np.count_nonzero(sizes))
    msg = f"budget binds: shadow price {lam:.6g} per unit, {nact} active level{'s' if nact != 1 else ''}"
    return ConcaveSolution(sizes, lam, obj, "budget", status, prefix + msg, n_iter)


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
        ``[0, 6]``; while there are more, the weakest is dropped and the rest re-solved, one at a time. The search
        costs ``2^max_search_levels`` lot re-solves: at 6, at most about 2 ms for 40 levels (at 10 it was 37 ms,
        beyond what a quoting refresh can wait, so larger values are refused).

    Diagnostics: ``solve_ns`` (whole allocate call, ns), ``continuous_pnl_usd``, ``solver_status`` (the continuous
    solve's :attr:`ConcaveSolution.status`: ``"optimal"`` or why not), ``discrete_loss_usd`` (continuous
    optimum minus the lot-exact one, USD, ``>= 0``), ``active_levels``, ``min_order_dropped``,
    ``min_order_raised``, ``lot_search_steps`` (single-lot steps of the certified lot search, about ``2n`` per
    solve at most), ``lot_certified`` (the lot optimum ended on its optimality certificate), and the PnL split
    (``spread_capture_usd``, ``adverse_selection_usd``, ``forward_impact_usd``, ``roundtrip_impact_usd``).
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    name: ClassVar[str] = "impact"
    needs_impact: ClassVar[bool] = True

    discrete: bool = True
    max_search_levels: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.discrete, bool):
            raise InvalidParameterError(f"'impact.discrete' must be true or false; got {self.discrete!r}")
        check_int("impact.max_search_levels", self.max_search_levels, lo=0, hi=6)

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
        out: dict[str, float | int | bool | str] = {
            "continuous_pnl_usd": cont.objective,
            "solver_status": cont.status,
            **(diag or {}),
        }
        sizes = cont.sizes
        if self.discrete:
            disc = discrete_allocation(
                a,
                b,
                float(c.beta),
                float(problem.lot_coins),
                float(problem.budget_coins),
                problem.caps_coins,
                problem.min_size_coins,
                max_search_levels=self.max_search_levels,
            )
            sizes = disc.sizes
            out |= {
                "min_order_dropped": disc.dropped,
                "min_order_raised": disc.raised,
                "lot_search_steps": disc.steps,
                "lot_certified": disc.certified,
            }
            if not sizes.any():
                return empty_result(c.n, _below_minimum(problem, cont), diagnostics=out)
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


def _below_minimum(problem: SideProblem, cont: ConcaveSolution) -> str:
    """Why a positive continuous optimum rests nothing on the exchange, with the numbers that decide it."""
    act = cont.sizes > 0
    mins = problem.min_size_coins[act] if problem.min_size_coins.size else np.zeros(0)
    smallest = float(mins.min()) if mins.size else 0.0
    room = min(float(problem.budget_coins), float(problem.caps_coins[act].max()) if act.any() else 0.0)
    if room < smallest:
        return (
            f"the side budget or level cap ({room:.6g} coins) is below the exchange's minimum order "
            f"({smallest:.6g} coins)"
        )
    n = int(act.sum())
    return (
        f"the optimum under the impact model rests {cont.total:.6g} coins over {n} level{'s' if n != 1 else ''} "
        f"(E[PnL] {cont.objective:.3g} USD), less than the exchange's minimum order ({smallest:.6g} coins) at each, "
        "and an order of the minimum size would lose: the edge is too small for its modelled impact"
    )


__all__ = ["ConcaveSolution", "ImpactAllocator", "allocate_concave", "solve_concave"]
