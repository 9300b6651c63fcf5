"""CLI conventions every command follows: help, version, completion, one-line errors, option spellings, Ctrl-C,
tables readable at 80 columns."""

from __future__ import annotations

import importlib.metadata
import json
import types

import pytest
from typer.testing import CliRunner

from hyper_make.cli import _common, app
from hyper_make.cli import exchange as _exchange_cli
from hyper_make.strategy.quoter import QuoterConfig

runner = CliRunner()

COMMANDS = ["ladder", "compare", "simulate", "calibrate", "backtest", "convert", "orders", "exchange", "run"]

#: Bracketed section names each command's help must show as written (Rich markup used to swallow them).
HELP_SECTIONS = {
    "ladder": ["[market]", "[instrument]", "[ladder]", "[allocator.<name>]"],
    "compare": ["[market]", "[ladder]", "[allocator.<name>]"],
    "orders": ["[market]", "[instrument]"],
    "simulate": ["[sim.market]", "[sim.strategy]", "[ladder]", "[allocator.<name>]", "[sim.as]"],
    "backtest": ["[market]", "[ladder]", "[allocator.<name>]"],
    "calibrate": ["[meta]"],
    "convert": [],
    "exchange": [],
    "run": [],
}


def one_line_error(res, *needles: str) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [line for line in res.stderr.splitlines() if not line.startswith("notice: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_shows_bracketed_sections_and_no_value_for_flags(command):
    res = runner.invoke(app, [command, "--help"])
    assert res.exit_code == 0 and "Traceback" not in res.output
    text = res.stdout
    for section in HELP_SECTIONS[command]:
        assert section in text, section
    assert "<bool>" not in text  # a flag takes no value
    assert "``" not in text  # no reStructuredText in help
    assert ", , " not in text and "TOML: ," not in text


def test_root_help_lists_every_command_the_version_and_completion():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for command in COMMANDS:
        assert f"  {command} " in res.stdout
    for option in ("--version", "--install-completion", "--show-completion"):
        assert option in res.stdout


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.stdout.strip() == f"hyper-make {importlib.metadata.version('hyper_make')}"


def test_shell_completion_script(monkeypatch: pytest.MonkeyPatch) -> None:
    # typer finds the shell from the parent processes, which a detached run (no shell above it) does not have
    import shellingham

    monkeypatch.setattr(shellingham, "detect_shell", lambda *a, **k: ("bash", "/bin/bash"))
    res = runner.invoke(app, ["--show-completion", "bash"])
    assert res.exit_code == 0 and "_HYPER_MAKE_COMPLETE" in res.stdout, (res.exception, res.output)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ladder", "--no-such-option"], "No such option: --no-such-option (see 'hyper-make ladder --help')"),
        (["ladder", "--seed", "abc"], "'--seed'"),
        (["nope"], "No such command 'nope'"),
    ],
)
def test_parser_errors_are_one_line(args, needle):
    one_line_error(runner.invoke(app, args), needle)


#: (command and the arguments it needs, option, a bad value): every seed, count and duration option.
NEGATIVES = [
    (["ladder"], "--seed", "-1"),
    (["compare"], "--seed", "-1"),
    (["compare"], "--repeats", "-1"),
    (["compare"], "--level-cap-frac", "-0.5"),
    (["simulate"], "--seed", "-1"),
    (["simulate"], "--paths", "-1"),
    (["simulate"], "--workers", "-1"),
    (["simulate"], "--horizon-s", "-1"),
    (["simulate", "--preset", "avellaneda-stoikov-2008"], "--horizon-s", "-1"),
    (["calibrate", "x.gz"], "--reference-lag-s", "-1"),
    (["calibrate", "x.gz"], "--max-depth-bps", "-1"),
    (["calibrate", "x.gz"], "--adverse-horizon-s", "-1"),
    (["backtest", "x.gz"], "--seed", "-1"),
    (["backtest", "x.gz"], "--refresh-s", "-1"),
    (["backtest", "x.gz"], "--warmup-s", "-1"),
    (["backtest", "x.gz"], "--markout-s", "-1"),
    (["backtest", "x.gz"], "--latency-ms", "-1"),
    (["orders", "--dry-run", "--ephemeral-key"], "--seed", "-1"),
    (["orders", "--dry-run", "--ephemeral-key"], "--schedule-cancel-s", "-1"),
    (["exchange"], "--seed", "-1"),
    (["exchange"], "--duration-s", "-1"),
    (["exchange"], "--tick-s", "-1"),
    (["run", "--base-url", "http://127.0.0.1:9", "--ephemeral-key"], "--seed", "-1"),
    (["run", "--base-url", "http://127.0.0.1:9", "--ephemeral-key"], "--refresh-s", "-1"),
    (["run", "--base-url", "http://127.0.0.1:9", "--ephemeral-key"], "--duration-s", "-1"),
    (["run", "--base-url", "http://127.0.0.1:9", "--ephemeral-key"], "--dead-man-s", "-1"),
]


