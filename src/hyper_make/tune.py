"""Parameter tuning: an Optuna study over the strategy's parameters, its trials run through the executor seam
(:mod:`hyper_make.batch`: local processes or a Ray cluster), stored in SQLite so that it resumes.

A trial is one set of parameter values (dotted config keys, :data:`PARAMS`) merged into the user's config. Its
objective is measured on

* the simulator: the allocator on ``paths`` paired market paths, the same seeds for every trial
  (``path_seed(seed, i)``), so two trials differ by their parameters only; ``mean_pnl`` = mean PnL over the paths
  (USD per path), ``sharpe`` = mean / standard deviation over the paths (a risk-adjusted score, per path, not
  annualised);
* or walk-forward replay: calibrate and train on ``train``, replay on ``test``
  (:func:`~hyper_make.backtest.walkforward.walk_forward`); ``mean_pnl`` = the test PnL (USD), ``sharpe`` = the test
  PnL over its block-bootstrap standard error.

Trials are asked in batches of ``batch`` (fixed, not the number of workers), every run of a batch goes to the
executor at once, and the batch is told to the study in trial order: the same seed gives the same study on local
processes and on a cluster. A trial a stop left unfinished (``RUNNING`` in the storage) is marked ``FAIL`` when
the study resumes, and the study runs until it has ``trials`` complete ones.

Optuna is imported inside the functions only (the ``cluster`` extra).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidParameterError

#: The objectives a study can maximise.
OBJECTIVES = ("mean_pnl", "sharpe")


@dataclass(frozen=True, slots=True)
class Param:
    """One tuned parameter: its dotted config key, range ``[lo, hi]`` (in the field's unit), integer or real, and
    whether it is searched on a log scale."""

    key: str
    lo: float
    hi: float
    integer: bool = False
    log: bool = False
    #: only for an allocator that learns (``[allocator.learned]``)
    learner: bool = False
    #: only on the simulator (the replay's refresh is ``--refresh-s``)
    sim_only: bool = False
    unit: str = ""


#: The search space: dotted keys of the config file (``[ladder]``, ``[quoter.orders]``, ``[allocator.<name>]``,
#: ``[sim.strategy]``), their ranges and units.
PARAMS: dict[str, Param] = {
    p.key: p
    for p in (
        Param("ladder.risk_aversion", 0.002, 0.2, log=True, unit="1/USD"),
        Param("ladder.grid.n_levels", 3, 20, integer=True, unit="levels"),
        Param("ladder.grid.max_depth_bps", 20.0, 400.0, log=True, unit="bps"),
        Param("sim.strategy.refresh_s", 0.25, 5.0, log=True, sim_only=True, unit="s"),
        Param("quoter.orders.requote_price_bps", 0.2, 5.0, log=True, unit="bps"),
        Param("quoter.orders.requote_size_frac", 0.02, 0.5, log=True, unit="fraction"),
        Param("allocator.learned.prior_fills", 1.0, 50.0, log=True, learner=True, unit="fills"),
        Param("allocator.learned.half_life_s", 300.0, 36_000.0, log=True, learner=True, unit="s"),
    )
}


def search_space(names: Sequence[str] | None, *, learns: bool, sim: bool) -> list[Param]:
    """The parameters to tune: ``names`` (dotted keys of :data:`PARAMS`) or every one that applies (the learner's
    only for an allocator that learns, ``sim.*`` only on the simulator)."""
    if names:
        bad = [n for n in names if n not in PARAMS]
        if bad:
            raise InvalidParameterError(f"'--params': unknown parameter {bad[0]!r}; choose among {list(PARAMS)}")
        out = [PARAMS[n] for n in names]
        for p in out:
            if p.learner and not learns:
                raise InvalidParameterError(f"'--params': {p.key!r} is for an allocator that learns ('learned')")
            if p.sim_only and not sim:
                raise InvalidParameterError(f"'--params': {p.key!r} is for the simulator; a replay's is --refresh-s")
        return out
    return [p for p in PARAMS.values() if (learns or not p.learner) and (sim or not p.sim_only)]


def nested(values: Mapping[str, Any], allocator: str) -> dict[str, Any]:
    """Dotted keys -> a nested TOML document (``allocator.learned.x`` goes to ``allocator.<allocator>.x``)."""
    out: dict[str, Any] = {}
    for key, v in values.items():
        parts = key.split(".")
        if parts[0] == "allocator":
            parts[1] = allocator
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    return out


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in, table by table (``over`` wins)."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def dump_toml(doc: Mapping[str, Any]) -> str:
    """A TOML document of tables, numbers, strings, booleans and arrays (what config files hold)."""
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            if not math.isfinite(v):
                raise InvalidParameterError(f"cannot write {v!r} to TOML")
            return repr(v)
        if isinstance(v, str):
            # JSON's escapes are TOML's; DEL is the one control character JSON leaves as it is
            return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise InvalidParameterError(f"cannot write a {type(v).__name__} to TOML")

    def table(name: str, t: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in t.items() if not isinstance(v, Mapping)}
        if name and (scalars or not t):
            lines.extend(["", f"[{name}]"])
        lines.extend(f"{k} = {value(v)}" for k, v in scalars.items())
        for k, v in t.items():
            if isinstance(v, Mapping):
                table(f"{name}.{k}" if name else k, v)

    table("", doc)
    return "\n".join(lines).lstrip("\n") + "\n"


# ---- trials on the simulator ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SimTrialRun:
    """One work item: trial ``trial``'s config, the allocator with its options, on path ``path`` of seed ``seed``."""

    trial: int
    path: int
    seed: int
    config: Any  # SimConfig
    allocator: str
    options: dict[str, Any]

    def describe(self) -> str:
        """``trial n, allocator A, path i, seed S``."""
        return f"trial {self.trial}, allocator {self.allocator}, path {self.path}, seed {self.seed}"


def run_sim_trial(item: SimTrialRun) -> float:
    """PnL of one path (USD), the function the executor maps."""
    from .sim.strategy import run_path

    return float(run_path(item.config, item.allocator, item.seed, allocator_options=item.options).pnl_usd)


# ---- trials on walk-forward replay ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReplayTrialRun:
    """One work item: trial ``trial``'s config, walk-forward of the allocator (train on ``train``, judge on
    ``test``); the files are read from a shared path or shipped (:class:`~hyper_make.batch.items.DataItem`)."""

    trial: int
    app: Any  # AppConfig
    config: Any  # ReplayConfig
    allocator: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    block_s: float

    def describe(self) -> str:
        """``trial n, allocator A, walk-forward train ... test ..., seed S``."""
        return (f"trial {self.trial}, allocator {self.allocator}, walk-forward train {list(self.train)} test "
                f"{list(self.test)}, seed {self.config.seed}")  # fmt: skip

    def data_paths(self) -> tuple[str, ...]:
        return (*self.train, *self.test)

    def with_data_paths(self, mapping: Mapping[str, str]) -> ReplayTrialRun:
        return dataclasses.replace(self, train=tuple(mapping.get(p, p) for p in self.train),
                                   test=tuple(mapping.get(p, p) for p in self.test))  # fmt: skip


def run_replay_trial(item: ReplayTrialRun) -> tuple[float, float]:
    """``(test PnL in USD, its block-bootstrap standard error in USD)`` of one walk-forward."""
    from .backtest.walkforward import walk_forward

    src = lambda f: list(f) if len(f) > 1 else f[0]  # noqa: E731 - one file or several, as walk_forward takes
    res = walk_forward(src(item.train), src(item.test), {item.allocator: item.app.make_allocator(item.allocator)},
                       app=item.app, config=item.config, block_s=item.block_s, n_boot=500)  # fmt: skip
    ci = res.intervals[item.allocator]
    return float(res.results[item.allocator].metrics()["pnl_usd"]), float(ci["se"])


def score(objective: str, values: Sequence[float]) -> float:
    """The objective of one simulator trial from its paths' PnL (USD): their mean, or mean / std (``sharpe``; 0
    when every path made the same)."""
    x = np.asarray(values, dtype=float)
    if objective == "mean_pnl":
        return float(x.mean())
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return float(x.mean() / sd) if sd > 0 else 0.0


# ---- the study -----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class TuneResult:
    """What :func:`run_study` did: trials complete in the study, run now, resumed (complete before), failed now,
    and whether Ctrl-C stopped it."""

    complete: int
    ran: int
    resumed: int
    failed: int
    interrupted: bool


def open_study(storage: str, name: str, seed: int) -> Any:
    """The study ``name`` in ``storage`` (created if new; maximised; TPE sampler seeded with ``seed``); a trial
    left ``RUNNING`` by a stop is marked ``FAIL``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True,
                                    sampler=optuna.samplers.TPESampler(seed=seed))  # fmt: skip
    except (ValueError, ImportError, ModuleNotFoundError) as exc:  # a bad URL, a missing driver
        raise InvalidParameterError(f"'--storage {storage}': {str(exc).splitlines()[0]}") from None
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    return study


def run_study(
    study: Any,
    params: Sequence[Param],
    make_items: Callable[[int, dict[str, Any]], list[Any]],
    task: Callable[[Any], Any],
    reduce: Callable[[list[Any]], float],
    *,
    trials: int,
    batch: int,
    executor: Any,
    on_done: Callable[[], None] | None = None,
) -> TuneResult:
    """Run trials until the study has ``trials`` complete ones, ``batch`` at a time through ``executor``.

    ``make_items(trial_number, values)`` gives a trial's work items, ``task`` runs one, ``reduce`` turns a trial's
    results (in item order) into its objective. A trial whose runs failed on every attempt is told ``FAIL``.
    """
    import optuna

    dists: dict[str, Any] = {
        p.key: optuna.distributions.IntDistribution(int(p.lo), int(p.hi), log=p.log) if p.integer
        else optuna.distributions.FloatDistribution(p.lo, p.hi, log=p.log)
        for p in params
    }  # fmt: skip
    state = optuna.trial.TrialState
    resumed = len(study.get_trials(deepcopy=False, states=(state.COMPLETE,)))
    ran = failed = 0
    stopped = False
    while not stopped:
        complete = len(study.get_trials(deepcopy=False, states=(state.COMPLETE,)))
        if complete >= trials:
            break
        asked = [study.ask(dists) for _ in range(min(batch, trials - complete))]
        items = {t.number: make_items(t.number, dict(t.params)) for t in asked}
        index = {id(it): (n, i) for n, its in items.items() for i, it in enumerate(its)}
        got: dict[int, dict[int, Any]] = {n: {} for n in items}
        gen = executor.imap_unordered(task, [it for its in items.values() for it in its])
        try:
            try:
                for it, r in gen:
                    n, i = index.get(id(it), (None, None))
                    if n is None:  # a copy came back (another process): find it by value
                        n, i = next((m, j) for m, its in items.items() for j, x in enumerate(its) if x == it)
                    got[n][i] = r
                    if len(got[n]) == len(items[n]) and on_done:
                        on_done()
            finally:
                gen.close()
        except KeyboardInterrupt:
            stopped = True
        for t in asked:  # in trial order: the study does not depend on the order the runs finished in
            res = got[t.number]
            if len(res) == len(items[t.number]):
                study.tell(t, reduce([res[i] for i in range(len(res))]))
                ran += 1
            elif not stopped:
                study.tell(t, state=state.FAIL)
                failed += 1
            # after a stop the unfinished trials stay RUNNING: the next open_study marks them FAIL
    complete = len(study.get_trials(deepcopy=False, states=(state.COMPLETE,)))
    return TuneResult(complete=complete, ran=ran, resumed=resumed, failed=failed, interrupted=stopped)


def importances(study: Any) -> dict[str, float]:
    """Optuna's parameter importances (PED-ANOVA: no scikit-learn needed), largest first; empty with fewer than
    two complete trials or when they cannot be computed."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(done) < 2:
        return {}
    import warnings

    try:
        ev = optuna.importance.PedAnovaImportanceEvaluator()
        with warnings.catch_warnings():  # "importances will be equal" on a handful of trials: the plot shows it
            warnings.simplefilter("ignore", UserWarning)
            return dict(optuna.importance.get_param_importances(study, evaluator=ev))
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}


