"""``compare_allocators`` and ``hyper-make compare``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hyper_make import InvalidParameterError, LadderConfig, default_snapshot, default_spec
from hyper_make.cli import app
from hyper_make.compare import compare_allocators


def test_every_allocator_both_sides():
    rows = compare_allocators(default_snapshot(), default_spec(), LadderConfig(level_cap_frac=1.0), repeats=1)
    from hyper_make import ALLOCATORS

    assert {(r.allocator, r.side) for r in rows} == {(n, s) for n in ALLOCATORS for s in ("bid", "ask")}
    by = {(r.allocator, r.side): r for r in rows}
    assert by["greedy", "bid"].largest_share == 1.0, "caps lifted: greedy collapses"
    assert by["impact", "bid"].expected_pnl_usd == max(r.expected_pnl_usd for r in rows if r.side == "bid")
    assert by["impact", "bid"].shadow_price is not None and by["entropy", "bid"].shadow_price is None
    for r in rows:
        assert 0 <= r.budget_used_frac <= 1 + 1e-12 and r.solve_us > 0


def test_unknown_name_and_bad_repeats():
    with pytest.raises(InvalidParameterError, match="unknown allocator 'x'"):
        compare_allocators(default_snapshot(), default_spec(), names=["x"])
    with pytest.raises(InvalidParameterError, match="repeats"):
        compare_allocators(default_snapshot(), default_spec(), repeats=0)


def test_cli_json_and_table():
    runner = CliRunner()
    res = runner.invoke(app, ["compare", "--json", "--repeats", "1", "-a", "impact,greedy", "--level-cap-frac", "1"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["level_cap_frac"] == 1.0 and len(out["rows"]) == 4
    assert {"expected_pnl_usd", "budget_used_frac", "effective_levels", "largest_share", "solve_us"} <= set(
        out["rows"][0]
    )
    table = runner.invoke(app, ["compare", "--repeats", "1", "-a", "impact"])
    assert table.exit_code == 0 and "impact" in table.stdout


def test_cli_bad_input_is_one_line_exit_2():
    res = CliRunner().invoke(app, ["compare", "-a", "bogus"])
    assert res.exit_code == 2
    assert "'--allocator' must name allocators among" in res.stderr and "got 'bogus'" in res.stderr
    assert "Traceback" not in res.output


def test_ladder_defaults_to_the_impact_allocator_and_reports_lambda():
    res = CliRunner().invoke(app, ["ladder", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["allocator"] == "impact"
    assert "deprecated" not in res.stderr
    for side in ("bid", "ask"):
        s = d["sides"][side]
        assert s["shadow_price"] is not None and s["binding"] in ("budget", "caps", "marginal")
        assert "solve_ns" in s["diagnostics"] and "discrete_loss_usd" in s["diagnostics"]
