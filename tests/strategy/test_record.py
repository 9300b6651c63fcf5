"""The ladder record sums what the ladder's own curves say about the sizes it quoted."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import hyper_make as hm
from hyper_make.strategy.record import LadderRecord, shape_row


@pytest.mark.parametrize("name", ["impact", "entropy", "flat", "greedy", "progression"])
@pytest.mark.parametrize("inventory", [0.0, 0.3, -0.45])
def test_record_sums_the_curves_split_value_and_effective_levels(name, inventory):
    snap = hm.default_snapshot()
    snap = dataclasses.replace(snap, inventory_coins=inventory)
    ladder = hm.build_ladder(snap, hm.default_spec(), hm.make_allocator(name), rng=3)
    rec = LadderRecord(10, refresh_s=2.0, horizon_s=30.0)
    rec.add(ladder)
    rec.add(ladder)
    impact = expected = 0.0
    eff = []
    for side in (ladder.bid, ladder.ask):
        if side.size_used_coins > 0:
            s = side.projection.sizes
            parts = side.curves.split(s)
            impact += parts["forward_impact_usd"] + parts["roundtrip_impact_usd"]
            expected += float(side.curves.value(s).sum())
            eff.append(side.effective_levels)
    scale = 2 * 2.0 / 30.0
    assert rec.refreshes == 2
    assert rec.model_impact_usd == pytest.approx(impact * scale, rel=1e-12, abs=1e-12)
    assert rec.model_expected_usd == pytest.approx(expected * scale, rel=1e-12, abs=1e-12)
    assert rec.mean_effective_levels == pytest.approx(float(np.mean(eff)) if eff else 0.0, rel=1e-12)
    assert all(math.isfinite(x) for x in (rec.model_impact_usd, rec.model_expected_usd))


def test_shapes_are_kept_every_n_refreshes_in_the_report_layout():
    ladder = hm.build_ladder(hm.default_snapshot(), hm.default_spec(), hm.make_allocator("flat"), rng=0)
    rec = LadderRecord(10, refresh_s=1.0, horizon_s=30.0, shapes_every=2)
    for _ in range(5):
        rec.add(ladder)
    shapes = rec.shapes
    assert shapes.shape == (3, 20)
    row = shape_row(ladder, 10)
    np.testing.assert_array_equal(shapes[0], row)
    assert row[:10].sum() == pytest.approx(sum(o.size for o in ladder.bids))
    assert row[9] == ladder.bids[0].size  # the touch bid sits just left of the middle
