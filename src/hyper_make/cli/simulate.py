"""``hyper-make simulate``: the allocator tournament on the simulated market, or the Avellaneda–Stoikov preset."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ..allocate import ALLOCATORS, make_allocator
from ..config import AppConfig, apply_overrides, read_toml
from ..defaults import default_spec
from ..errors import ConfigError, InvalidParameterError
from ..learn._report import write_learner_report
from ..report import write_report
from ..sim.avellaneda import PAPER_TABLES, STRATEGIES, ASConfig, simulate_as
from ..sim.config import AS_PRESET, PRESET_NAMES, PRESETS, SimConfig, get_preset
from ..sim.grid import (
    RunLog,
    grid_results,
    load_grid,
    manifest,
    plan_runs,
    regime_label,
    run_grid,
    write_grid_report,
)
from ..sim.montecarlo import path_seed, pooled_learner, run_tournament
from ..sim.strategy import initial_learner
from ._batch import RayAddress, Retries, batch_notes, executor_for, progress, warn_failures, write_failures
from ._common import (
    EstimatorHalflifeS,
    EstimatorPriorWeightS,
    LearnerStateFile,
    RequotePriceBps,
    RequoteSizeFrac,
    allocator_names,
    app,
    check_learner_state,
    check_out_dir,
    checked,
    compact_table,
    fail,
    interrupted,
    load_kernels,
    load_learner,
    out_console,
    print_json,
    print_table,
    quoter_config,
    render_metrics,
    save_learner,
    seed_option,
    user_errors,
)

#: ``[market]`` keys of the ladder config and where a simulation takes them from instead (the simulated market
#: builds every snapshot; a key in ``[market]`` would be silently ignored, so it is refused with this pointer).
SIM_MARKET_KEYS = {
    "maker_fee_bps": "sim.market.maker_fee_bps",
    "taker_fee_bps": "sim.market.taker_fee_bps",
    "mid_usd": "sim.market.mid0_usd",
    "sigma_frac": "sim.market.sigma_bps_per_sqrt_s (bps of price per √s)",
    "max_position_coins": "sim.strategy.max_position_coins",
    "margin_usd": "sim.strategy.margin_usd",
    "leverage": "sim.strategy.leverage",
    "volume_profile_depth_bps": "sim.strategy.volume_profile_depth_bps",
    "volume_profile_coins": "sim.strategy.volume_profile_coins_per_s",
}


def load_sim_config(path: Path | None, base: SimConfig) -> tuple[SimConfig, dict[str, dict[str, Any]]]:
    """Apply a TOML file over a preset: ``[sim.market]`` / ``[sim.strategy]`` fields, and the ``[ladder]``,
    ``[allocator.<name>]``, ``[quoter]`` and ``[meta]`` sections of the ladder config (the strategy's model,
    options and refresh core, as every command reads them).

    ``[market]`` and ``[instrument]`` are refused, naming the ``[sim.*]`` key that sets the same thing: the simulated
    market makes every snapshot (BBO, σ, volume, fees) and trades on its own tick grid.
    """
    if path is None:
        return base, {}
    return sim_config_from_raw(read_toml(path), base)


def sim_config_from_raw(raw: dict[str, Any], base: SimConfig) -> tuple[SimConfig, dict[str, dict[str, Any]]]:
    """:func:`load_sim_config` on an already parsed TOML document (``hyper-make tune`` merges its trial's values
    into the user's file this way)."""
    raw = dict(raw)
    sim = _section(raw.pop("sim", {}), "sim")
    unknown = sorted(set(sim) - {"market", "strategy"})
    if unknown:
        hint = " ([sim.as] is for --preset avellaneda-stoikov-2008)" if unknown[0] == "as" else ""
        raise ConfigError(f"unknown config key 'sim.{unknown[0]}'; valid keys are ['market', 'strategy']{hint}")
    for key in _section(raw.get("market", {}), "market"):
        where = SIM_MARKET_KEYS.get(key)
        fix = f"set '{where}'" if where else "the simulated market sets it"
        raise ConfigError(f"config key 'market.{key}' is not used by simulate (the simulated market makes every "
                          f"snapshot): {fix}, and remove [market]")  # fmt: skip
    if "instrument" in raw:
        raise ConfigError(
            "config section [instrument] is not used by simulate: the simulated market quotes on its own tick grid "
            "('sim.market.tick_usd', 'sim.market.mid0_usd'); remove [instrument]"
        )
    raw.pop("market", None)
    app_cfg = apply_overrides(AppConfig(ladder=base.strategy.ladder, quoter=base.strategy.quoter), raw)
    strategy_values = _section(sim.get("strategy", {}), "sim.strategy")
    where = (("ladder", "the ladder's model is set in [ladder]"), ("quoter", "the strategy is set in [quoter]"))
    for key, what in where:
        if key in strategy_values:
            raise ConfigError(f"config key 'sim.strategy.{key}': {what}, not here")
    market = _replace(base.market, _section(sim.get("market", {}), "sim.market"), "sim.market")
    strategy = _replace(
        base.strategy, {**strategy_values, "ladder": app_cfg.ladder, "quoter": app_cfg.quoter}, "sim.strategy"
    )
    return SimConfig(market=market, strategy=strategy), app_cfg.allocator_options


def load_as_config(path: Path | None, base: ASConfig) -> ASConfig:
    """Apply a TOML file's ``[sim.as]`` section (the paper's parameters, :class:`ASConfig`) over ``base``; the
    A-S preset reads nothing else, so any other section is refused."""
    if path is None:
        return base
    raw = read_toml(path)
    sim = _section(raw.pop("sim", {}), "sim")
    other = [f"[{k}]" for k in raw] + [f"[sim.{k}]" for k in sim if k != "as"]
    if other:
        raise ConfigError(
            f"config section {other[0]} is not used by the {AS_PRESET} preset: it reads only [sim.as] "
            f"({', '.join(f.name for f in dataclasses.fields(ASConfig))})"
        )
    return _replace(base, _section(sim.get("as", {}), "sim.as"), "sim.as")  # type: ignore[no-any-return]


def _section(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"config key {path!r} must be a table ([{path}]); got {type(value).__name__}")
    return value


def _replace(obj: Any, values: dict[str, Any], path: str) -> Any:
    valid = [f.name for f in dataclasses.fields(obj) if f.init]
    for k in values:
        if k not in valid:
            raise ConfigError(f"unknown config key '{path}.{k}'; valid keys are {valid}")
    try:
        return dataclasses.replace(obj, **values)
    except InvalidParameterError as exc:
        # the dataclasses' checks name their fields 'sim.market.x', 'sim.as.x': the key as written in the file
        msg = str(exc)
        raise ConfigError(f"config key {msg}" if msg.startswith("'sim.") else f"config [{path}]: {msg}") from None
    except TypeError as exc:
        raise ConfigError(f"config section [{path}]: {exc}") from None


def _machine() -> str:
    cpu = platform.processor() or platform.system()
    return f"{platform.machine()} {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


@app.command()
def simulate(
    preset: Annotated[str, typer.Option(help=f"Market preset: {', '.join(PRESET_NAMES)}.")] = "default",
    paths: Annotated[
        int | None,
        typer.Option(
            help="Paths (seeds) per allocator, >= 1; default 16, or 1000 for the A-S preset.",
            callback=checked(lo=1, integer=True),
        ),
    ] = None,
    seed: Annotated[int, seed_option("Base seed; path i uses the same market seed for every allocator.")] = 0,
    allocator: Annotated[
        str | None,
        typer.Option(
            "--allocator",
            "-a",
            help="Comma-separated allocators (default: every registered one; A-S preset: inventory,symmetric).",
        ),
    ] = None,
    horizon_s: Annotated[
        float | None,
        typer.Option(
            "--horizon-s",
            help="Run length per path (s, > 0; A-S preset: the paper's T, default 1).",
            callback=checked(lo=0.0, lo_open=True, unit="s"),
        ),
    ] = None,
    gamma: Annotated[
        float | None,
        typer.Option(
            help="A-S preset: risk aversion γ (> 0; default 0.1; the paper uses 0.01, 0.1, 0.5).",
            callback=checked(lo=0.0, lo_open=True),
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes, >= 1 (default: every CPU).", callback=checked(lo=1, integer=True)),
    ] = None,
    out: Annotated[Path, typer.Option(help="Report folder (metrics.json/.csv, PNG plots, summary.md).")] = Path(
        "sim-report"
    ),
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="TOML: [sim.market], [sim.strategy], [ladder], [allocator.<name>], [quoter] ([sim.as] for the A-S "
            "preset).",
        ),
    ] = None,
    requote_price_bps: RequotePriceBps = None,
    requote_size_frac: RequoteSizeFrac = None,
    estimator_halflife_s: EstimatorHalflifeS = None,
    estimator_prior_weight_s: EstimatorPriorWeightS = None,
    learner_state: LearnerStateFile = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout instead of tables.")] = False,
    grid: Annotated[
        Path | None,
        typer.Option(
            "--grid",
            help="Grid TOML: regimes as overrides of [sim.market], [sim.strategy], [ladder] ([grid.axes] product "
            "and/or [[grid.regime]]); every allocator on paired seeds in each, streamed to --out, resumed on rerun.",
        ),
    ] = None,
    ray: RayAddress = None,
    retries: Retries = 2,
) -> None:
    """Run allocators (or the A-S strategies) on paired simulated paths and write a report folder.

    With --learner-state, every path of the 'learned' allocator starts from the saved posterior (paths stay
    independent and paired) and the file is rewritten with what all paths learned, pooled.

    With --ray ADDRESS the runs execute on a Ray cluster instead of local processes (the same results); a run that
    fails every attempt (--retries) is reported in failures.json while the others complete."""
    with user_errors():
        if preset not in PRESET_NAMES:
            raise InvalidParameterError(f"'--preset' must be one of {list(PRESET_NAMES)}; got {preset!r}")
        if preset == AS_PRESET and grid is not None:
            raise InvalidParameterError(f"'--grid' is for the event-driven presets {list(PRESETS)}, not {AS_PRESET}")
        if preset == AS_PRESET and ray is not None:
            raise InvalidParameterError(f"'--ray' is for the event-driven presets {list(PRESETS)}, not {AS_PRESET}")
        if preset == AS_PRESET:
            strategies = [a.strip() for a in allocator.split(",") if a.strip()] if allocator else None
            if strategies and set(strategies) - set(STRATEGIES):
                bad = sorted(set(strategies) - set(STRATEGIES))[0]
                raise InvalidParameterError(f"'--allocator' must name strategies among {list(STRATEGIES)} for the "
                                            f"{AS_PRESET} preset; got {bad!r}")  # fmt: skip
            as_cfg = load_as_config(config, ASConfig())
            as_cfg = dataclasses.replace(
                as_cfg,
                **({} if gamma is None else {"gamma": gamma}),
                **({} if horizon_s is None else {"horizon": horizon_s}),
            )
            check_out_dir(out)
            _simulate_as(tuple(strategies or STRATEGIES), paths or 1000, seed, as_cfg, out, json_out)
            return
        if gamma is not None:
            raise InvalidParameterError(
                f"'--gamma' is for --preset {AS_PRESET}; the ladder's risk aversion is [ladder] risk_aversion"
            )
        names = allocator_names(allocator) or list(ALLOCATORS)
        cfg, options = load_sim_config(config, get_preset(preset))
        quoter = quoter_config(
            cfg.strategy.quoter,
            requote_price_bps=requote_price_bps,
            requote_size_frac=requote_size_frac,
            estimator_halflife_s=estimator_halflife_s,
            estimator_prior_weight_s=estimator_prior_weight_s,
        )
        strategy = dataclasses.replace(cfg.strategy, quoter=quoter)
        if horizon_s is not None:
            strategy = dataclasses.replace(strategy, horizon_s=horizon_s)
        cfg = SimConfig(market=cfg.market, strategy=strategy)
        n_paths = paths or 16
        check_out_dir(out)
        check_learner_state(learner_state, names)
        if grid is not None and learner_state is not None:
            raise InvalidParameterError(
                "'--learner-state' is for one market; with '--grid' every regime's learned paths start from the "
                "prior (train a posterior per regime with a plain simulate of that regime's config)"
            )
        executor = executor_for(ray, workers, retries)
        learner_name = next((n for n in names if getattr(ALLOCATORS[n], "learns", False)), None)
        base = None
        if learner_name is not None and grid is None:
            alloc = make_allocator(learner_name, **options.get(learner_name, {}))
            # the pool needs the start every path shares: the file's posterior, or the prior the core would build
            base = load_learner(learner_state, alloc, default_spec().coin) or initial_learner(cfg, alloc)
    command = (
        f"hyper-make simulate {f'--grid {grid} ' if grid else ''}--preset {preset} --paths {n_paths} --seed {seed}"
        + (f" --allocator {','.join(names)}" if allocator else "")
        + (f" --horizon-s {horizon_s:g}" if horizon_s else "")
        + (f" --config {config}" if config else "")
    )
    if grid is not None:
        load_kernels(sim_loop=True)
        _simulate_grid(grid, cfg, names, options, n_paths, seed, executor, out, json_out, command)
        return
    load_kernels(sim_loop=True)
    with progress("simulate", n_paths * len(names), quiet=json_out) as advance:
        tour = run_tournament(
            cfg,
            allocators=names,
            paths=n_paths,
            seed=seed,
            allocator_options=options,
            on_done=lambda _r: advance(),
            learner=base,
            executor=executor,
        )
    pooled = pooled_learner(tour, learner_name, base) if learner_name is not None else None
    with user_errors():
        save_learner(learner_state, pooled)
    metrics = tour.metrics()
    first = {n: tour.results[n].get(0) for n in names}
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = [
        f"command: {command}",
        f"machine: {_machine()}; date: {when}",
        f"horizon {cfg.strategy.horizon_s:g} s per path, refresh every {cfg.strategy.refresh_s:g} s; "
        f"finished {tour.finished} of {n_paths * len(names)} (allocator, path) runs",
        "PnL: cash after the terminal exit of the inventory through the book (USD); Sharpe: mean/std over paths "
        "(one sample per path, not annualised); diff CI: paired t interval (95 %) on the common seeds",
        f"market: {dataclasses.asdict(cfg.market)}",
        *batch_notes(executor),
    ]
    if tour.interrupted:
        notes.insert(0, f"INTERRUPTED (Ctrl-C): partial results from {tour.finished} of {n_paths * len(names)} runs")
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
    if pooled is not None:
        with user_errors():
            write_learner_report(pooled, out, title=f"learned, {tour.finished} runs pooled")
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
        render_metrics(f"preset {preset}: {n_paths} paths, seed {seed}", metrics, TOURNAMENT_COLUMNS)
        out_console.print(f"report: {report}")
    write_failures(out, executor)
    if tour.interrupted:
        interrupted(f"kept {tour.finished} finished (allocator, path) runs in a partial report in {out}")
    _exit_on_failures(executor, out)


