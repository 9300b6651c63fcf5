"""Python API misuse ends in one InvalidParameterError naming the argument (issue 10), not a deep traceback."""

from __future__ import annotations

import numpy as np
import pytest

from hyper_make import (
    GridConfig,
    InvalidParameterError,
    LadderConfig,
    build_ladder,
    default_snapshot,
    default_spec,
    make_allocator,
)


def build(**kwargs):
    args = {"allocator": make_allocator("impact")} | kwargs
    allocator = args.pop("allocator")
    return build_ladder(default_snapshot(), default_spec(), allocator, **args)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"allocator": None}, "'allocator' must be an allocator"),
        ({"allocator": 3}, "'allocator' must be an allocator"),
        ({"allocator": "nope"}, "unknown allocator 'nope'; choose one of"),
        ({"config": {"horizon_s": 10.0}}, "'config' must be a LadderConfig or None; got dict"),
        ({"rng": "x"}, "'rng' must be a numpy Generator, a non-negative integer seed or None; got 'x'"),
        ({"rng": -1}, "'rng' must be a numpy Generator, a non-negative integer seed or None; got -1"),
        ({"rng": 1.5}, "'rng' must be a numpy Generator"),
        ({"state": "x"}, "'state' must be a LadderState"),
    ],
)
def test_build_ladder_names_the_bad_argument(kwargs, needle):
    with pytest.raises(InvalidParameterError) as exc:
        build(**kwargs)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_a_registered_name_is_accepted_as_the_allocator():
    by_name = build_ladder(default_snapshot(), default_spec(), "impact", rng=0)
    by_obj = build(rng=0)
    assert [(o.price, o.size) for o in by_name.bids] == [(o.price, o.size) for o in by_obj.bids]
    assert by_name.allocator == "impact"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"grid": {"n_levels": 5}}, "'ladder.grid' must be a GridConfig; got dict"),
        ({"fill": {"kind": "exponential"}}, "'ladder.fill' must be a ExponentialIntensity or FirstPassage or"),
        ({"adverse": 3.0}, "'ladder.adverse' must be a ExponentialAdverse or TableAdverse; got float"),
        ({"impact": None}, "'ladder.impact' must be a SquareRootImpact; got NoneType"),
        ({"stealth": "dirichlet"}, "'ladder.stealth' must be a StealthConfig; got str"),
    ],
)
def test_ladder_config_checks_its_nested_types_at_construction(kwargs, needle):
    # LadderConfig(grid={...}) was accepted and failed later inside the build
    with pytest.raises(InvalidParameterError) as exc:
        LadderConfig(**kwargs)
    assert needle in str(exc.value)


def test_nested_dataclasses_still_work_and_toml_tables_still_load(tmp_path):
    from hyper_make import load_config

    assert LadderConfig(grid=GridConfig(n_levels=5)).grid.n_levels == 5
    path = tmp_path / "c.toml"
    path.write_text("[ladder.grid]\nn_levels = 4\n[ladder.fill]\nkind = 'first_passage'\n", encoding="utf-8")
    cfg = load_config(path)
    assert cfg.ladder.grid.n_levels == 4 and cfg.ladder.fill.kind == "first_passage"
    assert build_ladder(cfg.snapshot, cfg.spec, "impact", config=cfg.ladder, rng=np.random.default_rng(0)).bids
