"""The cost-versus-secrecy frontier of the stealth layer, and the cost of Thompson sampling (issue 13, item 4).

Run: ``python benchmarks/stealth_frontier.py [--json] [--plot docs/stealth_frontier.png]`` (about 20 s on 2 cores).

A synthetic market (``tests/learn/_synth.py``: the prior is wrong at the touch and by 5 bps everywhere, the true
size penalty is θ = 20 bps per coin^0.5 on 10 levels a side from 0.5 to 50 bps) feeds a
:class:`~hyper_make.learn.PayoutLearner` 2 s intervals of fills (order sizes drawn from 0.005 to 0.08 coins, so
that θ is identified); at several posterior strengths (intervals fed) we publish ``--refreshes`` ladders of the
two-sided solver (budget 0.3 coins a side, γ = 0.01 /USD, σ²h = 200 USD²/coin², position 0, continuous sizes,
one stationary market state) produced by

* ``none``: the posterior-mean solution every refresh;
* ``dirichlet-κ``: Dirichlet shares around it (:func:`hyper_make.stealth.dirichlet_sizes`, same total);
* ``thompson``: the solution of one posterior draw of the curves per refresh (:meth:`PayoutLearner.sample`).

The observer (:func:`hyper_make.stealth_audit.fit_size_penalty`) is given the published ladders, the mid and the
posterior-mean edges and fill fractions (an upper bound on what it could estimate from the tape) and fits θ per
side by least squares on the KKT conditions, not knowing the position (it fits the coupling per refresh and κ).
Four observers: ``per-refresh`` (every ladder one snapshot, β known = 0.5), ``per-refresh β fitted``,
``averaged`` (the mean published ladder, β known: valid because the market state did not change), and ``market``
(per refresh, β known, given the *true* market edges and fill fractions instead of our posterior mean: what an
observer who estimated the market perfectly from the tape would have). Its recovery error is
``mean over sides |θ̂ - θ̄| / θ̄`` against the posterior mean θ̄ (our model: the secret).

The cost of the noise is the expected PnL, per refresh, of the posterior-mean optimum minus that of the published
ladder, both under the posterior-mean curves (USD and as a fraction of the optimum's), and the same under the
true curves against the true optimum (``regret_true``: the posterior mean's own error included). Every number is a
mean over ``--seeds`` data seeds (each its own learner, market data and noise).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from _machine import machine, print_machine  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from hyper_make._json import to_jsonable  # noqa: E402
from hyper_make.allocate._base import SideProblem  # noqa: E402
from hyper_make.allocate._twosided import SideCurves, allocate_two_sided, split_objective  # noqa: E402
from hyper_make.economics.curve import LevelCurves  # noqa: E402
from hyper_make.learn import LearnerConfig, PayoutLearner  # noqa: E402
from hyper_make.stealth import dirichlet_sizes  # noqa: E402
from hyper_make.stealth_audit import PublishedLadders, fit_size_penalty  # noqa: E402
from learn._synth import DEPTHS, HZ, TrueModel, interval, make_prior, prior_markout, prior_rate  # noqa: E402

MID = 100_000.0
HORIZON_S = 2.0
BUDGET = 0.3
GAMMA = 0.01
SIGMA2_H = 200.0
THETA_TRUE = 20.0
#: Dirichlet sizes on this lot (coins) with a one-lot minimum: continuous for every purpose here.
TINY_LOT = 1e-12


def true_model() -> TrueModel:
    return TrueModel(
        rate=lambda d: prior_rate(d) * np.where(d < 5, 3.0, 0.5),
        markout=lambda d: prior_markout(d) + 5.0,
        theta_bps=THETA_TRUE,
        beta=0.5,
        noise_bps=4.0,
    )


def true_curves(model: TrueModel) -> tuple[SideCurves, SideCurves]:
    """The market's curves in the learner's form (``a = p·m·mid/1e4``, ``b = p·θ·mid/1e4``, no side-total term)."""
    p = -np.expm1(-model.rate(DEPTHS) * HORIZON_S)
    usd = MID * 1e-4
    a, b = p * model.markout(DEPTHS) * usd, p * model.theta_bps * usd
    return SideCurves(a, b, None, p, name="bid"), SideCurves(a, b, None, p, name="ask")


def solve(bid: SideCurves, ask: SideCurves, beta: float) -> tuple[np.ndarray, np.ndarray]:
    sol = allocate_two_sided(bid, ask, budget_bid=BUDGET, budget_ask=BUDGET, gamma=GAMMA, sigma2_h=SIGMA2_H, beta=beta)
    return sol.bid, sol.ask


def value(curves: tuple[SideCurves, SideCurves], beta: float, sb: np.ndarray, sa: np.ndarray) -> float:
    """The two-sided objective (USD) of sizes ``sb``, ``sa`` under ``curves``."""
    kappa = 0.5 * GAMMA * SIGMA2_H
    return split_objective(curves[0], curves[1], sb, sa, q=0.0, kappa=kappa, beta=beta)["objective_usd"]


def _problem(side: str) -> SideProblem:
    """The constraints :func:`dirichlet_sizes` re-imposes: no caps, a negligible lot, no minimum order."""
    n = DEPTHS.size
    z = np.zeros(n)
    curves = LevelCurves(DEPTHS, np.full(n, MID), z, z, z, z, z, beta=0.5, mid_usd=MID)
    return SideProblem(side, curves, BUDGET, np.full(n, np.inf), TINY_LOT, z)  # type: ignore[arg-type]


def published(
    method: str, conc: float, learner: PayoutLearner, opt: tuple[np.ndarray, np.ndarray], rng: np.random.Generator,
    refreshes: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``refreshes`` published ladders (coins), shape ``(T, n)`` per side."""
    if method == "none":
        return np.tile(opt[0], (refreshes, 1)), np.tile(opt[1], (refreshes, 1))
    if method == "dirichlet":
        pb, pa = _problem("bid"), _problem("ask")
        sb = [dirichlet_sizes(opt[0], pb, conc, rng) for _ in range(refreshes)]
        sa = [dirichlet_sizes(opt[1], pa, conc, rng) for _ in range(refreshes)]
        return np.array(sb), np.array(sa)
    out_b, out_a = [], []
    for _ in range(refreshes):
        c = learner.sample(rng, DEPTHS, DEPTHS, mid_usd=MID, horizon_s=HORIZON_S)
        b, a = solve(c.bid, c.ask, c.beta)
        out_b.append(b)
        out_a.append(a)
    return np.array(out_b), np.array(out_a)


