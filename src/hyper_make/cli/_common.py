"""Shared CLI plumbing: the Typer app and its conventions, one-line errors with exit code 2, JSON output.

Conventions every command follows (tested in ``tests/test_cli_conventions.py``):

* bad input is one line ``error: ...`` on stderr naming the option or config key, exit code 2, no traceback;
  this includes the parser's own errors (unknown option, a value of the wrong type);
* options carry their unit in their name (``--refresh-s``, ``--latency-ms``, ``--max-depth-bps``); old
  spellings are hidden aliases (:data:`OPTION_ALIASES`) that still work and print a notice;
* Ctrl-C stops the command, keeps what it has written (a partial report says it is partial), prints one line
  ``interrupted: ...`` on stderr and exits 130 (:data:`EXIT_INTERRUPTED`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from .. import __version__
from ..errors import HyperMakeError, InvalidParameterError

if TYPE_CHECKING:  # the numerical stack loads with the command that needs it, not for ``--help``
    from ..config import AppConfig
    from ..strategy.quoter import QuoterConfig

try:  # Typer >= 0.20 ships its own copy of Click
    from typer._click.exceptions import ClickException, UsageError
    from typer._click.utils import make_default_short_help
except ImportError:  # pragma: no cover - older Typer on top of Click
    from click.exceptions import ClickException, UsageError  # type: ignore[no-redef]
    from click.utils import make_default_short_help  # type: ignore[no-redef]

EXIT_BAD_INPUT = 2
#: Exit code after Ctrl-C (128 + SIGINT), whatever the command.
EXIT_INTERRUPTED = 130

#: Help of every ``--config`` that takes the ladder config (``hyper_make.config``).
CONFIG_HELP = "TOML overriding the defaults: [market], [instrument], [ladder], [allocator.<name>], [meta]."

#: Old option spellings, per command: ``old -> new``. They are not in ``--help``; using one prints a notice.
OPTION_ALIASES: dict[str, dict[str, str]] = {
    "compare": {"--allocators": "--allocator"},
    "simulate": {"--allocators": "--allocator", "--horizon": "--horizon-s"},
    "tune": {"--horizon": "--horizon-s"},
    "backtest": {
        "--allocators": "--allocator",
        "--refresh": "--refresh-s",
        "--warmup": "--warmup-s",
        "--markout": "--markout-s",
    },
    "run": {"--max-position": "--max-position-coins"},
    "calibrate": {
        "--reference-lag": "--reference-lag-s",
        "--max-depth": "--max-depth-bps",
        "--adverse-horizon": "--adverse-horizon-s",
    },
}


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print ``error: message`` on one line of stderr and exit with ``code``."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def load_kernels(*, refresh_core: bool = True, sim_loop: bool = False, replay_loop: bool = False) -> float:
    """Load (or, on a first run, compile) the numba kernels before anything is timed; a one-line notice on stderr
    when that takes long. ``refresh_core = False`` for a one-shot ladder, ``sim_loop``/``replay_loop`` for the
    simulator's and the replay's compiled loops (:func:`hyper_make.warm_up`). Seconds."""
    from ..allocate import warm_up

    return warm_up(
        notice=lambda m: print(f"notice: {m}", file=sys.stderr, flush=True),
        refresh_core=refresh_core,
        sim_loop=sim_loop,
        replay_loop=replay_loop,
    )


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr (the command goes on)."""
    print(f"warning: {message}", file=sys.stderr)