def _exit_on_failures(executor: Any, out: Path) -> None:
    """After the report: one warning per run that failed every attempt, and exit code 1 if any did."""
    if executor.failures:
        warn_failures(executor)
        fail(f"{len(executor.failures)} runs failed on every attempt (their config and seed in "
             f"{out / 'failures.json'}); the report holds the others", code=1)  # fmt: skip


#: The tournament's summary, in two tables that fit 80 columns.
TOURNAMENT_COLUMNS = (
    (
        "USD per path; CI: 95 % interval of the mean; Sharpe: mean/std over paths (not annualised)",
        [("mean_pnl", "mean PnL"), ("ci_lo", "CI lo"), ("ci_hi", "CI hi"), ("std_pnl", "std PnL"),
         ("sharpe", "Sharpe")],
    ),
    (
        "PnL parts (USD per path), maker fills per path, effective levels exp(H), std of the final position (coins)",
        [("adverse_selection", "adverse"), ("impact", "impact"), ("fees", "fees"), ("mean_fills", "fills"),
         ("mean_effective_levels", "eff"), ("std_final_inventory", "std q_T")],
    ),
)  # fmt: skip


#: Per regime on the terminal (the full metrics are in the report folder and ``--json``).
GRID_COLUMNS = (
    (
        "USD per path; CI: 95 % interval of the mean; Δ best: mean PnL minus the best other allocator's, paired "
        "95 % CI [Δ lo, Δ hi] on the common seeds",
        [("mean_pnl", "mean PnL"), ("ci_lo", "CI lo"), ("ci_hi", "CI hi"), ("diff_vs_best_other", "Δ best"),
         ("diff_vs_best_other_ci_lo", "Δ lo"), ("diff_vs_best_other_ci_hi", "Δ hi")],
    ),
)  # fmt: skip