def evaluate(args: argparse.Namespace) -> dict:
    model = true_model()
    truth = true_curves(model)
    t_opt = solve(*truth, 0.5)
    f_true_opt = value(truth, 0.5, *t_opt)
    methods = [("none", 0.0)] + [("dirichlet", float(c)) for c in args.concentrations] + [("thompson", 0.0)]
    rows: dict[tuple[int, str], list[dict]] = {}
    main_n = args.strengths[len(args.strengths) // 2]
    waits = [("dirichlet", 20.0), ("dirichlet", 100.0), ("thompson", 0.0)]
    waited: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for seed in range(args.seeds):
        rng_data = np.random.default_rng([seed, 0])
        learner = PayoutLearner(LearnerConfig(size_penalty="sqrt", half_life_s=float("inf")), make_prior())
        fed = 0
        for n in args.strengths:
            while fed < n:
                sizes = rng_data.uniform(0.005, 0.08, DEPTHS.size)
                learner.update(interval(rng_data, model, DEPTHS, sizes, duration_s=2.0, horizons_s=HZ))
                fed += 1
            mean = learner.mean(DEPTHS, DEPTHS, mid_usd=MID, horizon_s=HORIZON_S)
            ref = (mean.bid, mean.ask)
            theta_ref = mean.theta_bps
            opt = solve(mean.bid, mean.ask, mean.beta)
            f_opt = value(ref, mean.beta, *opt)
            fit_n = learner.size_fit()
            for j, (method, conc) in enumerate(methods):
                rng = np.random.default_rng([seed, n, j, 1])
                sb, sa = published(method, conc, learner, opt, rng, args.refreshes)
                f_pub = float(np.mean([value(ref, mean.beta, b, a) for b, a in zip(sb, sa, strict=True)]))
                f_pub_true = float(np.mean([value(truth, 0.5, b, a) for b, a in zip(sb, sa, strict=True)]))
                t = sb.shape[0]
                lad = PublishedLadders(
                    sb, sa, np.full(t, MID),
                    np.tile(mean.bid.a, (t, 1)), np.tile(mean.ask.a, (t, 1)),
                    np.tile(mean.bid.p, (t, 1)), np.tile(mean.ask.p, (t, 1)),
                )  # fmt: skip
                lad_market = PublishedLadders(
                    sb, sa, np.full(t, MID),
                    np.tile(truth[0].a, (t, 1)), np.tile(truth[1].a, (t, 1)),
                    np.tile(truth[0].p, (t, 1)), np.tile(truth[1].p, (t, 1)),
                )  # fmt: skip
                fits = {
                    "per_refresh": fit_size_penalty(lad, beta=mean.beta),
                    "market_edges": fit_size_penalty(lad_market, beta=mean.beta),
                    "per_refresh_beta": fit_size_penalty(lad, beta=None),
                    "averaged": fit_size_penalty(lad.averaged(), beta=mean.beta),
                }
                cost = f_opt - f_pub
                if abs(cost) <= 1e-12 * abs(f_opt):  # the mean of T equal values is off from one by an ulp
                    cost = 0.0
                shares = np.concatenate((sb, sa), axis=1)
                shares = shares / np.maximum(shares.sum(axis=1, keepdims=True), 1e-300)
                rows.setdefault((n, f"{method}-{conc:g}" if method == "dirichlet" else method), []).append(
                    {
                        "theta_ref_bps": float(np.mean(theta_ref)),
                        "theta_se_bps": float(np.mean(fit_n.theta_se_bps)),
                        "fills": float(np.sum(fit_n.n_fills)),
                        "optimum_usd": f_opt,
                        "cost_usd": cost,
                        "cost_frac": cost / f_opt,
                        "regret_true_usd": f_true_opt - f_pub_true,
                        "share_sd_pts": 100.0 * float(shares.std(axis=0).max()),
                        **{f"err_{k}": f.relative_error(theta_ref) for k, f in fits.items()},
                        "beta_hat": fits["per_refresh_beta"].beta,
                    }
                )
            if n == main_n:  # how the observer's error falls with the number of ladders it sees
                for j, (method, conc) in enumerate(waits):
                    for t in args.wait_refreshes:
                        rng = np.random.default_rng([seed, n, j, t, 2])
                        sb, sa = published(method, conc, learner, opt, rng, t)
                        lad = PublishedLadders(
                            sb, sa, np.full(t, MID),
                            np.tile(mean.bid.a, (t, 1)), np.tile(mean.ask.a, (t, 1)),
                            np.tile(mean.bid.p, (t, 1)), np.tile(mean.ask.p, (t, 1)),
                        )  # fmt: skip
                        label = f"{method}-{conc:g}" if method == "dirichlet" else method
                        waited.setdefault((label, t), []).append(
                            (
                                fit_size_penalty(lad, beta=mean.beta).relative_error(theta_ref),
                                fit_size_penalty(lad.averaged(), beta=mean.beta).relative_error(theta_ref),
                            )
                        )
    out = []
    for (n, label), rs in rows.items():
        agg = {"strength_intervals": n, "method": label, "seeds": len(rs)}
        for key in rs[0]:
            vals = np.array([r[key] for r in rs])
            agg[key] = float(vals.mean())
            if key.startswith("err_") or key in ("cost_usd", "cost_frac"):
                agg[key + "_sd"] = float(vals.std(ddof=1)) if len(rs) > 1 else float("nan")
        out.append(agg)
    wait_rows = [
        {
            "strength_intervals": main_n,
            "method": label,
            "refreshes": t,
            "err_per_refresh": float(np.mean([e[0] for e in es])),
            "err_averaged": float(np.mean([e[1] for e in es])),
        }
        for (label, t), es in waited.items()
    ]
    return {"true_optimum_usd": f_true_opt, "theta_true_bps": THETA_TRUE, "rows": out, "waiting": wait_rows}


def plot(res: dict, path: Path, main: int) -> None:
    from hyper_make.report import new_figure, save_figure

    floor = 1e-4  # the no-noise ladders give 1e-15 (exact): drawn on the floor, labelled
    fig, axes = new_figure((11.0, 4.6), ncols=2)
    rows = res["rows"]
    strengths = sorted({r["strength_intervals"] for r in rows})
    for ax, key, title in ((axes[0], "err_per_refresh", "observer fits every refresh (β known)"),
                           (axes[1], "err_averaged", "observer fits the mean ladder (β known)")):  # fmt: skip
        for n in strengths:
            d = sorted((r for r in rows if r["strength_intervals"] == n and r["method"].startswith("dirichlet")),
                       key=lambda r: r["cost_frac"])  # fmt: skip
            bold = n == main
            ax.plot([100 * r["cost_frac"] for r in d], [max(r[key], floor) for r in d], "o-", color="C0",
                    lw=2.0 if bold else 0.8, alpha=1.0 if bold else 0.4,
                    label=f"Dirichlet (n = {main}; faint: other n)" if bold else None)  # fmt: skip
            if bold:
                for r in d:
                    ax.annotate(f"κ={r['method'][10:]}", (100 * r["cost_frac"], max(r[key], floor)), fontsize=7,
                                xytext=(3, 4), textcoords="offset points")  # fmt: skip
        th = sorted((r for r in rows if r["method"] == "thompson"), key=lambda r: r["strength_intervals"])
        ax.plot([100 * r["cost_frac"] for r in th], [max(r[key], floor) for r in th], "s-", color="C3",
                label="Thompson sampling (n = intervals fed)")  # fmt: skip
        for r in th:
            ax.annotate(f"n={r['strength_intervals']}", (100 * r["cost_frac"], max(r[key], floor)), fontsize=7,
                        xytext=(3, -10), textcoords="offset points")  # fmt: skip
        none = next(r for r in rows if r["method"] == "none" and r["strength_intervals"] == main)
        ax.plot([0.1], [floor], "kv", ms=8, label=f"no noise: cost 0, error {none[key]:.0e}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(floor / 1.5, 1.5)
        ax.set_xlabel("cost of the noise (% of the optimal expected PnL)")
        ax.set_ylabel("observer's relative error on θ")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Cost vs secrecy of the size penalty θ ({res['args']['seeds']} seeds, "
                 f"{res['args']['refreshes']} refreshes; posterior strengths n = {strengths} intervals)",
                 fontsize=10)  # fmt: skip
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--refreshes", type=int, default=200, help="published ladders per setting")
    ap.add_argument("--seeds", type=int, default=5, help="data seeds (learners) per setting")
    ap.add_argument("--strengths", type=int, nargs="+", default=[25, 100, 400, 1600], help="intervals fed")
    ap.add_argument("--concentrations", type=float, nargs="+", default=[5, 20, 100, 500])
    ap.add_argument("--wait-refreshes", type=int, nargs="+", default=[10, 100, 1000],
                    help="ladders the observer sees, for the error-against-waiting table")  # fmt: skip
    ap.add_argument("--plot", type=Path, default=None, help="write the frontier plot (PNG) here")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = ap.parse_args()
    t0 = time.perf_counter()
    res = evaluate(args)
    info = machine()
    res |= {"machine": info, "seconds": time.perf_counter() - t0, "args": {k: str(v) for k, v in vars(args).items()}}
    main_n = args.strengths[len(args.strengths) // 2]  # the bold curve of the plot, and the waiting table's n
    if args.plot:
        plot(res, args.plot, main_n)
    if args.json:
        print(json.dumps(to_jsonable(res)))  # NaN (one seed: no sd) -> null
        return
    print_machine(info)
    print(f"{args.seeds} seeds × {args.refreshes} refreshes; true optimum {res['true_optimum_usd']:.3f} USD/refresh; "
          f"{res['seconds']:.0f} s")  # fmt: skip
    print("\nfrontier (errors: mean over seeds of |θ̂ - θ̄|/θ̄; cost under the posterior mean, per refresh)")
    print(f"{'n':>5} {'method':<14} {'cost USD':>9} {'cost %':>7} {'regret_true':>11} {'share sd':>8} "
          f"{'err/refresh':>11} {'err β fit':>9} {'β̂':>5} {'err mean':>9} {'err market':>10}")  # fmt: skip
    for r in sorted(res["rows"], key=lambda r: (r["strength_intervals"], r["cost_frac"])):
        print(f"{r['strength_intervals']:>5} {r['method']:<14} {r['cost_usd']:>9.4f} {100 * r['cost_frac']:>7.2f} "
              f"{r['regret_true_usd']:>11.4f} {r['share_sd_pts']:>8.2f} {r['err_per_refresh']:>11.3g} "
              f"{r['err_per_refresh_beta']:>9.3g} {r['beta_hat']:>5.2f} {r['err_averaged']:>9.3g} "
              f"{r['err_market_edges']:>10.3g}")  # fmt: skip
    print("\nsampling cost of Thompson sampling against the posterior-mean solution")
    print(f"{'n':>5} {'fills':>7} {'θ̄ bps':>7} {'se(θ)':>6} {'cost USD':>9} {'cost %':>7} {'regret_true':>11} "
          f"{'mean regret':>12}")  # fmt: skip
    by = {(r["strength_intervals"], r["method"]): r for r in res["rows"]}
    for n in args.strengths:
        r, z = by[(n, "thompson")], by[(n, "none")]
        print(f"{n:>5} {r['fills']:>7.0f} {r['theta_ref_bps']:>7.2f} {r['theta_se_bps']:>6.2f} {r['cost_usd']:>9.4f} "
              f"{100 * r['cost_frac']:>7.2f} {r['regret_true_usd']:>11.4f} {z['regret_true_usd']:>12.4f}")  # fmt: skip
    print(f"\nthe observer's error against the number of ladders it sees (n = {main_n}; per refresh / averaged)")
    ts = args.wait_refreshes
    print(f"{'method':<14} " + " ".join(f"{f'T={t}':>19}" for t in ts))
    wb = {(r["method"], r["refreshes"]): r for r in res["waiting"]}
    for label in dict.fromkeys(r["method"] for r in res["waiting"]):
        cells = [f"{wb[(label, t)]['err_per_refresh']:>9.3g} / {wb[(label, t)]['err_averaged']:<7.3g}" for t in ts]
        print(f"{label:<14} " + " ".join(f"{c:>19}" for c in cells))
    if args.plot:
        print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
