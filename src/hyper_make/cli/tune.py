"""``hyper-make tune``: an Optuna study over the strategy's parameters on a simulator preset or walk-forward replay,
its trials on local processes or a Ray cluster, stored in SQLite (it resumes)."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from .._json import to_jsonable
from ..errors import InvalidParameterError
from ._batch import RayAddress, Retries, batch_notes, executor_for, progress, write_failures
from ._common import (
    allocator_names,
    app,
    check_out_dir,
    checked,
    interrupted,
    out_console,
    print_json,
    seed_option,
    user_errors,
    warn,
)


@app.command("tune")
def tune(
    trials: Annotated[
        int,
        typer.Option(
            help="Complete trials the study should hold, >= 1 (a resumed study runs the rest).",
            callback=checked(lo=1, integer=True),
        ),
    ] = 20,
    storage: Annotated[
        str | None,
        typer.Option(help="Optuna storage URL (default: sqlite:///<out>/study.db); the study resumes from it."),
    ] = None,
    study_name: Annotated[str, typer.Option("--study-name", help="Name of the study in the storage.")] = "hyper-make",
    out: Annotated[Path, typer.Option(help="Folder: best.toml, trials.csv, tune.png, summary.md, study.db.")] = Path(
        "tune-report"
    ),
    objective: Annotated[
        str,
        typer.Option(
            help="'mean_pnl': paired-seed mean PnL (USD per path; replay: the test PnL); 'sharpe': mean / std over "
            "the paths (replay: test PnL / its bootstrap standard error)."
        ),
    ] = "mean_pnl",
    allocator: Annotated[str, typer.Option("--allocator", "-a", help="The allocator tuned.")] = "impact",
    params: Annotated[
        str | None,
        typer.Option(help="Comma-separated dotted keys to tune (default: every one that applies; see docs/guide.md)."),
    ] = None,
    batch: Annotated[
        int,
        typer.Option(
            help="Trials asked and run at once, >= 1; fixed so that a cluster and a laptop give the same study.",
            callback=checked(lo=1, integer=True),
        ),
    ] = 4,
    preset: Annotated[str, typer.Option(help="Simulator market preset.")] = "default",
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML the trials' values are merged into (as simulate/backtest read it)."),
    ] = None,
    paths: Annotated[
        int, typer.Option(help="Paired paths (seeds) per trial, >= 2.", callback=checked(lo=2, integer=True))
    ] = 8,
    horizon_s: Annotated[
        float | None,
        typer.Option("--horizon-s", help="Run length per path (s, > 0).", callback=checked(lo=0.0, lo_open=True)),
    ] = None,
    seed: Annotated[int, seed_option("Base seed of the paths (the same for every trial) and of the sampler.")] = 0,
    train: Annotated[
        list[Path] | None,
        typer.Option("--train", help="Walk-forward replay instead of the simulator: calibrate and train on these."),
    ] = None,
    test: Annotated[list[Path] | None, typer.Option("--test", help="Walk-forward: the test data.")] = None,
    refresh_s: Annotated[
        float, typer.Option("--refresh-s", help="Walk-forward: refresh interval (s).", callback=checked(lo=0.01))
    ] = 1.0,
    block_s: Annotated[float, typer.Option("--block-s", help="Walk-forward: bootstrap block (s).")] = 60.0,
    workers: Annotated[
        int | None,
        typer.Option(help="Local worker processes, >= 1 (default: every CPU).", callback=checked(lo=1, integer=True)),
    ] = None,
    ray: RayAddress = None,
    retries: Retries = 2,
    ship_data: Annotated[bool, typer.Option("--ship-data", help="With --ray: send the data files once.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Tune the strategy's parameters with Optuna: each trial's values merged into --config, its objective on
    paired simulator paths (or a walk-forward replay with --train/--test), the trials through the same executor
    as simulate (local processes or --ray). Writes best.toml (simulate --config; best_ladder.toml without [sim]
    for backtest/run/ladder), trials.csv, tune.png (objective history, parameter importances) and summary.md."""
    from .. import tune as tn
    from ..allocate import ALLOCATORS
    from ..config import AppConfig, apply_overrides, read_toml

    with user_errors():
        if objective not in tn.OBJECTIVES:
            raise InvalidParameterError(f"'--objective' must be one of {list(tn.OBJECTIVES)}; got {objective!r}")
        name = (allocator_names(allocator, single=True) or ["impact"])[0]
        learns = bool(getattr(ALLOCATORS[name], "learns", False))
        replay = bool(train or test)
        if replay and not (train and test):
            raise InvalidParameterError("walk-forward tuning needs both '--train FILE' and '--test FILE'")
        keys = [k.strip() for k in params.split(",") if k.strip()] if params else None
        space = tn.search_space(keys, learns=learns, sim=not replay)
        check_out_dir(out)
        out.mkdir(parents=True, exist_ok=True)
        user = read_toml(config) if config else {}
        executor = executor_for(ray, workers, retries, ship_data=ship_data)
        try:
            import optuna
        except ImportError:
            raise InvalidParameterError("'tune' needs Optuna, which is not installed: pip install "
                                        "'hyper_make[cluster]'") from None  # fmt: skip
        url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
        study = tn.open_study(url, study_name, seed)
        if replay:
            from ..backtest import ReplayConfig
            from .data import expand_files

            if "sim" in user:
                raise InvalidParameterError("'--config' for a walk-forward is the ladder config: remove [sim]")
            tr = tuple(str(p) for p in expand_files(train or []))
            te = tuple(str(p) for p in expand_files(test or []))
            rcfg = ReplayConfig(refresh_s=refresh_s, seed=seed)

            def make_items(n: int, values: dict[str, Any]) -> list[Any]:
                app_cfg = apply_overrides(AppConfig(), tn.merge(user, tn.nested(values, name)))
                return [tn.ReplayTrialRun(n, app_cfg, rcfg, name, tr, te, block_s)]

            def reduce(rs: list[Any]) -> float:
                pnl, se = rs[0]
                return pnl if objective == "mean_pnl" else (pnl / se if se > 0 else 0.0)

            task: Any = tn.run_replay_trial
            base_desc = f"walk-forward train {list(tr)} test {list(te)}, refresh {refresh_s:g} s"
        else:
            from ..sim.config import PRESETS, SimConfig, get_preset
            from ..sim.montecarlo import path_seed
            from .simulate import sim_config_from_raw

            if preset not in PRESETS:
                raise InvalidParameterError(f"'--preset' must be one of {list(PRESETS)}; got {preset!r}")
            base = get_preset(preset)
            seeds = [path_seed(seed, i) for i in range(paths)]

            def make_items(n: int, values: dict[str, Any]) -> list[Any]:
                cfg, options = sim_config_from_raw(tn.merge(user, tn.nested(values, name)), base)
                if horizon_s is not None:
                    cfg = SimConfig(market=cfg.market, strategy=dataclasses.replace(cfg.strategy, horizon_s=horizon_s))
                return [tn.SimTrialRun(n, i, s, cfg, name, dict(options.get(name, {}))) for i, s in enumerate(seeds)]

            def reduce(rs: list[Any]) -> float:
                return tn.score(objective, rs)

            task = tn.run_sim_trial
            base_desc = f"preset {preset}, {paths} paired paths" + (f" of {horizon_s:g} s" if horizon_s else "")
        make_items(-1, {p.key: (int(p.lo) if p.integer else p.lo) for p in space})  # a bad config fails here, once
    import optuna

    done_before = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    with progress("tune", max(trials, done_before), done_before, quiet=json_out) as advance:
        res = tn.run_study(study, space, make_items, task, reduce, trials=trials, batch=batch, executor=executor,
                           on_done=advance)  # fmt: skip
    _write_report(study, space, name, objective, out, url, base_desc, res, executor, user)
    write_failures(out, executor)
    summary = {"study": study_name, "storage": url, "objective": objective, "allocator": name,
               "complete_trials": res.complete, "ran_trials": res.ran, "resumed_trials": res.resumed,
               "failed_trials": res.failed, "interrupted": res.interrupted}  # fmt: skip
    if res.complete:
        summary |= {"best_value": study.best_value, "best_params": study.best_params,
                    "best_trial": study.best_trial.number, "best_config": str(out / "best.toml")}  # fmt: skip
    if json_out:
        print_json(summary)
    else:
        best = f"best {study.best_value:.6g} (trial {study.best_trial.number})" if res.complete else "no trial done"
        out_console.print(f"tune: {res.complete} complete trials ({res.resumed} resumed, {res.ran} run now, "
                          f"{res.failed} failed); {best}; report: {out / 'summary.md'}")  # fmt: skip
    for f in executor.failures[:5]:
        warn(f"run failed on every attempt: {f.describe()}")
    if res.interrupted:
        interrupted(f"kept {res.complete} complete trials in {url}; rerun the same command to resume")