def interrupted(message: str) -> NoReturn:
    """The Ctrl-C rule: one line ``interrupted: message`` on stderr, exit code 130."""
    print(f"interrupted: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_INTERRUPTED)


def _rewrite_aliases(args: list[str], commands: Sequence[str]) -> list[str]:
    """Replace the hidden old spellings of the invoked command's options by the new ones (``--a=1`` too)."""
    cmd = next((a for a in args if a in commands), None)
    aliases = OPTION_ALIASES.get(cmd or "", {})
    if not aliases:
        return args
    out: list[str] = []
    seen_cmd = False
    for i, a in enumerate(args):
        if a == "--":
            return out + args[i:]
        name, eq, value = a.partition("=")
        if seen_cmd and name in aliases:
            print(f"notice: '{name}' is now spelled '{aliases[name]}'", file=sys.stderr)
            a = aliases[name] + eq + value
        seen_cmd = seen_cmd or a == cmd
        out.append(a)
    return out


#: command -> (the module of ``hyper_make.cli`` that defines it, its help's first line), in ``--help`` order. A
#: command's module (and the numerical stack behind it) is imported only when that command runs or is inspected, so
#: ``hyper-make --help`` costs no NumPy, numba or SciPy import. ``tests/test_cli_conventions.py`` checks the lines.
COMMANDS: dict[str, tuple[str, str]] = {
    "compare": ("compare", "Run every registered allocator on the same snapshot and compare them side by side."),
    "convert": (
        "convert",
        "Parse recorded files once and write their events as an hftbacktest .npz (array 'data', event_dtype).",
    ),
    "calibrate": (
        "data",
        "Fit σ, fill intensity, adverse selection, volume at depth and impact; write a config TOML and plots.",
    ),
    "backtest": (
        "data",
        "Replay a recording with each allocator side by side and write a report folder like 'simulate'.",
    ),
    "exchange": (
        "exchange",
        "Serve a local Hyperliquid (POST /info, POST /exchange) on 127.0.0.1 with a simulated market.",
    ),
    "ladder": ("ladder", "Build and print the two-sided ladder for one refresh of the market."),
    "orders": (
        "orders",
        "Diff the current ladder against the resting orders and print the signed Hyperliquid actions (dry run).",
    ),
    "run": (
        "run",
        "Quote a ladder on one coin: rebuild every refresh, send the diff, guard the position; cancel all on exit.",
    ),
    "simulate": (
        "simulate",
        "Run allocators (or the A-S strategies) on paired simulated paths and write a report folder.",
    ),
    "tune": (
        "tune",
        "Tune the strategy's parameters with Optuna: each trial's values merged into --config, its objective on "
        "paired simulator paths (or a walk-forward replay with --train/--test), the trials through the same executor "
        "as simulate (local processes or --ray).",
    ),
}


class HyperMakeGroup(TyperGroup):
    """The root command: one-line parser errors, hidden option aliases, the Ctrl-C rule for every command, and each
    command's module imported on first use (:data:`COMMANDS`)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in self.commands if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = self.commands.get(cmd_name)
        if cmd is None and cmd_name in COMMANDS:
            importlib.import_module(f"{__package__}.{COMMANDS[cmd_name][0]}")  # registers its commands on ``app``
            for info in app.registered_commands:
                name = info.name or typer.main.get_command_name(info.callback.__name__)  # type: ignore[union-attr]
                if name not in self.commands:
                    self.add_command(
                        typer.main.get_command_from_info(
                            info,
                            pretty_exceptions_short=app.pretty_exceptions_short,
                            rich_markup_mode=app.rich_markup_mode,
                        ),
                        name,
                    )
            cmd = self.commands.get(cmd_name)
        return cmd

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        # the help lines of :data:`COMMANDS`: listing the commands must not import them
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            if name in COMMANDS and name not in self.commands:
                rows.append((name, make_default_short_help(COMMANDS[name][1], limit)))
            elif not self.commands[name].hidden:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = _rewrite_aliases(list(sys.argv[1:] if args is None else args), self.list_commands(None))
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except UsageError as exc:
            if exc.ctx is not None and not argv:  # ``hyper-make`` alone: the help, as no_args_is_help asks
                print(exc.ctx.get_help(), file=sys.stderr)
                sys.exit(EXIT_BAD_INPUT)
            cmd = exc.ctx.command_path if exc.ctx is not None else "hyper-make"
            print(f"error: {exc.format_message()} (see '{cmd} --help')", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except ClickException as exc:
            print(f"error: {exc.format_message()}", file=sys.stderr)
            sys.exit(exc.exit_code)
        except typer.Abort:
            print("error: aborted", file=sys.stderr)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # commands with outputs to keep handle Ctrl-C themselves; the others had written nothing
            name = ctx.invoked_subcommand or "the command"
            interrupted(f"'{name}' stopped by Ctrl-C; nothing was written")


app = typer.Typer(
    name="hyper-make",
    cls=HyperMakeGroup,
    help="Size the levels of a market maker's order ladder: legacy entropy heuristic vs exact impact-aware optimum.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    # plain help: bracketed text such as "[market]" is printed as written (Rich markup would swallow it), and
    # flags show no "<bool>" value they do not take
    rich_markup_mode=None,
)

#: Rich console on stderr for tables, progress and notices, so that ``--json`` keeps stdout clean.
err_console = Console(stderr=True)
#: Rich console on stdout for human-readable results.
out_console = Console()


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected errors (bad input, bad config, corrupt data, unwritable files) into one line and exit 2."""
    try:
        yield
    except HyperMakeError as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except FileNotFoundError as exc:
        fail(f"file not found: {exc.filename}")
    except IsADirectoryError as exc:
        fail(f"expected a file, got a directory: {exc.filename}")
    except NotADirectoryError as exc:
        fail(f"not a directory: {exc.filename}")
    except PermissionError as exc:
        fail(f"permission denied: {exc.filename}")


def load_app_config(path: Path | None, *, meta: dict[str, Any] | None = None) -> AppConfig:
    """:func:`~hyper_make.config.load_config`, with a warning on stderr when the file says it is partial."""
    from ..config import load_config

    cfg = load_config(path, meta=meta)
    if path is not None and cfg.meta.partial:
        warn(f"config {path} is {cfg.meta.describe()}; what is missing keeps the defaults")
    return cfg


def compact_table() -> Table:
    """A Rich table that fits 80 columns: no vertical rules, one space between columns (print it with
    :func:`print_table`, which puts the title and the legend on lines of their own)."""
    return Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, padding=(0, 1))