def _simulate_grid(
    grid_path: Path,
    cfg: SimConfig,
    names: list[str],
    options: dict[str, dict[str, Any]],
    n_paths: int,
    seed: int,
    executor: Any,
    out: Path,
    json_out: bool,
    command: str,
) -> None:
    """``simulate --grid``: plan every (path, regime, allocator) run, resume from ``out``, run the rest on the
    local pool with each record streamed to ``out/runs.jsonl``, then write the grid report."""
    with user_errors():
        grid = load_grid(grid_path)
        plan = plan_runs(grid, cfg, allocators=names, paths=n_paths, seed=seed, allocator_options=options)
        doc = manifest(grid, plan, allocators=names, paths=n_paths, seed=seed, allocator_options=options)
        log = RunLog(out, doc, (it.key for it in plan))
    total = len(plan)
    with progress("grid", total, log.resumed, quiet=json_out) as advance:
        stopped = run_grid(plan, log, executor=executor, on_done=lambda _r: advance())
    results, tours = grid_results(grid, log.done.values(), allocators=names, paths=n_paths, seed=seed)
    finished = len(log.done)
    notes = [
        f"command: {command}",
        f"machine: {_machine()}; date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"{len(grid.regimes)} regimes × {len(names)} allocators × {n_paths} paths: finished {finished} of {total} "
        f"runs ({log.resumed} from an earlier run in this folder); base horizon {cfg.strategy.horizon_s:g} s per "
        f"path, refresh every {cfg.strategy.refresh_s:g} s",
        "PnL: cash after the terminal exit of the inventory through the book (USD); Sharpe: mean/std over paths "
        "(not annualised); diff CI: paired t interval (95 %) on the common seeds, against entropy (diff_vs_entropy) "
        "and against the best other allocator of the regime (diff_vs_best_other)",
        f"runs: one JSON record per finished run in {out / 'runs.jsonl'} (no equity curves or ladder shapes: a "
        "grid keeps one small record per run)",
        *batch_notes(executor),
    ]
    if stopped:
        notes.insert(0, f"INTERRUPTED (Ctrl-C): partial results from {finished} of {total} runs; rerun to resume")
    try:
        report = write_grid_report(out, grid, results, tours, allocators=names, notes=notes)
    except KeyboardInterrupt:
        interrupted(f"the report was not finished; the {finished} finished runs are kept in {out / 'runs.jsonl'}: "
                    "rerun the same command to write it")  # fmt: skip
    if json_out:
        print_json(
            {
                **results,
                "allocators": names,
                "paths": n_paths,
                "seed": seed,
                "total_runs": total,
                "finished_runs": finished,
                "resumed_runs": log.resumed,
                "interrupted": stopped,
                "report": str(report),
            }
        )
    else:
        last = len(grid.regimes) - 1
        for i, r in enumerate(grid.regimes):
            ov = ", ".join(f"{k} = {v}" for k, v in r.overrides.items()) or "the base config"
            title = f"regime {r.name}" + ("" if r.name == regime_label(r.overrides) else f": {ov}")
            groups = GRID_COLUMNS if i == last else tuple(("", cols) for _, cols in GRID_COLUMNS)
            render_metrics(title, results["regimes"][r.name]["strategies"], groups)
        heat = out / "heatmap.png"
        out_console.print(f"report: {report}" + (f"; heatmap: {heat}" if len(names) > 1 else ""))
    write_failures(out, executor)
    if stopped:
        interrupted(f"kept {finished} of {total} finished runs in {out / 'runs.jsonl'}; rerun the same command to "
                    "resume")  # fmt: skip
    _exit_on_failures(executor, out)


