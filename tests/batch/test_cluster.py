"""The Ray executor on a real cluster on this machine (a head and a worker node, separate processes): the same results
as local processes for a grid and a backtest batch, a worker node killed mid-batch, a run that keeps failing."""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyper_make.batch import LocalExecutor, RayExecutor
from hyper_make.cli import app
from hyper_make.cli._batch import batch_notes
from hyper_make.sim.config import SimConfig, with_overrides
from hyper_make.sim.grid import RunLog, manifest, parse_grid, plan_runs, run_item

ray = pytest.importorskip("ray")  # the test extra installs it: these run in CI
from ray import cloudpickle  # noqa: E402 - Ray's own copy: it pickles the tasks' arguments

from batch._synthetic import market_lines  # noqa: E402
from hyper_make.batch.localcluster import LocalCluster  # noqa: E402

runner = CliRunner()
GRID = '[grid.axes]\n"sim.market.maker_fee_bps" = [0.0, 1.5]\n'
ARGS = ["--paths", "3", "--horizon-s", "5", "-a", "entropy,flat", "--json"]


@pytest.fixture(scope="module")
def cluster():
    c = LocalCluster()
    try:
        yield c.start()
    finally:
        c.stop()


def _grid_cli(tmp_path, out, *extra):
    g = tmp_path / "grid.toml"
    g.write_text(GRID)
    return runner.invoke(app, ["simulate", "--grid", str(g), *ARGS, "--out", str(out), *extra])


def _runs(out):
    return sorted((out / "runs.jsonl").read_text().splitlines())


def test_a_grid_on_the_cluster_equals_the_local_run(tmp_path, cluster):
    local = _grid_cli(tmp_path, tmp_path / "local", "--workers", "1")
    on_ray = _grid_cli(tmp_path, tmp_path / "ray", "--ray", cluster.address)
    assert local.exit_code == 0, local.output
    assert on_ray.exit_code == 0, on_ray.output
    a, b = json.loads(local.stdout), json.loads(on_ray.stdout)
    assert a["regimes"] == b["regimes"] and b["finished_runs"] == 12
    assert _runs(tmp_path / "local") == _runs(tmp_path / "ray")  # every record, bit for bit
    assert f"executor: ray {cluster.address}: 2 nodes, 2 CPUs" in (tmp_path / "ray" / "summary.md").read_text()
    # and the plain tournament (simulate without a grid) through the same seam
    plain = ["simulate", *ARGS]
    local = runner.invoke(app, [*plain, "--workers", "1", "--out", str(tmp_path / "t-local")])
    on_ray = runner.invoke(app, [*plain, "--ray", cluster.address, "--out", str(tmp_path / "t-ray")])
    assert local.exit_code == 0 and on_ray.exit_code == 0, on_ray.output
    assert json.loads(local.stdout)["strategies"] == json.loads(on_ray.stdout)["strategies"]


def test_a_backtest_batch_on_the_cluster_equals_the_local_one(tmp_path, cluster):
    from data._files import write_gz

    files = [str(write_gz(tmp_path / f"day{i}.gz", market_lines(40, i))) for i in range(3)]
    common = ["backtest", *files, "--day-by-day", "-a", "flat,impact", "--warmup-s", "2", "--json"]
    local = runner.invoke(app, [*common, "--workers", "1", "--out", str(tmp_path / "local")])
    on_ray = runner.invoke(app, [*common, "--ray", cluster.address, "--ship-data", "--out", str(tmp_path / "ray")])
    assert local.exit_code == 0, local.output
    assert on_ray.exit_code == 0, on_ray.output
    a, b = json.loads(local.stdout)["allocators"], json.loads(on_ray.stdout)["allocators"]
    assert a.keys() == {"flat", "impact"} and a["flat"]["quoted_refreshes"] > 0
    drop = ("wall_s", "strategy_s", "events_per_s")  # timings
    assert {n: {k: v for k, v in m.items() if k not in drop} for n, m in a.items()} == \
        {n: {k: v for k, v in m.items() if k not in drop} for n, m in b.items()}  # fmt: skip
    assert json.loads(local.stdout)["read_report"] == json.loads(on_ray.stdout)["read_report"]  # the paths too
    for f in ("fills_flat.csv", "fills_impact.csv", "equity_impact.csv", "days.csv"):
        assert (tmp_path / "local" / f).read_bytes() == (tmp_path / "ray" / f).read_bytes(), f


_HEAD_WAITED = "head-waited"


def _started_on_worker(marks: Path) -> bool:
    return any(p.name != _HEAD_WAITED for p in marks.iterdir())


def _slow_on_the_worker_node(item, marks):
    """A grid run that, on the worker node, waits long enough to be running there when the node is killed; the head's
    first run waits (up to 30 s) until one has started there, so that the head cannot finish the batch alone."""
    m = Path(marks)
    if os.environ.get("HM_NODE") == "worker":
        (m / item.key.replace("|", "_")).touch()
        time.sleep(60)
    elif not (m / _HEAD_WAITED).exists():
        (m / _HEAD_WAITED).touch()
        t0 = time.monotonic()
        while not _started_on_worker(m) and time.monotonic() - t0 < 30:
            time.sleep(0.05)
    return run_item(item)