def print_table(table: Table, *, title: str | None = None, legend: str | None = None) -> None:
    """Print ``title`` (bold), ``table`` and ``legend`` (dim) on stdout; title and legend wrap at the terminal's
    width, not the table's. Bracketed text in them is printed as written."""
    if title:
        out_console.print(Text(title, style="bold"))
    out_console.print(table)
    if legend:
        out_console.print(Text(legend, style="dim"))


def render_metrics(
    title: str,
    metrics: dict[str, dict[str, float]],
    groups: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    *,
    name_header: str = "allocator",
) -> None:
    """Print per-name metrics as one compact table per group ``(legend, [(key, header), ...])``: each group few
    enough columns to fit 80 columns; a missing or non-finite value shows ``-``."""
    for i, (legend, cols) in enumerate(groups):
        t = compact_table()
        t.add_column(name_header, no_wrap=True)
        for _, header in cols:
            t.add_column(header, justify="right", no_wrap=True)
        for name, row in metrics.items():
            cells = (row.get(k) for k, _ in cols)
            t.add_row(name, *(f"{v:,.4g}" if isinstance(v, (int, float)) and math.isfinite(v) else "-" for v in cells))
        print_table(t, title=title if i == 0 else None, legend=legend)


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout."""
    from .._json import to_jsonable

    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2) + "\n")


# ---- option checks -----------------------------------------------------------------------------------
def _long_name(param: Any) -> str:
    return next((o for o in param.opts if o.startswith("--")), param.opts[0] if param.opts else param.name)


def checked(
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    unit: str = "",
    integer: bool = False,
) -> Callable[..., Any]:
    """An option callback refusing values outside ``[lo, hi]`` (open ends with ``lo_open``/``hi_open``) in one line.

    The message names the option as typed, the range and the unit, e.g. ``'--seed' must be in [0, inf); got -1``.
    """

    def callback(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        if value is None or ctx.resilient_parsing:
            return value
        from .._validate import check_int, check_real

        try:
            if integer:
                ilo, ihi = (None if x is None else int(x) for x in (lo, hi))
                check_int(_long_name(param), value, lo=ilo, hi=ihi, unit=unit)
            else:
                check_real(_long_name(param), value, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, unit=unit)
        except InvalidParameterError as exc:
            fail(str(exc))
        return value

    return callback


def seed_option(help_text: str) -> Any:
    """The ``--seed`` option every command shares: an integer ``>= 0`` (NumPy seeds cannot be negative)."""
    return typer.Option("--seed", help=f"{help_text} Integer >= 0.", callback=checked(lo=0, integer=True))


#: The strategy's options, the same in ``simulate``, ``backtest`` and ``run`` (one strategy on three venues); each
#: overrides the config's ``[quoter]`` (``None``: keep it).
RequotePriceBps = Annotated[
    float | None,
    typer.Option(
        "--requote-price-bps",
        help="Keep a resting order whose price is within this of its new price (bps; default [quoter.orders], 1).",
        callback=checked(lo=0.0, hi=1000.0, unit="bps"),
    ),
]
RequoteSizeFrac = Annotated[
    float | None,
    typer.Option(
        "--requote-size-frac",
        help="... and whose size is within this fraction of its new size (default [quoter.orders], 0.1).",
        callback=checked(lo=0.0, hi=1.0, hi_open=True),
    ),
]
EstimatorHalflifeS = Annotated[
    float | None,
    typer.Option(
        "--estimator-halflife-s",
        help="Half-life of the σ and traded-volume estimates (s; default [quoter.estimator], 300).",
        callback=checked(lo=0.0, lo_open=True, unit="s"),
    ),
]
EstimatorPriorWeightS = Annotated[
    float | None,
    typer.Option(
        "--estimator-prior-weight-s",
        help="The config's σ and volume count as this many seconds of data (default [quoter.estimator], 60).",
        callback=checked(lo=0.0, unit="s"),
    ),
]


def quoter_config(
    base: QuoterConfig,
    *,
    requote_price_bps: float | None = None,
    requote_size_frac: float | None = None,
    estimator_halflife_s: float | None = None,
    estimator_prior_weight_s: float | None = None,
    **guards: Any,
) -> QuoterConfig:
    """``base`` (the config's ``[quoter]``) with the command-line overrides that were given (``None``: kept)."""
    orders = dataclasses.replace(
        base.orders,
        **{k: v for k, v in (("requote_price_bps", requote_price_bps), ("requote_size_frac", requote_size_frac))
           if v is not None},
    )  # fmt: skip
    estimator = dataclasses.replace(
        base.estimator,
        **{k: v for k, v in (("halflife_s", estimator_halflife_s), ("prior_weight_s", estimator_prior_weight_s))
           if v is not None},
    )  # fmt: skip
    rest = {k: v for k, v in guards.items() if v is not None}
    if "reduce_only" in rest:
        orders = dataclasses.replace(orders, reduce_only=rest.pop("reduce_only"))
    return dataclasses.replace(base, orders=orders, estimator=estimator, **rest)


LearnerStateFile = Annotated[
    Path | None,
    typer.Option(
        "--learner-state",
        help="The 'learned' allocator's posterior (JSON): loaded before the run when the file exists, written after "
        "(atomically; a file of another coin or layout is refused and left as it is).",
    ),
]


#: ``--learner-state`` of the commands that only look at a posterior (``ladder``, ``compare``).
LearnerStateRead = Annotated[
    Path | None,
    typer.Option(
        "--learner-state",
        help="The 'learned' allocator's posterior (JSON, from simulate/backtest/run): the ladder it gives; read only.",
    ),
]


def read_learner(path: Path | None, cfg: AppConfig) -> Any:
    """The posterior at ``path`` for ``cfg``'s ``learned`` allocator (coin and layout checked), or ``None`` without
    a path; a path that is no file is a one-line error (a command that only reads it has nothing to write)."""
    if path is None:
        return None
    if not Path(path).is_file():
        raise InvalidParameterError(f"'--learner-state' {path}: file not found")
    from ..allocate import make_allocator

    return load_learner(path, make_allocator("learned", **cfg.allocator_options.get("learned", {})), cfg.spec.coin)


def load_learner(path: Path | None, allocator: Any, coin: str) -> Any:
    """The payout learner saved at ``path`` for ``allocator`` (its coin and layout checked against the allocator's,
    a one-line DataError naming the file and field otherwise), or ``None``: no file yet (the run's refresh core then
    starts from the prior of the models it runs on), or an allocator that does not learn."""
    if not getattr(allocator, "learns", False) or path is None or not Path(path).exists():
        return None
    from ..learn import load_state

    return load_state(path, expected=allocator.learner_config(coin))


def check_learner_state(path: Path | None, names: Sequence[str]) -> None:
    """Refuse ``--learner-state`` when no allocator of the run learns, and a path that cannot be written."""
    if path is None:
        return
    from ..allocate import ALLOCATORS

    if not any(getattr(ALLOCATORS[n], "learns", False) for n in names):
        learners = sorted(n for n, c in ALLOCATORS.items() if getattr(c, "learns", False))
        raise InvalidParameterError(f"'--learner-state' needs an allocator that learns ({', '.join(learners)}) "
                                    f"among '--allocator'; got {', '.join(names)}")  # fmt: skip
    p = Path(path)
    if p.exists() and not p.is_file():
        raise InvalidParameterError(f"'--learner-state' {p} is not a file")
    check_out_dir(p.parent if str(p.parent) else Path("."), option="--learner-state")


def save_learner(path: Path | None, learner: Any, *, quiet: bool = False) -> None:
    """Write ``learner`` to ``path`` (atomic) when both are given, and (unless ``quiet``) say so on stderr."""
    if path is None or learner is None:
        return
    learner.save(path)
    if quiet:
        return
    err_console.print(f"learner state: {path} ({learner.n_updates} updates, "
                      f"{float(learner.state['fill_count'].sum()):.0f} fills, decayed)")  # fmt: skip


def allocator_names(value: str | None, *, option: str = "--allocator", single: bool = False) -> list[str] | None:
    """Parse ``--allocator a,b``: registered names in the order given (``None`` when the option is absent).

    Raises
    ------
    InvalidParameterError
        Naming ``option`` and the registered allocators, for an unknown name, an empty list, or several names
        where the command builds one ladder (``single``).
    """
    if value is None:
        return None
    from ..allocate import ALLOCATORS

    names = [n.strip() for n in value.split(",") if n.strip()]
    bad = [n for n in names if n not in ALLOCATORS]
    if not names or bad:
        got = bad[0] if bad else value
        raise InvalidParameterError(f"'{option}' must name allocators among {sorted(ALLOCATORS)}; got {got!r}")
    if single and len(names) > 1:
        raise InvalidParameterError(f"'{option}' takes one allocator for this command; got {value!r}")
    return names


def check_out_dir(path: Path, option: str = "--out") -> Path:
    """Refuse, before any work runs, an output folder that cannot be written: an existing file, a path under a
    file, or a folder (or its nearest existing parent) where no file can be created. Nothing is created."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InvalidParameterError(f"'{option}' {path} is an existing file; give a folder (created if missing)")
    anchor = p
    while not anchor.exists():
        if anchor.parent == anchor:
            break
        anchor = anchor.parent
    if not anchor.is_dir():
        raise InvalidParameterError(f"'{option}' {path}: {anchor} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=anchor, prefix=".hyper-make-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InvalidParameterError(f"'{option}' {path}: cannot write in {anchor} ({exc.strerror})") from None
    return p


def _version(value: bool) -> None:
    if value:
        print(f"hyper-make {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Size the levels of a market maker's order ladder: legacy entropy heuristic vs exact impact-aware optimum."""