def _write_report(study: Any, space: list[Any], allocator: str, objective: str, out: Path, url: str, desc: str,
                  res: Any, executor: Any, user: dict[str, Any]) -> None:  # fmt: skip
    """best.toml, best_ladder.toml, trials.csv, tune.json, tune.png and summary.md."""
    import optuna

    from .. import tune as tn

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    with (out / "trials.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["trial", "state", "value", *(p.key for p in space)])
        for t in study.get_trials(deepcopy=False):
            w.writerow([t.number, t.state.name, "" if t.value is None else t.value,
                        *(t.params.get(p.key, "") for p in space)])  # fmt: skip
    imp = tn.importances(study)
    tn.plot_study(study, imp, out / "tune.png", objective)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# Tuning {allocator}: {objective} on {desc}", "",
             f"- study in {url} ({len(done)} complete trials; {res.resumed} from an earlier run, {res.ran} run now, "
             f"{res.failed} failed); date {when}",
             "- search space: " + ", ".join(f"`{p.key}` [{p.lo:g}, {p.hi:g}] {p.unit}" for p in space),
             *(f"- {n}" for n in batch_notes(executor))]  # fmt: skip
    if res.interrupted:
        lines.insert(2, f"- INTERRUPTED (Ctrl-C): {len(done)} complete trials kept; rerun to resume")
    if done:
        best = study.best_trial
        doc = tn.merge(user, tn.nested(best.params, allocator))
        head = f"# hyper-make tune: best of {len(done)} trials (trial {best.number}), {objective} = {best.value:.6g}\n"
        (out / "best.toml").write_text(head + tn.dump_toml(doc), encoding="utf-8")
        ladder = {k: v for k, v in doc.items() if k != "sim"}
        note = "".join(f"# {k} = {v!r}: on the simulator only ([sim.strategy]); backtest/run take --refresh-s\n"
                       for k, v in best.params.items() if k.startswith("sim."))  # fmt: skip
        (out / "best_ladder.toml").write_text(head + note + tn.dump_toml(ladder), encoding="utf-8")
        lines += ["", f"Best: trial {best.number}, {objective} = {best.value:.6g}; `best.toml` (simulate --config), "
                  "`best_ladder.toml` (backtest, run, ladder --config)", "", "| parameter | best | importance |",
                  "|---|---:|---:|"]  # fmt: skip
        lines += [f"| `{k}` | {v:.6g} | {imp.get(k, float('nan')):.3f} |" for k, v in best.params.items()]
        lines += ["", "![objective history and parameter importances](tune.png)"]
    (out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    doc_json = {"importances": imp, "best_params": study.best_params if done else None,
                "best_value": study.best_value if done else None,
                "trials": [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params}
                           for t in study.get_trials(deepcopy=False)]}  # fmt: skip
    (out / "tune.json").write_text(json.dumps(to_jsonable(doc_json), indent=1) + "\n", encoding="utf-8")


__all__ = ["tune"]
