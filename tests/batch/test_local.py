"""The local executor's retries and failure reports, and the CLI's report of a run that keeps failing."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hyper_make.batch import LocalExecutor, make_executor
from hyper_make.cli import app
from hyper_make.errors import InvalidParameterError
from hyper_make.sim import grid as gridmod

runner = CliRunner()


class Flaky:
    """Fails the first ``n`` calls on each item in ``bad``, then returns ``x * x``."""

    def __init__(self, bad, n):
        self.bad, self.n, self.calls = set(bad), n, {}

    def __call__(self, x):
        self.calls[x] = self.calls.get(x, 0) + 1
        if x in self.bad and self.calls[x] <= self.n:
            raise ValueError(f"bad {x}")
        return x * x


def test_a_run_is_retried_then_reported_while_the_rest_complete():
    f = Flaky(bad=[2], n=1)
    ex = LocalExecutor(1, retries=1, keep_going=True)
    assert dict(ex.imap_unordered(f, range(4))) == {0: 0, 1: 1, 2: 4, 3: 9}  # the retry succeeded
    assert [(r.item, r.error, r.attempt) for r in ex.retried] == [(2, "ValueError: bad 2", 1)] and not ex.failures

    f = Flaky(bad=[1, 3], n=5)
    ex = LocalExecutor(1, retries=2, keep_going=True)
    assert dict(ex.imap_unordered(f, range(4))) == {0: 0, 2: 4}
    assert [(r.item, r.attempt) for r in ex.failures] == [(1, 3), (3, 3)] and len(ex.retried) == 4
    assert f.calls == {0: 1, 1: 3, 2: 1, 3: 3}  # bounded: 1 + retries attempts

    with pytest.raises(ValueError, match="bad 1"):  # without keep_going the error is raised, as before
        dict(LocalExecutor(1).imap_unordered(Flaky(bad=[1], n=1), range(3)))


def test_retries_and_workers_are_checked():
    with pytest.raises(InvalidParameterError, match="'retries' must be an integer in \\[0, 100\\]"):
        LocalExecutor(1, retries=-1)
    with pytest.raises(InvalidParameterError, match="not both"):
        make_executor("auto", 2)


def test_a_grid_run_that_keeps_failing_is_in_failures_json_with_its_config_and_seed_and_exit_1(tmp_path, monkeypatch):
    g = tmp_path / "grid.toml"
    g.write_text('[grid.axes]\n"sim.market.maker_fee_bps" = [0.0, 1.5]\n')
    real = gridmod.run_item

    def fails_on_flat_path_1(item):
        if item.allocator == "flat" and item.path == 1 and item.regime == "maker_fee_bps=1.5":
            raise RuntimeError("simulated crash")
        return real(item)

    monkeypatch.setattr(gridmod, "run_item", fails_on_flat_path_1)
    out = tmp_path / "out"
    args = ["simulate", "--grid", str(g), "--paths", "2", "--horizon-s", "5", "-a", "entropy,flat", "--workers", "1",
            "--retries", "1", "--json", "--out", str(out)]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 1, r.output
    assert json.loads(r.stdout)["finished_runs"] == 7
    err = r.stderr.strip().splitlines()
    assert err[-1].startswith("error: 1 runs failed on every attempt (their config and seed in")
    doc = json.loads((out / "failures.json").read_text())
    (f,) = doc["failed"]
    assert f["run"].startswith("regime maker_fee_bps=1.5, allocator flat, path 1, seed ")
    assert f["error"] == "RuntimeError: simulated crash" and f["attempts"] == 2 and len(doc["retried"]) == 1
    assert f["item"]["config"]["market"]["maker_fee_bps"] == 1.5 and f["item"]["seed"] == int(f["run"].split()[-1])
    assert "FAILED 1 runs" in (out / "summary.md").read_text()
    monkeypatch.setattr(gridmod, "run_item", real)  # a rerun does the missing run and clears the report
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["resumed_runs"] == 7 and not (out / "failures.json").exists()


def _pid(_x):
    import os

    return os.getpid()


def _boom(x):
    raise KeyError(x)


def test_the_pool_is_kept_between_batches_and_dropped_after_an_error():
    with LocalExecutor(2, in_flight_per_worker=1) as ex:
        first = {p for _, p in ex.imap_unordered(_pid, range(6))}
        pool = ex._pool
        second = {p for _, p in ex.imap_unordered(_pid, range(6))}
        # the same pool, so at most its two processes over both batches (a fast batch may use only one)
        assert ex._pool is pool and len(first | second) <= 2
        with pytest.raises(KeyError):
            list(ex.imap_unordered(_boom, range(2)))
        assert ex._pool is None  # a failed batch does not leave a broken pool behind
        assert {p for _, p in ex.imap_unordered(_pid, range(4))}.isdisjoint(first | second)
    assert ex._pool is None
