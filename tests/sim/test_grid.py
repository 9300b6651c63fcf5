"""``hyper-make simulate --grid``: the grid file, the JSON schema, resume after Ctrl-C, one-line errors."""

from __future__ import annotations

import itertools
import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from helpers import forbid_calls
from hyper_make.batch import LocalExecutor
from hyper_make.cli import app
from hyper_make.sim import grid as gridmod
from hyper_make.sim.config import SimConfig, with_overrides
from hyper_make.sim.grid import Regime, RunLog, apply_regime, parse_grid
from hyper_make.sim.montecarlo import run_tournament

runner = CliRunner()

TINY = """
[grid.axes]
"sim.market.maker_fee_bps" = [0.0, 1.5]
"""
ARGS = ["--paths", "2", "--horizon-s", "5", "-a", "entropy,flat", "--workers", "1", "--json"]
METRIC_KEYS = ("mean_pnl", "std_pnl", "ci_lo", "ci_hi", "sharpe", "mean_fills", "adverse_selection", "impact",
               "fees", "mean_effective_levels", "std_final_inventory")  # fmt: skip


def _grid(tmp_path, text=TINY):
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def _run(grid, out, *extra):
    return runner.invoke(app, ["simulate", "--grid", str(grid), *ARGS, "--out", str(out), *extra])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The tiny grid (2 regimes × 2 allocators × 2 paths of 5 s) run once without a stop."""
    tmp = tmp_path_factory.mktemp("grid")
    res = _run(_grid(tmp), tmp / "out")
    assert res.exit_code == 0, res.output
    return tmp / "out", json.loads(res.stdout)


def test_the_grid_json_has_the_issue_schema_and_simulates_metrics(uninterrupted):
    out, d = uninterrupted
    assert list(d["regimes"]) == ["maker_fee_bps=0", "maker_fee_bps=1.5"]
    assert d["total_runs"] == d["finished_runs"] == 8 and d["interrupted"] is False
    for name, fee in zip(d["regimes"], (0.0, 1.5), strict=True):
        reg = d["regimes"][name]
        assert reg["overrides"] == {"sim.market.maker_fee_bps": fee}
        assert set(reg["strategies"]) == {"entropy", "flat"}
        for row in reg["strategies"].values():
            assert all(k in row for k in METRIC_KEYS)
        flat = reg["strategies"]["flat"]
        assert {"diff_vs_entropy", "diff_ci_lo", "diff_ci_hi"} <= set(flat)
        # the same paired seeds as `simulate`: the regime's metrics are run_tournament's on its config
        cfg = with_overrides(SimConfig(), market={"maker_fee_bps": fee}, horizon_s=5.0)
        want = run_tournament(cfg, allocators=["entropy", "flat"], paths=2, workers=1).metrics()
        for a in ("entropy", "flat"):
            got = reg["strategies"][a]
            assert {k: got[k] for k in want[a]} == pytest.approx(want[a], nan_ok=True)
        # two allocators: each one's best other is the other, and the differences are opposite
        ent = reg["strategies"]["entropy"]
        assert flat["best_other"] == "entropy" and ent["best_other"] == "flat"
        assert flat["diff_vs_best_other"] == pytest.approx(flat["diff_vs_entropy"])
        assert ent["diff_vs_best_other"] == pytest.approx(-flat["diff_vs_best_other"])
        assert ent["diff_vs_best_other_ci_lo"] == pytest.approx(-flat["diff_vs_best_other_ci_hi"])
    for f in ("grid.json", "runs.jsonl", "metrics.json", "metrics.csv", "summary.md", "heatmap.png",
              "regimes/maker_fee_bps=0/summary.md", "regimes/maker_fee_bps=1.5/pnl_distribution.png"):  # fmt: skip
        assert (out / f).exists(), f
    assert len((out / "runs.jsonl").read_text().splitlines()) == 8
    assert json.loads((out / "metrics.json").read_text())["regimes"].keys() == d["regimes"].keys()


def test_resume_after_ctrl_c_recomputes_nothing_and_equals_an_uninterrupted_run(tmp_path, monkeypatch, uninterrupted):
    _, want = uninterrupted
    real = gridmod.run_item
    calls = {"n": 0}

    def ctrl_c_at_the_third_run(item):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(item)

    grid = _grid(tmp_path)
    out = tmp_path / "out"
    monkeypatch.setattr(gridmod, "run_item", ctrl_c_at_the_third_run)
    res = _run(grid, out)
    assert res.exit_code == 130, res.output
    assert res.stderr.strip().splitlines()[-1].startswith(f"interrupted: kept 2 of 8 finished runs in {out}")
    assert json.loads(res.stdout)["interrupted"] is True
    assert "INTERRUPTED (Ctrl-C): partial results from 2 of 8 runs" in (out / "summary.md").read_text()
    # a line cut short by a stop of the process mid-write is dropped and its run done again
    with (out / "runs.jsonl").open("a") as fh:
        fh.write('{"key": "maker_fee_bps=0|flat|1", "regi')
    done_before = {json.loads(x)["key"] for x in (out / "runs.jsonl").read_text().splitlines()[:2]}

    ran: list[str] = []
    monkeypatch.setattr(gridmod, "run_item", lambda item: ran.append(item.key) or real(item))
    res = _run(grid, out)
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert len(ran) == 6 and not set(ran) & done_before
    assert d["resumed_runs"] == 2 and d["finished_runs"] == 8
    assert d["regimes"] == want["regimes"]
    assert len((out / "runs.jsonl").read_text().splitlines()) == 8

    ran.clear()  # a third run finds everything done
    res = _run(grid, out)
    assert res.exit_code == 0 and not ran and json.loads(res.stdout)["regimes"] == want["regimes"]


def test_a_folder_of_another_grid_is_not_resumed(tmp_path, uninterrupted):
    out, _ = uninterrupted
    res = runner.invoke(app, ["simulate", "--grid", str(_grid(tmp_path)), *ARGS, "--out", str(out),
                                        "--paths", "3"])  # fmt: skip
    assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.output
    assert "holds another grid run (grid.json 'paths': 2 there, 3 here)" in res.stderr


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rec: "garbage", "runs.jsonl line 2: not a run record; remove the line to resume"),
        (lambda rec: json.dumps({**rec, "result": {k: v for k, v in rec["result"].items() if k != "fills"}}),
         "runs.jsonl line 2: the record of run 'maker_fee_bps=0|flat|0' does not hold the fields this version writes"),
        (lambda rec: json.dumps({**rec, "key": "other|flat|0"}), "runs.jsonl line 2: run 'other|flat|0' is not in"),
    ],
)  # fmt: skip
def test_a_corrupt_runs_file_is_one_line_and_exit_2(tmp_path, monkeypatch, uninterrupted, edit, message):
    forbid_calls(monkeypatch, "hyper_make.sim.grid.run_item")
    out = tmp_path / "out"
    shutil.copytree(uninterrupted[0], out)
    lines = (out / "runs.jsonl").read_text().splitlines()
    lines[1] = edit(json.loads(lines[1]))
    (out / "runs.jsonl").write_text("\n".join(lines) + "\n")
    res = _run(_grid(tmp_path), out)
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and message in res.stderr, res.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[grid.axes]\n"sim.market.maker_fee" = [0.0]\n',
         "[grid.axes]: unknown key 'sim.market.maker_fee'; valid 'sim.market' keys are ['mid0_usd', 'tick_usd'"),
        ('[[grid.regime]]\nname = "x"\n"sim.markt.maker_fee_bps" = 0.0\n',
         "[[grid.regime]] #1 'x': unknown key 'sim.markt.maker_fee_bps'; a regime overrides 'sim.market.<field>', "
         "'sim.strategy.<field>' or 'ladder.<field>'"),
        ('[grid.axes]\n"ladder.risk_avers" = [0.1]\n', "unknown key 'ladder.risk_avers'; valid 'ladder' keys are"),
        ('[grid.axes]\n"sim.strategy.quoter" = [1]\n', "key 'sim.strategy.quoter': set it with the base --config"),
        ('[grid.axes]\n"sim.market.informed_frac" = [0.1, "0.3"]\n',
         "axis 'sim.market.informed_frac' mixes types (number and string)"),
        ('[grid.axes]\n"sim.market.informed_frac" = []\n', "axis 'sim.market.informed_frac' is empty"),
        ('[grid.axes]\n"sim.market.informed_frac" = 0.1\n', "axis 'sim.market.informed_frac' must be a list"),
        ("[grid]\n", "no regimes (empty product)"),
        ("[grid.axis]\n", "unknown key 'grid.axis'; valid keys are ['axes', 'regime']"),
        ("[sim.market]\nmaker_fee_bps = 1.0\n", "unknown section [sim]; a grid file holds [grid.axes]"),
        ('[[grid.regime]]\nname = "a"\n[[grid.regime]]\nname = "a"\n', "two regimes are named 'a'"),
        ('[grid.axes]\n"sim.market.informed_frac" = [0.1, 1.5]\n',
         "regime 'informed_frac=1.5': 'sim.market.informed_frac' must be in [0, 1]"),
        ('[grid.axes]\n"ladder.grid.n_levels" = [0]\n', "regime 'n_levels=0': 'ladder.grid.n_levels' must be"),
    ],
)  # fmt: skip
def test_a_bad_grid_is_one_line_and_exit_2(tmp_path, monkeypatch, text, message):
    forbid_calls(monkeypatch, "hyper_make.sim.grid.run_item")
    res = _run(_grid(tmp_path, text), tmp_path / "out")
    assert res.exit_code == 2, res.output
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: grid file ") and message in res.stderr
    assert not (tmp_path / "out").exists()


def test_grid_is_refused_with_the_avellaneda_stoikov_preset(tmp_path):
    res = runner.invoke(app, ["simulate", "--preset", "avellaneda-stoikov-2008", "--grid",
                                        str(_grid(tmp_path))])  # fmt: skip
    assert res.exit_code == 2 and "'--grid' is for the event-driven presets" in res.stderr


def test_axes_product_and_explicit_regimes():
    g = parse_grid(
        {
            "grid": {
                "axes": {"sim.market.maker_fee_bps": [0.0, 1.5], "sim": {"market": {"informed_frac": [0.1, 0.3]}}},
                "regime": [{"name": "rebate", "sim.market.maker_fee_bps": -0.2},
                           {"ladder": {"grid": {"n_levels": 5}}, "sim.strategy.max_position_coins": 2}],
            }
        }
    )  # fmt: skip
    assert [r.name for r in g.regimes] == [
        "maker_fee_bps=0,informed_frac=0.1", "maker_fee_bps=0,informed_frac=0.3",
        "maker_fee_bps=1.5,informed_frac=0.1", "maker_fee_bps=1.5,informed_frac=0.3",
        "rebate", "n_levels=5,max_position_coins=2",
    ]  # fmt: skip
    assert g.regimes[3].overrides == {"sim.market.maker_fee_bps": 1.5, "sim.market.informed_frac": 0.3}
    assert g.axes == (("sim.market.maker_fee_bps", (0.0, 1.5)), ("sim.market.informed_frac", (0.1, 0.3)))
    cfg = apply_regime(SimConfig(), g.regimes[-1])
    assert cfg.strategy.ladder.grid.n_levels == 5 and cfg.strategy.max_position_coins == 2
    assert cfg.strategy.ladder.grid.max_depth_bps == SimConfig().strategy.ladder.grid.max_depth_bps
    assert cfg.market == SimConfig().market
    # two axes ending in the same field are named by their full keys
    g = parse_grid({"grid": {"axes": {"ladder.horizon_s": [10.0], "sim.strategy.horizon_s": [60.0]}}})
    assert g.regimes[0].name == "ladder.horizon_s=10,sim.strategy.horizon_s=60"
    assert apply_regime(SimConfig(), Regime("base", {})) == SimConfig()


def test_the_two_axis_heatmap_is_drawn_for_a_product_of_two_axes_only(tmp_path):
    two = parse_grid({"grid": {"axes": {"sim.market.maker_fee_bps": [0.0, 1.5], "ladder.risk_aversion": [0.01]}}})
    row = {"diff_vs_best_other": 1.0, "diff_vs_best_other_ci_lo": 0.5, "diff_vs_best_other_ci_hi": 1.5}
    results = {"regimes": {r.name: {"strategies": {"entropy": row, "flat": {}}} for r in two.regimes}}
    png = gridmod.plot_axes_heatmap(two, results, ["entropy", "flat"], tmp_path / "h.png")
    assert png is not None and png.read_bytes()[:4] == b"\x89PNG"
    one = parse_grid({"grid": {"axes": {"sim.market.maker_fee_bps": [0.0, 1.5]}}})
    assert gridmod.plot_axes_heatmap(one, results, ["entropy", "flat"], tmp_path / "x.png") is None
    assert gridmod.plot_axes_heatmap(two, results, ["entropy"], tmp_path / "x.png") is None


def _square(x: int) -> int:
    return x * x


def test_the_local_executor_yields_every_item_once_on_a_pool():
    got = dict(LocalExecutor(2, in_flight_per_worker=1).imap_unordered(_square, range(7)))
    assert got == {i: i * i for i in range(7)}


MARKET_FLOATS = ["maker_fee_bps", "taker_fee_bps", "informed_frac", "lean_bps_per_s"]


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(MARKET_FLOATS), st.lists(st.floats(0.0, 1.0), min_size=1, max_size=3,
                                                                 unique=True), min_size=1, max_size=3))  # fmt: skip
def test_the_axes_product_has_one_regime_per_combination(axes):
    raw = {f"sim.market.{k}": v for k, v in axes.items()}
    try:
        g = parse_grid({"grid": {"axes": raw}})
    except Exception as exc:  # two floats that print alike make two regimes of one name: refused, not merged
        assert "two regimes are named" in str(exc)
        return
    assert len(g.regimes) == math.prod(len(v) for v in axes.values())
    assert len({r.name for r in g.regimes}) == len(g.regimes)
    assert [tuple(r.overrides.values()) for r in g.regimes] == list(itertools.product(*raw.values()))


RESULT = dict.fromkeys(gridmod._RESULT_FIELDS, 0.0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.data())
def test_a_runs_file_cut_anywhere_resumes_from_its_whole_records(n, data):
    keys = [f"r|a|{i}" for i in range(n + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        log = RunLog(out, {"format": "test"}, keys)
        for i in range(n):
            log.append({"key": keys[i], "result": {**RESULT, "pnl_usd": i / 3, "allocator": "x" * i}})
        raw = (out / "runs.jsonl").read_bytes()
        cut = data.draw(st.integers(0, len(raw)))
        (out / "runs.jsonl").write_bytes(raw[:cut])
        ends = list(itertools.accumulate(len(x) for x in raw.split(b"\n")[:n]))
        ends = [e + i for i, e in enumerate(ends)]  # offset of each record's newline
        log = RunLog(out, {"format": "test"}, keys)
        assert set(log.done) == {keys[i] for i in range(n) if ends[i] <= cut}
        log.append({"key": keys[n], "result": RESULT})  # the file goes on whole after a resume
        lines = (out / "runs.jsonl").read_text().splitlines()
        assert [json.loads(x)["key"] for x in lines] == [*sorted(set(log.done) - {keys[n]}), keys[n]]