def _simulate_as(strategies: tuple[str, ...], paths: int, seed: int, cfg: ASConfig, out: Path, json_out: bool) -> None:
    res = simulate_as(cfg, paths=paths, seed=seed, strategies=strategies)
    table = res.table()
    gamma = cfg.gamma
    # the paper's tables hold for its other parameters only
    paper = PAPER_TABLES.get(round(gamma, 6)) if cfg == ASConfig(gamma=gamma) else None
    notes = [
        f"command: hyper-make simulate --preset {AS_PRESET} --paths {paths} --seed {seed} --gamma {gamma:g}"
        + (f" --horizon-s {cfg.horizon:g}" if cfg.horizon != 1.0 else ""),
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
    t = compact_table()
    for c in ("strategy", "mean PnL", "std PnL", "mean q_T", "std q_T"):
        t.add_column(c, justify="right")
    for s, row in table.items():
        ref = paper.get(s) if paper else None
        vals = [row["mean_pnl"], row["std_pnl"], row["mean_final_inventory"], row["std_final_inventory"]]
        t.add_row(s, *(f"{v:.2f}" + (f" ({ref[i]:g})" if ref else "") for i, v in enumerate(vals)))
    print_table(t, title=f"Avellaneda-Stoikov 2008 §4, γ = {gamma:g}, {paths} paths (paper in brackets)")
    out_console.print(f"report: {out / 'summary.md'}")


__all__ = ["simulate"]
