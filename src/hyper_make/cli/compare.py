"""``hyper-make compare``: every allocator on the same snapshot, per side: PnL, budget used, dispersion, time."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from ..compare import SideComparison, compare_allocators
from ._common import (
    CONFIG_HELP,
    LearnerStateRead,
    allocator_names,
    app,
    checked,
    compact_table,
    load_app_config,
    load_kernels,
    out_console,
    print_json,
    print_table,
    read_learner,
    seed_option,
    user_errors,
)


@app.command()
def compare(
    config: Annotated[Path | None, typer.Option("--config", "-c", help=CONFIG_HELP)] = None,
    seed: Annotated[int, seed_option("Seed of every random component, the same for every allocator.")] = 0,
    allocator: Annotated[
        str | None, typer.Option("--allocator", "-a", help="Comma-separated allocator names (default: all).")
    ] = None,
    level_cap_frac: Annotated[
        float | None,
        typer.Option(
            "--level-cap-frac",
            help="Override the per-level cap (fraction of the side budget, in (0, 1]); 1 lifts it to show what "
            "each allocator chooses (greedy collapses onto one level).",
            callback=checked(lo=0.0, lo_open=True, hi=1.0),
        ),
    ] = None,
    repeats: Annotated[
        int,
        typer.Option(
            help="Builds per allocator for the median solve time (>= 1).", callback=checked(lo=1, integer=True)
        ),
    ] = 5,
    learner_state: LearnerStateRead = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")
    ] = False,
) -> None:
    """Run every registered allocator on the same snapshot and compare them side by side."""
    with user_errors():
        names = allocator_names(allocator)
        cfg = load_app_config(config)
        ladder_cfg = cfg.ladder
        if level_cap_frac is not None:
            ladder_cfg = dataclasses.replace(ladder_cfg, level_cap_frac=level_cap_frac)
        learner = read_learner(learner_state, cfg)
        load_s = load_kernels(refresh_core=False)  # numba's compile or cache load, reported apart from the solve times
        rows = compare_allocators(
            cfg.snapshot,
            cfg.spec,
            ladder_cfg,
            names=names,
            options=cfg.allocator_options,
            seed=seed,
            repeats=repeats,
            learner=learner,
        )
    if json_out:
        print_json(
            {
                "coin": cfg.spec.coin,
                "mid": cfg.snapshot.mid_usd,
                "level_cap_frac": ladder_cfg.level_cap_frac,
                "seed": seed,
                "repeats": repeats,
                "kernel_load_s": load_s,
                "rows": [r.to_dict() for r in rows],
            }
        )
        return
    render_comparison(
        rows, title=f"{cfg.spec.coin}  mid {cfg.snapshot.mid_usd:,.2f}  cap {ladder_cfg.level_cap_frac:g}"
    )
    out_console.print(f"kernel load {load_s:.2f} s (numba, once per process; not in the µs column)")


#: The comparison table's columns and the legend printed under it (units there, so that headers stay short).
COMPARE_LEGEND = (
    "E[PnL]: expected PnL of the orders (USD); used: share of the side budget; eff: effective levels exp(H); "
    "max: largest order's share; n: orders; λ: shadow price (USD/coin); µs: median solve time"
)


def render_comparison(rows: list[SideComparison], *, title: str) -> None:
    """One Rich table row per allocator and side, readable at 80 columns (short headers, units in the legend).

    Columns: expected PnL (USD), budget used, effective levels ``exp(H)``, largest order's share, orders, shadow
    price λ (USD per coin), binding constraint, median solve time (µs). The best PnL per side is highlighted.
    """
    t = compact_table()
    t.add_column("allocator", no_wrap=True)
    t.add_column("side", no_wrap=True)
    for col in ("E[PnL]", "used", "eff", "max", "n", "λ", "binding", "µs"):
        t.add_column(col, justify="left" if col == "binding" else "right", no_wrap=True)
    best = {side: max((r.expected_pnl_usd for r in rows if r.side == side), default=0.0) for side in ("bid", "ask")}
    for r in rows:
        pnl = f"{r.expected_pnl_usd:.4f}"
        if r.expected_pnl_usd == best[r.side]:
            pnl = f"[bold green]{pnl}[/]"
        t.add_row(
            r.allocator,
            r.side,
            pnl,
            f"{100 * r.budget_used_frac:.0f}%",
            f"{r.effective_levels:.2f}",
            f"{100 * r.largest_share:.0f}%",
            str(r.n_orders),
            "n/a" if r.shadow_price is None else f"{r.shadow_price:.4g}",
            r.binding,
            f"{r.solve_us:.0f}" if r.solve_us < 1e4 else f"{r.solve_us / 1e3:.0f}k",  # 4 characters at most
        )
    print_table(t, title=title, legend=COMPARE_LEGEND)