@pytest.mark.parametrize(("base", "option", "value"), NEGATIVES, ids=lambda x: x if isinstance(x, str) else None)
def test_every_seed_count_and_duration_refuses_negatives_in_one_line(base, option, value):
    res = runner.invoke(app, [*base, option, value])
    line = one_line_error(res)
    field = option.lstrip("-").replace("-", "_")
    assert option in line or field in line, line
    if option == "--seed":  # the one shared option, the same message everywhere
        assert line == "error: '--seed' must be in [0, inf); got -1"


def test_old_spellings_are_hidden_aliases():
    res = runner.invoke(app, ["backtest", "--help"])
    for old in ("--refresh ", "--warmup ", "--markout ", "--allocators"):
        assert old not in res.stdout
    res = runner.invoke(app, ["compare", "--allocators", "flat", "--repeats", "1", "--json"])
    assert res.exit_code == 0, res.output
    assert [r["allocator"] for r in json.loads(res.stdout)["rows"]] == ["flat", "flat"]
    assert "notice: '--allocators' is now spelled '--allocator'" in res.stderr


def test_an_unknown_allocator_names_the_option():
    for args in (["ladder"], ["compare"], ["simulate"], ["backtest", "x.gz"], ["orders", "--dry-run"]):
        line = one_line_error(runner.invoke(app, [*args, "--allocator", "nope"]), "'--allocator' must name allocators")
        assert "[allocator.nope]" not in line


def test_ctrl_c_anywhere_is_one_line_and_exit_130(monkeypatch):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("hyper_make.cli.ladder.build_ladder", ctrl_c)
    res = runner.invoke(app, ["ladder"])
    assert res.exit_code == 130 and res.stdout == ""
    assert res.stderr == "interrupted: 'ladder' stopped by Ctrl-C; nothing was written\n"


def test_ctrl_c_stops_the_local_exchange_with_exit_130(monkeypatch):
    closed = []

    class Wait:
        def wait(self, timeout=None):
            raise KeyboardInterrupt

    real = _exchange_cli.LocalServer

    def server(*args, **kwargs):
        s = real(*args, **kwargs)
        monkeypatch.setattr(s, "close", lambda c=s.close: (closed.append(True), c()))
        return s

    monkeypatch.setattr(_exchange_cli, "threading", types.SimpleNamespace(Event=Wait))
    monkeypatch.setattr(_exchange_cli, "LocalServer", server)
    res = runner.invoke(app, ["exchange", "--port", "0"])
    assert res.exit_code == 130 and closed == [True]
    assert "interrupted: local exchange stopped by Ctrl-C" in res.stderr


def test_an_unknown_allocator_names_the_option_in_run():
    args = ["run", "--base-url", "http://127.0.0.1:9", "--ephemeral-key", "--allocator", "nope"]
    line = one_line_error(runner.invoke(app, args), "'--allocator' must name allocators")
    assert "nope" in line


