"""``hyper-make compare``: every allocator on the same snapshot, per side: PnL, budget used, dispersion, time."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..allocate import warm_up
from ..compare import SideComparison, compare_allocators
from ..config import load_config
from ._common import app, out_console, print_json, user_errors


@app.command()
def compare(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML file overriding snapshot, ladder or allocator fields.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random component, the same for every allocator.")] = 0,
    allocators: Annotated[
        str | None, typer.Option("--allocators", "-a", help="Comma-separated allocator names (default: all).")
    ] = None,
    level_cap_frac: Annotated[
        float | None,
        typer.Option(
            "--level-cap-frac",
            help="Override the per-level cap (fraction of the side budget); 1 lifts it to show what each "
            "allocator chooses (greedy collapses onto one level).",
        ),
    ] = None,
    repeats: Annotated[int, typer.Option(help="Builds per allocator for the median solve time.")] = 5,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")
    ] = False,
) -> None:
    """Run every registered allocator on the same snapshot and compare them side by side."""
    with user_errors():
        cfg = load_config(config)
        ladder_cfg = cfg.ladder
        if level_cap_frac is not None:
            ladder_cfg = dataclasses.replace(ladder_cfg, level_cap_frac=level_cap_frac)
        names = [n.strip() for n in allocators.split(",") if n.strip()] if allocators else None
        load_s = warm_up()  # numba's compile or cache load, reported apart from the solve times
        rows = compare_allocators(
            cfg.snapshot,
            cfg.spec,
            ladder_cfg,
            names=names,
            options=cfg.allocator_options,
            seed=seed,
            repeats=repeats,
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


def render_comparison(rows: list[SideComparison], *, title: str) -> None:
    """One Rich table row per allocator and side.

    Columns: expected PnL (USD), budget used, effective levels ``exp(H)``, largest order's share, orders, shadow
    price λ (USD per coin), binding constraint, median solve time (µs). The best PnL per side is highlighted.
    """
    t = Table(title=title)
    t.add_column("allocator", no_wrap=True)
    t.add_column("side", no_wrap=True, min_width=4)
    for col in ("E[PnL] $", "used", "eff.lv", "max", "n", "λ $/coin", "binding", "µs"):
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
            f"{r.solve_us:.0f}",
        )
    out_console.print(t)