def test_a_worker_node_killed_mid_batch_loses_nothing_and_is_reported(tmp_path, cluster):
    grid = parse_grid(tomllib.loads(GRID))
    base = with_overrides(SimConfig(), horizon_s=5.0)
    kw = {"allocators": ["entropy", "flat"], "paths": 2, "seed": 0}
    plan = plan_runs(grid, base, **kw)
    doc = manifest(grid, plan, **kw)
    want = RunLog(tmp_path / "local", doc, (it.key for it in plan))
    from hyper_make.sim.grid import run_grid

    run_grid(plan, want, executor=LocalExecutor(1))

    marks = tmp_path / "marks"
    marks.mkdir()

    def kill_when_a_run_starts_there():
        t0 = time.monotonic()
        while not _started_on_worker(marks) and time.monotonic() - t0 < 30:
            time.sleep(0.05)
        cluster.kill_worker()

    killer = threading.Thread(target=kill_when_a_run_starts_there, daemon=True)
    killer.start()
    ex = RayExecutor(cluster.address, retries=2)
    got = RunLog(tmp_path / "ray", doc, (it.key for it in plan))
    try:
        run_grid(plan, got, executor=ex, task=functools.partial(_slow_on_the_worker_node, marks=str(marks)))
    finally:
        killer.join(30)
        cluster.start_worker()  # for the tests after this one
    assert got.done == want.done and len(got.done) == 8, [f.describe() for f in ex.failures[:2]]
    assert _runs(tmp_path / "ray") == _runs(tmp_path / "local")
    assert not ex.failures and len(ex.retried) >= 1
    r = ex.retried[0]
    assert "NodeDiedError" in r.error or "WorkerCrashedError" in r.error, r.error
    assert r.attempt == 1 and r.item.seed in {it.seed for it in plan}
    assert any(line.startswith("RETRIED") and f"seed {r.item.seed}" in line for line in batch_notes(ex))
    cluster.wait_nodes(2)


def _fails_on_path_1(item):
    if item.path == 1 and item.allocator == "flat":
        raise ValueError(f"bad run {item.key}")
    return run_item(item)


# the workers cannot import this test module (nor its package): its functions travel by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_a_run_that_keeps_failing_is_reported_with_its_seed_and_the_rest_complete(tmp_path, cluster):
    grid = parse_grid(tomllib.loads(GRID))
    base = with_overrides(SimConfig(), horizon_s=5.0)
    kw = {"allocators": ["entropy", "flat"], "paths": 2, "seed": 0}
    plan = plan_runs(grid, base, **kw)
    log = RunLog(tmp_path / "out", manifest(grid, plan, **kw), (it.key for it in plan))
    ex = RayExecutor(cluster.address, retries=1)
    from hyper_make.sim.grid import run_grid

    run_grid(plan, log, executor=ex, task=_fails_on_path_1)
    assert len(log.done) == 6  # all but the two failing runs (one per regime)
    assert sorted(f.item.key for f in ex.failures) == ["maker_fee_bps=0|flat|1", "maker_fee_bps=1.5|flat|1"]
    assert all(f.attempt == 2 and f.error.startswith("ValueError: bad run") for f in ex.failures)
    assert len(ex.retried) == 2 and f"seed {plan[0].seed}" not in ex.failures[0].describe()
    assert f"seed {ex.failures[0].item.seed}" in ex.failures[0].describe()


def test_tune_on_the_cluster_gives_the_local_study(tmp_path, cluster):
    args = ["tune", "--trials", "4", "--batch", "2", "--paths", "2", "--horizon-s", "10", "--json"]
    local = runner.invoke(app, [*args, "--workers", "1", "--out", str(tmp_path / "local")])
    on_ray = runner.invoke(app, [*args, "--ray", cluster.address, "--out", str(tmp_path / "ray")])
    assert local.exit_code == 0, local.output
    assert on_ray.exit_code == 0, on_ray.output
    assert (tmp_path / "local" / "trials.csv").read_text() == (tmp_path / "ray" / "trials.csv").read_text()
    assert (tmp_path / "local" / "best.toml").read_text() == (tmp_path / "ray" / "best.toml").read_text()


def test_rolling_walk_forward_folds_on_the_cluster_equal_the_local_ones_and_resume(tmp_path, cluster):
    from data._files import write_gz

    files = [str(write_gz(tmp_path / f"day{i}.gz", market_lines(40, 10 + i))) for i in range(3)]
    common = ["backtest", *files, "--rolling", "-a", "flat,impact", "--warmup-s", "2", "--block-s", "5", "--json"]
    local = runner.invoke(app, [*common, "--workers", "1", "--out", str(tmp_path / "local")])
    on_ray = runner.invoke(app, [*common, "--ray", cluster.address, "--out", str(tmp_path / "ray")])
    assert local.exit_code == 0, local.output
    assert on_ray.exit_code == 0, on_ray.output
    a, b = json.loads(local.stdout), json.loads(on_ray.stdout)
    assert a["finished_folds"] == b["finished_folds"] == 2 and a["folds"] == b["folds"]
    assert [(r["fold"], r["train"], r["test"]) for r in a["folds"] if r["allocator"] == "flat"] == [
        (0, files[0], files[1]), (1, files[1], files[2])]  # fmt: skip
    assert (tmp_path / "local" / "folds.csv").read_bytes() == (tmp_path / "ray" / "folds.csv").read_bytes()
    again = runner.invoke(app, [*common, "--workers", "1", "--out", str(tmp_path / "local")])  # all resumed
    assert again.exit_code == 0 and json.loads(again.stdout)["resumed_folds"] == 2
    assert json.loads(again.stdout)["folds"] == a["folds"]
