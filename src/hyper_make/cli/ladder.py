"""``hyper-make ladder``: print the two-sided ladder for a market (the embedded default, or a TOML config)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..ladder import Ladder, SideResult, build_ladder
from ._common import (
    CONFIG_HELP,
    LearnerStateRead,
    allocator_names,
    app,
    load_app_config,
    load_kernels,
    out_console,
    print_json,
    read_learner,
    seed_option,
    user_errors,
)

#: Allocators kept for comparison only; choosing one prints a notice on stderr.
DEPRECATED_ALLOCATORS = {
    "entropy": "the entropy heuristic is deprecated (RFC step 3); the impact allocator replaces it"
}


@app.command()
def ladder(
    config: Annotated[Path | None, typer.Option("--config", "-c", help=CONFIG_HELP)] = None,
    allocator: Annotated[
        str | None, typer.Option("--allocator", "-a", help="Registered allocator name (default: from config).")
    ] = None,
    seed: Annotated[int, seed_option("Seed of every random component (Thompson / stealth noise).")] = 0,
    learner_state: LearnerStateRead = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout instead of tables.")
    ] = False,
) -> None:
    """Build and print the two-sided ladder for one refresh of the market."""
    with user_errors():
        chosen = allocator_names(allocator, single=True)
        cfg = load_app_config(config)
        name = chosen[0] if chosen else cfg.allocator_name
        alloc = cfg.make_allocator(name)
        if name in DEPRECATED_ALLOCATORS:
            print(f"notice: {DEPRECATED_ALLOCATORS[name]}", file=sys.stderr)
        # numba compiles or loads its kernels on their first call: do it before the build, so its timings are honest
        learner = read_learner(learner_state, cfg)
        load_s = load_kernels(refresh_core=False)
        result = build_ladder(cfg.snapshot, cfg.spec, alloc, config=cfg.ladder, rng=seed, learner=learner)
    if json_out:
        print_json(result.to_dict() | {"seed": seed, "kernel_load_s": load_s})
        return
    render_ladder(result)
    out_console.print(f"kernel load {load_s:.2f} s (numba, once per process; not in the times above)")


def render_ladder(result: Ladder) -> None:
    """Rich tables: the orders of both sides, then per-side diagnostics."""
    title = (
        f"{result.coin}  mid {result.mid_usd:,.2f}  reservation {result.reservation_usd:,.2f}  "
        f"allocator {result.allocator}"
    )
    t = Table(title=title)
    for col in ("side", "level", "price (USD)", "size (coins)", "notional (USD)", "depth (bps)"):
        t.add_column(col, justify="right")
    for o in reversed(result.asks):
        t.add_row(
            "ask",
            str(o.level),
            f"{o.price:,.6g}",
            f"{o.size:.{result.sz_decimals}f}",
            f"{o.notional_usd:,.2f}",
            f"{o.depth_bps:.2f}",
            style="red",
        )
    for o in result.bids:
        t.add_row(
            "bid",
            str(o.level),
            f"{o.price:,.6g}",
            f"{o.size:.{result.sz_decimals}f}",
            f"{o.notional_usd:,.2f}",
            f"{o.depth_bps:.2f}",
            style="green",
        )
    out_console.print(t)
    d = Table(title="per-side diagnostics")
    d.add_column("")
    d.add_column("bid", justify="right")
    d.add_column("ask", justify="right")
    bid, ask = dict(_diag_rows(result.bid)), dict(_diag_rows(result.ask))
    for label in [*bid, *(k for k in ask if k not in bid)]:
        d.add_row(label, bid.get(label, ""), ask.get(label, ""))
    out_console.print(d)
    for s in (result.bid, result.ask):
        for note in s.notes:
            out_console.print(f"{s.side} note: {note}", style="yellow", markup=False, highlight=False)
        if s.empty_reason:
            out_console.print(f"[yellow]{s.side} side empty:[/] {escape(s.empty_reason)}")
        for drop in s.dropped:
            out_console.print(
                f"[yellow]{s.side} level {drop.level} dropped[/] ({escape(drop.reason)}, {drop.notional_usd:.2f} USD)"
            )


def _diag_rows(s: SideResult) -> list[tuple[str, str]]:
    a = s.allocation
    split = s.curves.split(s.projection.sizes) if s.curves.n else {}
    rows = [
        ("budget (coins)", f"{s.budget.budget_coins:.6g} ({s.budget.binding})"),
        ("size used (coins)", f"{s.size_used_coins:.6g}"),
        ("orders", str(len(s.orders))),
        ("entropy (nats)", f"{s.entropy_nats:.3f}"),
        ("effective levels", f"{s.effective_levels:.2f}"),
        ("expected PnL (USD)", f"{s.expected_pnl_usd:.4f}"),
    ]
    rows += [(f"  {k.removesuffix('_usd').replace('_', ' ')} (USD)", f"{v:.4f}") for k, v in split.items()]
    rows += [
        ("binding", a.binding),
        ("shadow price (USD/coin)", "n/a" if a.shadow_price != a.shadow_price else f"{a.shadow_price:.4g}"),
    ]
    # the split already has its own rows above; show the allocator's other diagnostics
    for k, v in a.diagnostics.items():
        if k in split:
            continue
        if k.endswith("_ns") and isinstance(v, (int, float)):
            rows.append((f"{k.removesuffix('_ns').replace('_', ' ')} (µs)", f"{v / 1e3:,.1f}"))
        else:
            rows.append((k.replace("_", " "), f"{v:.4g}" if isinstance(v, float) else str(v)))
    return rows
