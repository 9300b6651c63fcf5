"""``hyper-make calibrate FILE`` and ``hyper-make backtest FILE``: model fitting and replay on recorded data.

Both read any supported recording (Binance futures/spot, Hyperliquid, hftbacktest ``.npz``). A bad line stops
the read (``--on-error stop``, the default): what was read before it is still used and written, then the
error is printed on one line and the exit code is 2. ``--on-error skip`` counts bad lines and goes on.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from ..allocate import ALLOCATORS
from ..backtest import ReplayConfig, run_backtest
from ..calibrate import calibrate as fit_calibration
from ..calibrate import plot_calibration
from ..config import load_config
from ..data.readers import load_events
from ..errors import DataError, InvalidParameterError
from ..report import write_report
from ._common import app, fail, out_console, print_json, user_errors

_ON_ERROR_HELP = "On a bad line: 'stop' (use what was read, then exit 2) or 'skip' (count it and go on)."


def _check_on_error(on_error: str) -> None:
    if on_error not in ("stop", "skip"):
        raise InvalidParameterError(f"'--on-error' must be one of ['skip', 'stop']; got {on_error!r}")


#: ReplayConfig field -> the backtest option that sets it (errors name the option the user typed).
_FLAGS = {
    "refresh_s": "--refresh", "latency_ms": "--latency-ms", "latency": "--latency", "queue": "--queue",
    "queue_n": "--queue-n", "markout_s": "--markout", "warmup_s": "--warmup", "seed": "--seed",
}  # fmt: skip


def _flag_names(message: str) -> str:
    for field, flag in _FLAGS.items():
        message = message.replace(f"'{field}'", f"'{flag}'")
    return message


def _machine() -> str:
    return f"{platform.machine()} {platform.processor() or platform.system()}, {os.cpu_count()} CPUs"


@app.command("calibrate")
def calibrate_cmd(
    file: Annotated[Path, typer.Argument(help="Recorded feed (Binance futures/spot, Hyperliquid, .npz).")],
    out: Annotated[Path, typer.Option(help="Folder for calibration.toml, intensity.png, markouts.png.")] = Path(
        "calibration"
    ),
    reference_lag: Annotated[
        float, typer.Option(help="A quote rests at a depth from the mid this many seconds earlier (s).")
    ] = 1.0,
    max_depth: Annotated[float, typer.Option(help="Deepest depth of the fitted curves (bps).")] = 10.0,
    adverse_horizon: Annotated[
        float, typer.Option(help="Markout horizon written as the adverse table (s; 1, 5, 30 or 60).")
    ] = 30.0,
    on_error: Annotated[str, typer.Option("--on-error", help=_ON_ERROR_HELP)] = "stop",
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout instead of tables.")] = False,
) -> None:
    """Fit σ, fill intensity, adverse selection, volume at depth and impact; write a config TOML and plots."""
    with user_errors():
        _check_on_error(on_error)
        events, report = load_events(file, on_error=on_error, keep_partial=True)  # type: ignore[arg-type]
        if events.size == 0:
            raise DataError(report.error or f"{file}: no event could be read")
        result = fit_calibration(events, reference_lag_s=reference_lag, max_depth_bps=max_depth)
        toml_path = result.write_toml(out / "calibration.toml", adverse_horizon_s=adverse_horizon)
        plots = plot_calibration(result, out)
    doc = result.to_dict() | {
        "source": str(file),
        "read_report": report.to_dict(),
        "toml": str(toml_path),
        "plots": [str(p) for p in plots],
    }
    if json_out:
        print_json(doc)
    else:
        t = Table(title=f"calibration of {file.name} ({result.duration_s:.0f} s, {report.events:,} events)")
        for c in ("parameter", "value", "stderr", "note"):
            t.add_column(c, justify="right" if c != "parameter" else "left")
        for h, e in result.sigma_frac.items():
            t.add_row(f"σ over {h:g} s (bps)", f"{e.value * 1e4:.4g}", f"{e.stderr * 1e4:.2g}", f"n={e.n}")
        for side, f in result.fill.items():
            lo, hi = f.depth_range_bps
            note = f"R²={f.r2:.3f}, fit on {lo:g}-{hi:g} bps"
            t.add_row(f"{side} A (1/s)", f"{f.intensity_per_s.value:.4g}", f"{f.intensity_per_s.stderr:.2g}", note)
            t.add_row(f"{side} k (1/bps)", f"{f.kappa_per_bps.value:.4g}", f"{f.kappa_per_bps.stderr:.2g}", "")
        c = result.impact_coef
        t.add_row(
            "impact c", f"{c.value:.4g}", f"{c.stderr:.2g}", f"{c.n} market orders, {result.impact_horizon_s:g} s"
        )
        t.add_row("daily volume (coins)", f"{result.daily_volume_coins:,.0f}", "", "extrapolated from the file")
        out_console.print(t)
        out_console.print(f"config: {toml_path}")
        out_console.print(f"plots: {', '.join(str(p) for p in plots)}")
    if report.error:
        fail(report.error)


@app.command("backtest")
def backtest_cmd(
    file: Annotated[Path, typer.Argument(help="Recorded feed (Binance futures/spot, Hyperliquid, .npz).")],
    allocators: Annotated[
        str | None, typer.Option(help="Comma-separated allocators (default: every registered one).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML: [market] account fields, [ladder], [allocator.*].")
    ] = None,
    refresh: Annotated[float, typer.Option(help="Ladder refresh interval (s).")] = 1.0,
    latency_ms: Annotated[float, typer.Option(help="Order entry / cancel latency (ms).")] = 50.0,
    latency: Annotated[str, typer.Option(help="'constant' or 'feed' (adds the feed's own delay).")] = "constant",
    queue: Annotated[str, typer.Option(help="Queue model: risk_averse, power or log.")] = "risk_averse",
    queue_n: Annotated[float, typer.Option(help="Exponent n of the power queue model.")] = 2.0,
    markout: Annotated[float, typer.Option(help="Markout horizon of the adverse-selection split (s).")] = 5.0,
    warmup: Annotated[float, typer.Option(help="No quotes during the first seconds, while σ is estimated (s).")] = 10.0,
    seed: Annotated[int, typer.Option(help="Seed of the allocators' random draws.")] = 0,
    out: Annotated[Path, typer.Option(help="Report folder (metrics.json/.csv, PNG plots, summary.md).")] = Path(
        "backtest-report"
    ),
    on_error: Annotated[str, typer.Option("--on-error", help=_ON_ERROR_HELP)] = "stop",
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout instead of tables.")] = False,
) -> None:
    """Replay a recording with each allocator side by side and write a report folder like ``simulate``."""
    with user_errors():
        _check_on_error(on_error)
        names = [a.strip() for a in allocators.split(",") if a.strip()] if allocators else list(ALLOCATORS)
        for n in names:
            if n not in ALLOCATORS:
                raise InvalidParameterError(f"unknown allocator {n!r}; choose one of {sorted(ALLOCATORS)}")
        app_cfg = load_config(config)
        try:
            rcfg = ReplayConfig(
                refresh_s=refresh, latency_ms=latency_ms, latency=latency, queue=queue, queue_n=queue_n,  # type: ignore[arg-type]
                markout_s=markout, warmup_s=warmup, seed=seed,
            )  # fmt: skip
        except InvalidParameterError as exc:
            raise InvalidParameterError(_flag_names(str(exc))) from None
        allocs = {n: app_cfg.make_allocator(n) for n in names}
        results, report = run_backtest(file, allocs, app=app_cfg, config=rcfg, on_error=on_error)  # type: ignore[arg-type]
    metrics = {n: r.metrics() for n, r in results.items()}
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = [
        f"command: hyper-make backtest {file} --allocators {','.join(names)} --refresh {refresh:g} "
        f"--latency-ms {latency_ms:g} --latency {latency} --queue {queue} --queue-n {queue_n:g} --warmup {warmup:g} "
        f"--markout {markout:g} --seed {seed}",
        f"machine: {_machine()}; date: {when}",
        "replayed market: our orders do not move it; model_impact_usd is the impact model's expected cost of the "
        "ladders shown (forward + round-trip), scaled from the ladder horizon to each refresh interval",
        f"PnL split: spread capture vs the mid at the fill, adverse selection = mid move over {markout:g} s, fees "
        "(maker), inventory = the rest of cash + q_T·mid_T",
    ]
    if report is not None:
        notes.append(f"data: {report.events:,} events, messages {dict(report.message_counts)}")
        if report.skipped:
            notes.append(f"skipped: {dict(report.skipped)}")
        if report.error:
            notes.insert(0, f"STOPPED EARLY at a bad line, results cover the data before it: {report.error}")
    # the replayed PnL's parts, and beside them (not part of it) the impact model's cost of the ladders shown
    decomposition = {
        n: {k.removesuffix("_usd"): r.pnl[k] for k in
            ("spread_capture_usd", "adverse_selection_usd", "fees_usd", "inventory_usd")}
        | {"model_impact_not_in_pnl": r.pnl["model_impact_usd"]}
        for n, r in results.items()
    }  # fmt: skip
    summary = write_report(
        out,
        title=f"Replay backtest: {file.name}",
        metrics=metrics,
        equity={n: r.equity for n, r in results.items()},
        ladder_shapes={n: r.shapes for n, r in results.items() if r.shapes.size},
        decomposition=decomposition,
        notes=notes,
        extra_json={"read_report": report.to_dict() if report else None},
    )
    for n, r in results.items():
        f = r.fills
        np.savetxt(
            out / f"fills_{n}.csv",
            np.column_stack([f.ts_ns, f.side, f.price_usd, f.qty_coins, f.level, f.mid_usd]),
            delimiter=",", header="ts_ns,side,price_usd,qty_coins,level,mid_usd", comments="", fmt="%.10g",
        )  # fmt: skip
    if json_out:
        print_json({"file": str(file), "allocators": metrics, "report": str(summary),
                    "read_report": report.to_dict() if report else None})  # fmt: skip
    else:
        t = Table(title=f"replay of {file.name}: refresh {refresh:g} s, {queue} queue, latency {latency_ms:g} ms")
        cols = [
            ("pnl_usd", "PnL"), ("spread_capture_usd", "spread"), ("adverse_selection_usd", "adverse"),
            ("fees_usd", "fees"), ("inventory_usd", "inventory"), ("model_impact_usd", "model impact"),
            ("fills", "fills"), ("markout_5s_bps", "mk 5s bps"), ("markout_60s_bps", "mk 60s bps"),
            ("mean_effective_levels", "eff. levels"),
        ]  # fmt: skip
        t.add_column("allocator")
        for _, label in cols:
            t.add_column(label, justify="right")
        for n, m in metrics.items():
            t.add_row(n, *(f"{m[k]:,.4g}" if np.isfinite(m[k]) else "-" for k, _ in cols))
        out_console.print(t)
        out_console.print(f"report: {summary}")
    if report is not None and report.error:
        fail(report.error)


__all__ = ["backtest_cmd", "calibrate_cmd"]
