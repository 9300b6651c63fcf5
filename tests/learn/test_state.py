"""The learner's state file: round trip, refusal of another coin / layout / version / a corrupted file (one line
naming the file and the field), and atomic writes that never leave a half-written or overwritten file."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from hyper_make.errors import DataError
from hyper_make.learn import SCHEMA_VERSION, LearnerConfig, PayoutLearner, load_or_new
from learn._synth import DEPTHS, SIZES, interval, learner, make_prior, truth


@pytest.fixture(scope="module")
def trained_file(tmp_path_factory) -> object:
    lrn = learner(half_life_s=600.0)
    rng = np.random.default_rng(21)
    for _ in range(40):
        lrn.update(interval(rng, truth(), DEPTHS, SIZES))
    return lrn.save(tmp_path_factory.mktemp("trained") / "trained.json")


@pytest.fixture
def trained(trained_file) -> PayoutLearner:
    """A learner after 40 intervals (a fresh copy per test, read from one file written once)."""
    return PayoutLearner.load(trained_file)


def test_round_trip_restores_the_posterior_exactly(tmp_path, trained):
    path = trained.save(tmp_path / "btc.json")
    back = PayoutLearner.load(path, expected=LearnerConfig(half_life_s=600.0))
    for k, v in trained.state.items():
        np.testing.assert_array_equal(back.state[k], v)
    assert back.counters == trained.counters
    assert (back.clock_s, back.n_updates) == (trained.clock_s, trained.n_updates)
    kw = dict(mid_usd=1e5, horizon_s=2.0)
    a = trained.sample(np.random.default_rng(5), DEPTHS, DEPTHS, **kw)
    b = back.sample(np.random.default_rng(5), DEPTHS, DEPTHS, **kw)
    np.testing.assert_array_equal(a.bid.a, b.bid.a)
    np.testing.assert_array_equal(a.ask.c, b.ask.c)
    # and it keeps learning the same way
    obs = interval(np.random.default_rng(22), truth(), DEPTHS, SIZES)
    trained.update(obs)
    back.update(obs)
    for k, v in trained.state.items():
        np.testing.assert_array_equal(back.state[k], v)


def test_infinite_settings_round_trip(tmp_path):
    lrn = learner(half_life_s=math.inf, huber_k=math.inf)
    back = PayoutLearner.load(lrn.save(tmp_path / "s.json"))
    assert math.isinf(back.config.half_life_s) and math.isinf(back.config.huber_k)
    json.loads((tmp_path / "s.json").read_text())  # strict JSON: no Infinity/NaN literals


def test_load_or_new_starts_fresh_without_a_file_and_resumes_with_one(tmp_path, trained):
    path = tmp_path / "state.json"
    cfg = LearnerConfig(half_life_s=600.0)
    fresh = load_or_new(path, cfg, make_prior())
    assert fresh.n_updates == 0 and not path.exists()
    trained.save(path)
    assert load_or_new(path, cfg, make_prior()).n_updates == trained.n_updates


def edit(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(schema_version=SCHEMA_VERSION + 1), "schema_version"),
        (lambda d: d.update(kind="something.else"), "kind"),
        (lambda d: d["state"].pop("mk_w"), "state.mk_w"),
        (lambda d: d["state"].update(exposure_coin_s=[[1.0, 2.0]]), "state.exposure_coin_s"),
        (lambda d: d["state"]["filled_coins"][0].__setitem__(0, -1.0), "state.filled_coins"),
        (lambda d: d["state"]["mk_y"][0][0].__setitem__(0, "x"), "state.mk_y"),
        (lambda d: d.update(clock_s=-5.0), "clock_s"),
        (lambda d: d["counters"].pop("fills_skipped"), "counters.fills_skipped"),
        (lambda d: d["prior"].update(rate_per_s=[1.0]), "prior"),
        (lambda d: d["layout"].update(beta_grid=[0.5, 1.0]), "layout.beta_grid"),
        (lambda d: d["config"].update(half_life_s=-1.0), "config"),
    ],
)
def test_a_damaged_file_names_the_file_and_the_field(tmp_path, trained, change, field):
    path = trained.save(tmp_path / "state.json")
    edit(path, change)
    with pytest.raises(DataError) as exc:
        PayoutLearner.load(path)
    msg = str(exc.value)
    assert msg.startswith(f"learner state {path}: field '{field}'"), msg
    assert "\n" not in msg


def test_another_coin_or_layout_is_refused(tmp_path, trained):
    path = trained.save(tmp_path / "state.json")
    with pytest.raises(DataError, match=r"field 'coin' is 'BTC'; expected 'ETH'"):
        PayoutLearner.load(path, expected=LearnerConfig(coin="ETH"))
    with pytest.raises(DataError, match=r"field 'layout.bucket_edges_bps' is \[0.0, 1.0"):
        PayoutLearner.load(path, expected=LearnerConfig(bucket_edges_bps=(0.0, 5.0, 50.0)))
    with pytest.raises(DataError, match=r"field 'layout.markout_horizons_s'"):
        PayoutLearner.load(path, expected=LearnerConfig(markout_horizons_s=(5.0,), value_horizon_s=5.0))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"schema_version": 1, "kind": ', r"not valid JSON \(Expecting value at line 1 column 31\)"),
        ("[1, 2]", r"must be a JSON object; got list"),
        ("", r"not valid JSON"),
    ],
)
def test_a_corrupted_file_is_one_clear_line(tmp_path, text, match):
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(DataError, match=f"learner state {path}: {match}"):
        PayoutLearner.load(path)
    with pytest.raises(DataError, match=r"file not found"):
        PayoutLearner.load(tmp_path / "missing.json")


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, trained, monkeypatch):
    path = trained.save(tmp_path / "state.json")
    before = path.read_bytes()
    trained.update(interval(np.random.default_rng(23), truth(), DEPTHS, SIZES))

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        trained.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