@pytest.fixture
def columns_80(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(_common.out_console, "_width", None)  # read COLUMNS now, not at import


def assert_readable(text: str, names: list[str]) -> None:
    assert "…" not in text, text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80, text
    for n in names:
        assert f" {n} " in f" {text} ".replace("\n", " "), n


def test_compare_table_is_readable_at_80_columns(columns_80):
    res = runner.invoke(app, ["compare", "--repeats", "1"])
    assert res.exit_code == 0, res.output
    assert_readable(res.stdout, ["impact", "impact-dirichlet", "impact-posterior", "E[PnL]", "binding"])


def test_simulate_table_is_readable_at_80_columns(columns_80, tmp_path):
    names = ["impact", "impact-dirichlet", "impact-posterior"]
    args = ["simulate", "--paths", "1", "--horizon-s", "3", "--workers", "1", "-a", ",".join(names)]
    res = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert_readable(res.stdout, [*names, "mean PnL", "Sharpe", "std q_T"])


def test_run_meta_file_that_is_not_json_is_one_line(tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_bytes(b"\x94\x00binary")
    res = runner.invoke(app, ["run", "--base-url", "http://127.0.0.1:9", "--ephemeral-key", "--meta", str(meta)])
    one_line_error(res, f"meta file {meta}: not JSON (binary content")


STRATEGY_OPTIONS = [
    "--requote-price-bps",
    "--requote-size-frac",
    "--estimator-halflife-s",
    "--estimator-prior-weight-s",
]


def test_the_three_venues_take_the_same_strategy_options():
    """One strategy on three venues: simulate, backtest and run expose the same requote and estimator options, with
    the same help, and each one reaches the strategy's config."""
    import typer.main

    group = typer.main.get_command(app)
    helps = {}
    for name in ("simulate", "backtest", "run"):
        params = {o: p for p in group.get_command(None, name).params for o in p.opts}
        for opt in STRATEGY_OPTIONS:
            assert opt in params, (name, opt)
        helps[name] = tuple(params[o].help for o in STRATEGY_OPTIONS)
    assert helps["simulate"] == helps["backtest"] == helps["run"]
    base = QuoterConfig()
    got = _common.quoter_config(
        base, requote_price_bps=2.5, requote_size_frac=0.3, estimator_halflife_s=60.0, estimator_prior_weight_s=5.0
    )
    assert (got.orders.requote_price_bps, got.orders.requote_size_frac) == (2.5, 0.3)
    assert (got.estimator.halflife_s, got.estimator.prior_weight_s) == (60.0, 5.0)
    assert _common.quoter_config(base) == base


@pytest.mark.parametrize("command", ["simulate", "backtest", "run"])
def test_a_bad_strategy_option_is_one_line(command):
    args = {"backtest": ["backtest", "x.gz"], "run": ["run", "--base-url", "http://127.0.0.1:9"]}.get(
        command, [command]
    )
    one_line_error(runner.invoke(app, [*args, "--requote-size-frac", "1.0"]), "'--requote-size-frac' must be in [0, 1)")


def test_the_command_list_is_the_commands_own_help():
    """``--help`` lists the commands from a table, without importing them: each line is the command's own first help
    line, and every registered command is in the table."""
    import typer.main

    from hyper_make.cli import load_commands

    load_commands()
    group = typer.main.get_command(app)
    for name, (_module, line) in _common.COMMANDS.items():
        cmd = group.get_command(None, name)
        assert cmd is not None, name
        assert cmd.get_short_help_str(10_000) == _common.make_default_short_help(line, 10_000), name
    registered = {i.name or typer.main.get_command_name(i.callback.__name__) for i in app.registered_commands}
    assert registered <= set(_common.COMMANDS)


def test_help_imports_no_numerical_stack():
    """``hyper-make --help`` starts without NumPy, numba or SciPy (their imports cost about a second)."""
    import subprocess
    import sys

    code = (
        "import sys; from hyper_make.cli import main\n"
        "sys.argv = ['hyper-make', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('numpy', 'numba', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Commands:" in out and "simulate" in out
    assert out.strip().splitlines()[-1] == "[]"
