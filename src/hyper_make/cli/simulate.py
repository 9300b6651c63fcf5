"""``hyper-make simulate``: the allocator tournament on the simulated market, or the Avellaneda–Stoikov preset."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..allocate import ALLOCATORS
from ..config import AppConfig, apply_overrides
from ..errors import ConfigError, InvalidParameterError
from ..report import write_report
from ..sim.avellaneda import PAPER_TABLES, STRATEGIES, ASConfig, simulate_as
from ..sim.config import AS_PRESET, PRESET_NAMES, SimConfig, get_preset
from ..sim.montecarlo import path_seed, run_tournament
from ._common import app, err_console, out_console, print_json, user_errors

EXIT_INTERRUPTED = 130


def load_sim_config(path: Path | None, base: SimConfig) -> tuple[SimConfig, dict[str, dict[str, Any]]]:
    """Apply a TOML file over a preset: ``[sim.market]`` / ``[sim.strategy]`` fields, and the ``[ladder]`` and
    ``[allocator.<name>]`` sections of the ladder config (the allocators' model and options)."""
    if path is None:
        return base, {}
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    sim = raw.pop("sim", {})
    if not isinstance(sim, dict):
        raise ConfigError("config key 'sim' must be a table ([sim.market], [sim.strategy])")
    unknown = sorted(set(sim) - {"market", "strategy"})
    if unknown:
        raise ConfigError(f"unknown config key 'sim.{unknown[0]}'; valid keys are ['market', 'strategy']")
    app_cfg = apply_overrides(AppConfig(ladder=base.strategy.ladder), raw)
    market = _replace(base.market, sim.get("market", {}), "sim.market")
    strategy = _replace(base.strategy, {**sim.get("strategy", {}), "ladder": app_cfg.ladder}, "sim.strategy")
    return SimConfig(market=market, strategy=strategy), app_cfg.allocator_options


def _replace(obj: Any, values: dict[str, Any], path: str) -> Any:
    valid = [f.name for f in dataclasses.fields(obj) if f.init]
    for k in values:
        if k not in valid:
            raise ConfigError(f"unknown config key '{path}.{k}'; valid keys are {valid}")
    try:
        return dataclasses.replace(obj, **values)
    except InvalidParameterError as exc:
        raise ConfigError(f"config: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"config section [{path}]: {exc}") from None


def _machine() -> str:
    cpu = platform.processor() or platform.system()
    return f"{platform.machine()} {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


@app.command()
def simulate(
    preset: Annotated[str, typer.Option(help=f"Market preset: {', '.join(PRESET_NAMES)}.")] = "default",
    paths: Annotated[
        int | None, typer.Option(help="Paths (seeds) per allocator; default 16, or 1000 for the A-S preset.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Base seed; path i uses the same market seed for every allocator.")] = 0,
    allocators: Annotated[
        str | None,
        typer.Option(help="Comma-separated allocators (default: every registered one; A-S: inventory,symmetric)."),
    ] = None,
    horizon: Annotated[
        float | None, typer.Option(help="Run length per path (s; A-S preset: the paper's T, default 1).")
    ] = None,
    gamma: Annotated[float, typer.Option(help="A-S preset: risk aversion γ (the paper uses 0.01, 0.1, 0.5).")] = 0.1,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: every CPU).")] = None,
    out: Annotated[Path, typer.Option(help="Report folder (metrics.json/.csv, PNG plots, summary.md).")] = Path(
        "sim-report"
    ),
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML: [sim.market], [sim.strategy], [ladder], [allocator.*].")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout instead of tables.")] = False,
) -> None:
    """Run allocators (or the A-S strategies) on paired simulated paths and write a report folder."""
    with user_errors():
        if preset not in PRESET_NAMES:
            raise InvalidParameterError(f"unknown preset {preset!r}; choose one of {list(PRESET_NAMES)}")
        if paths is not None and paths <= 0:
            raise InvalidParameterError(f"'--paths' must be a positive integer; got {paths}")
        if horizon is not None and not horizon > 0:
            raise InvalidParameterError(f"'--horizon' must be > 0 s; got {horizon}")
        if workers is not None and workers <= 0:
            raise InvalidParameterError(f"'--workers' must be a positive integer; got {workers}")
        names = [a.strip() for a in allocators.split(",") if a.strip()] if allocators else None
        if preset == AS_PRESET:
            _simulate_as(names, paths or 1000, seed, horizon, gamma, out, json_out)
            return
        if names:
            for n in names:
                if n not in ALLOCATORS:
                    raise InvalidParameterError(f"unknown allocator {n!r}; choose one of {sorted(ALLOCATORS)}")
        cfg, options = load_sim_config(config, get_preset(preset))
        if horizon is not None:
            cfg = SimConfig(market=cfg.market, strategy=dataclasses.replace(cfg.strategy, horizon_s=horizon))
        names = names or list(ALLOCATORS)
        n_paths = paths or 16
    with Progress(
        TextColumn("[bold]simulate[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=json_out, disable=not err_console.is_terminal and json_out,
    ) as bar:  # fmt: skip
        task = bar.add_task("paths", total=n_paths * len(names))
        tour = run_tournament(
            cfg,
            allocators=names,
            paths=n_paths,
            seed=seed,
            workers=workers,
            allocator_options=options,
            on_done=lambda _r: bar.advance(task),
        )
    metrics = tour.metrics()
    first = {n: tour.results[n].get(0) for n in names}
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = [
        f"command: hyper-make simulate --preset {preset} --paths {n_paths} --seed {seed}"
        + (f" --allocators {','.join(names)}" if allocators else "")
        + (f" --horizon {horizon:g}" if horizon else ""),
        f"machine: {_machine()}; date: {when}",
        f"horizon {cfg.strategy.horizon_s:g} s per path, refresh every {cfg.strategy.refresh_s:g} s; "
        f"finished {tour.finished} of {n_paths * len(names)} (allocator, path) runs",
        "PnL: cash after the terminal exit of the inventory through the book (USD); Sharpe: mean/std over paths "
        "(one sample per path, not annualised); diff CI: paired t interval (95 %) on the common seeds",
        f"market: {dataclasses.asdict(cfg.market)}",
    ]
    if tour.interrupted:
        notes.insert(0, f"INTERRUPTED: partial results from {tour.finished} finished runs")
    report = write_report(
        out,
        title=f"Allocator tournament: preset {preset}",
        metrics=metrics,
        pnl_samples={n: np.array([r.pnl_usd for r in tour.results[n].values()]) for n in names if tour.results[n]},
        equity={n: r.equity for n, r in first.items() if r is not None and r.equity is not None},
        ladder_shapes={n: r.shapes for n, r in first.items() if r is not None and r.shapes is not None},
        decomposition=tour.decomposition(),
        notes=notes,
        extra_json={
            "path_seeds": {i: path_seed(seed, i) for i in range(n_paths)},
            "pnl_per_path": {n: {i: r.pnl_usd for i, r in sorted(tour.results[n].items())} for n in names},
        },
    )
    if json_out:
        print_json(
            {
                "preset": preset,
                "paths": n_paths,
                "seed": seed,
                "interrupted": tour.interrupted,
                "finished_runs": tour.finished,
                "strategies": metrics,
                "report": str(report),
            }
        )
    else:
        _table(f"preset {preset}: {n_paths} paths, seed {seed}", metrics)
        out_console.print(f"report: {report}")
    if tour.interrupted:
        print(f"interrupted: kept {tour.finished} finished (allocator, path) runs in {out}", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED)


def _table(title: str, metrics: dict[str, dict[str, float]]) -> None:
    cols = [
        ("mean_pnl", "mean PnL"), ("ci_lo", "CI lo"), ("ci_hi", "CI hi"), ("std_pnl", "std PnL"),
        ("sharpe", "Sharpe"), ("adverse_selection", "adverse"), ("impact", "impact"), ("fees", "fees"),
        ("mean_fills", "fills"), ("mean_effective_levels", "eff. levels"), ("std_final_inventory", "std q_T"),
    ]  # fmt: skip
    t = Table(title=title)
    t.add_column("strategy")
    for _, label in cols:
        t.add_column(label, justify="right")
    for name, row in metrics.items():
        t.add_row(name, *(f"{row[k]:,.4g}" if k in row and np.isfinite(row[k]) else "-" for k, _ in cols))
    out_console.print(t)


def _simulate_as(
    names: list[str] | None, paths: int, seed: int, horizon: float | None, gamma: float, out: Path, json_out: bool
) -> None:
    strategies = tuple(names) if names else STRATEGIES
    cfg = ASConfig(gamma=gamma, horizon=horizon if horizon is not None else 1.0)
    res = simulate_as(cfg, paths=paths, seed=seed, strategies=strategies)
    table = res.table()
    paper = PAPER_TABLES.get(round(gamma, 6))
    notes = [
        f"command: hyper-make simulate --preset {AS_PRESET} --paths {paths} --seed {seed} --gamma {gamma:g}",
        f"machine: {_machine()}; date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"parameters: {dataclasses.asdict(cfg)}; PnL in price units, one unit per order, inventory valued at the mid",
    ]
    if paper:
        for s, (m, sd, q, sq) in paper.items():
            notes.append(f"paper (γ={gamma:g}) {s}: profit {m}, std {sd}, final q {q}, std q {sq}")
    write_report(out, title=f"Avellaneda-Stoikov 2008 §4, γ = {gamma:g}", metrics=table, pnl_samples=res.pnl,
                 notes=notes, extra_json={"paper": paper} if paper else None)  # fmt: skip
    if json_out:
        print_json({"preset": AS_PRESET, "paths": paths, "seed": seed, "gamma": gamma, "strategies": table,
                    "paper": paper, "report": str(out / "summary.md")})  # fmt: skip
        return
    t = Table(title=f"Avellaneda-Stoikov 2008 §4, γ = {gamma:g}, {paths} paths (paper in brackets)")
    for c in ("strategy", "mean PnL", "std PnL", "mean q_T", "std q_T"):
        t.add_column(c, justify="right")
    for s, row in table.items():
        ref = paper.get(s) if paper else None
        vals = [row["mean_pnl"], row["std_pnl"], row["mean_final_inventory"], row["std_final_inventory"]]
        t.add_row(s, *(f"{v:.2f}" + (f" ({ref[i]:g})" if ref else "") for i, v in enumerate(vals)))
    out_console.print(t)
    out_console.print(f"report: {out / 'summary.md'}")


__all__ = ["simulate"]