def plot_study(study: Any, imp: Mapping[str, float], path: Any, objective: str) -> Any:
    """``tune.png``: the objective of every complete trial and the best so far (left), the parameters'
    importances (right)."""
    import optuna

    from .report import new_figure, save_figure

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    fig, (a, b) = new_figure((10.0, 3.8), ncols=2)
    x = [t.number for t in done]
    y = [t.value for t in done]
    a.plot(x, y, "o", ms=4, label="trial")
    if y:
        a.plot(x, np.maximum.accumulate(y), "-", color="C3", label="best so far")
    a.set_xlabel("trial")
    a.set_ylabel("objective: " + ("mean PnL (USD per path)" if objective == "mean_pnl" else "mean / std"))
    a.legend(fontsize=8)
    a.set_title("objective history", fontsize=9)
    if imp:
        names = list(imp)[::-1]
        b.barh(names, [imp[n] for n in names], color="C0")
        b.set_xlabel("importance (PED-ANOVA, sums to 1)")
        b.tick_params(axis="y", labelsize=7)
    else:
        b.text(0.5, 0.5, "importances need more trials", ha="center", va="center", transform=b.transAxes)
        b.set_axis_off()
    b.set_title("parameter importances", fontsize=9)
    return save_figure(fig, path)


__all__ = ["OBJECTIVES", "PARAMS", "Param", "ReplayTrialRun", "SimTrialRun", "TuneResult", "dump_toml",
           "importances", "merge", "nested", "open_study", "plot_study", "run_replay_trial", "run_sim_trial",
           "run_study", "score", "search_space"]  # fmt: skip
