"""Report folder for a simulation or backtest: metrics as JSON and CSV, PNG plots, a one-page markdown summary.

``write_report(out_dir, title=..., metrics=...)`` is shared by ``hyper-make simulate`` and the replay
backtester. Plots are drawn with matplotlib's object-oriented API on an Agg canvas (:func:`new_figure`), so no
display is needed and the caller's backend (``matplotlib.use``, pyplot's figures) is never touched.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._json import to_jsonable

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(figsize: tuple[float, float] = (7.0, 4.5), **subplots: Any) -> tuple[Figure, Any]:
    """A figure on its own Agg canvas and its axes (``Figure.subplots(**subplots)``); pyplot is not involved."""
    # imported here: matplotlib costs a few hundred ms, and most commands draw nothing
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(**subplots)


def save_figure(fig: Figure, path: Path, dpi: int = 110) -> Path:
    """Lay out and write ``fig`` as PNG to ``path``; returns it."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return path


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return "n/a"
        return f"{f:,.4g}" if abs(f) < 1e5 else f"{f:,.0f}"
    return str(v)


def write_report(
    out_dir: Path,
    *,
    title: str,
    metrics: dict[str, dict[str, float]],
    pnl_samples: dict[str, np.ndarray] | None = None,
    equity: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ladder_shapes: dict[str, np.ndarray] | None = None,
    decomposition: dict[str, dict[str, float]] | None = None,
    notes: list[str] | None = None,
    extra_json: dict[str, Any] | None = None,
) -> Path:
    """Write a report folder and return the path of its ``summary.md``.

    Parameters
    ----------
    out_dir : folder to create (parents too); existing files with the same names are overwritten.
    title : first heading of the summary.
    metrics : per strategy or allocator name, metric name -> value (PnL in USD, inventory in coins).
    pnl_samples : per name, one PnL per path (USD) -> ``pnl_distribution.png``.
    equity : per name, ``(time_s, pnl_usd)`` of one representative path -> ``equity_curves.png``.
    ladder_shapes : per name, array ``(n_times, n_levels)`` of resting size per level (coins), levels ordered
        bids deepest..touch then asks touch..deepest -> ``ladder_shapes.png``.
    decomposition : per name, part name -> mean USD -> ``pnl_decomposition.png``.
    notes : lines appended to the summary (assumptions, commands, caveats).
    extra_json : more JSON-ready content merged into ``metrics.json`` under ``"extra"``.

    Files
    -----
    ``metrics.json`` (``{"title", "metrics", "decomposition", "notes", "extra"}``), ``metrics.csv`` (one row per
    name, one column per metric), the PNGs for the inputs given, and ``summary.md``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"title": title, "metrics": metrics, "decomposition": decomposition or {}, "notes": notes or []}
    if extra_json:
        doc["extra"] = extra_json
    (out / "metrics.json").write_text(json.dumps(to_jsonable(doc), indent=2) + "\n", encoding="utf-8")

    columns: list[str] = []
    for row in metrics.values():
        columns += [k for k in row if k not in columns]
    with (out / "metrics.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["name", *columns])
        for name, row in metrics.items():
            w.writerow([name, *(to_jsonable(row.get(c, "")) for c in columns)])

    plots: list[str] = []
    if pnl_samples:
        fig, ax = new_figure((8, 4.5))
        data = [np.asarray(v, dtype=float) for v in pnl_samples.values()]
        import matplotlib

        # matplotlib renamed these keywords (labels -> tick_labels in 3.9, vert -> orientation in 3.10)
        new = tuple(int(x) for x in matplotlib.__version__.split(".")[:2]) >= (3, 10)
        kw: dict[str, Any] = (
            {"orientation": "horizontal", "tick_labels": list(pnl_samples)}
            if new
            else {"vert": False, "labels": list(pnl_samples)}
        )
        ax.boxplot(data, showmeans=True, **kw)
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set_xlabel("PnL per path (USD)")
        ax.set_title("PnL distribution per strategy")
        save_figure(fig, out / "pnl_distribution.png")
        plots.append("pnl_distribution.png")
    if equity:
        fig, ax = new_figure((8, 4.5))
        for name, (t, e) in equity.items():
            ax.plot(np.asarray(t, dtype=float), np.asarray(e, dtype=float), lw=1.0, label=name)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("PnL marked to mid (USD)")
        ax.set_title("Equity curve (first path)")
        ax.legend(fontsize=8)
        save_figure(fig, out / "equity_curves.png")
        plots.append("equity_curves.png")
    if ladder_shapes:
        n = len(ladder_shapes)
        fig, axes = new_figure((8, 1.8 * n + 0.6), nrows=n, ncols=1, squeeze=False, sharex=True)
        for ax, (name, shape) in zip(axes[:, 0], ladder_shapes.items(), strict=True):
            arr = np.asarray(shape, dtype=float)
            if arr.ndim == 2 and arr.size:
                im = ax.imshow(arr.T, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
                fig.colorbar(im, ax=ax, label="coins")
            ax.set_ylabel(name, fontsize=8)
        axes[-1, 0].set_xlabel("refresh (sampled)")
        fig.suptitle("Ladder shape over time: size per level (bids deep..touch | asks touch..deep)")
        save_figure(fig, out / "ladder_shapes.png")
        plots.append("ladder_shapes.png")
    if decomposition:
        parts: list[str] = []
        for row in decomposition.values():
            parts += [k for k in row if k not in parts and k != "total_usd"]
        names = list(decomposition)
        x = np.arange(len(names))
        width = 0.8 / max(len(parts), 1)
        fig, ax = new_figure((max(8, 1.2 * len(names)), 4.5))
        for j, p in enumerate(parts):
            ax.bar(x + j * width, [decomposition[n].get(p, 0.0) for n in names], width, label=p)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xticks(x + width * (len(parts) - 1) / 2, names, rotation=20, fontsize=8)
        ax.set_ylabel("mean USD per path")
        ax.set_title("PnL decomposition")
        ax.legend(fontsize=7)
        save_figure(fig, out / "pnl_decomposition.png")
        plots.append("pnl_decomposition.png")

    lines = [f"# {title}", "", "| name | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in metrics.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    if decomposition:
        parts_all: list[str] = []
        for row in decomposition.values():
            parts_all += [k for k in row if k not in parts_all]
        lines += ["", "## PnL decomposition (mean USD per path)", ""]
        lines += ["| name | " + " | ".join(parts_all) + " |", "|---" * (len(parts_all) + 1) + "|"]
        for name, row in decomposition.items():
            lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c, "")) for c in parts_all) + " |")
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


__all__ = ["new_figure", "save_figure", "write_report"]
