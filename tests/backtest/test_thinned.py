"""The replay's plot rows kept in bounded memory: a batch of rows keeps what one row at a time keeps."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper_make.backtest.replay import _Thinned


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 6), st.lists(st.integers(0, 40), max_size=12))
def test_extend_keeps_the_rows_add_keeps(cap, batches):
    one, many = _Thinned(cap), _Thinned(cap)
    start = 0
    for n in batches:
        for j in range(start, start + n):
            one.add(j)
        many.extend(n, lambda a, b, c, s=start: [s + i for i in range(a, b, c)])
        start += n
        assert (many.rows, many.stride, many.seen) == (one.rows, one.stride, one.seen)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.lists(st.integers(0, 40), max_size=12))
def test_rows_of_a_width_keep_what_a_list_keeps(cap, batches):
    # one preallocated array of rows: the same rows kept as the list of arrays, by add and by extend
    listed, one, many = _Thinned(cap), _Thinned(cap, 3), _Thinned(cap, 3)
    start = 0
    for n in batches:
        block = np.arange(start, start + n, dtype=np.float64)[:, None] * np.array([1.0, -1.0, 0.5])
        for row in block:
            listed.add(row.copy())
            one.add(row)
        many.extend(n, lambda a, b, c, block=block: block[a:b:c])
        start += n
        want = np.array(listed.rows).reshape(-1, 3)
        assert np.array_equal(one.rows, want) and np.array_equal(many.rows, want)
        assert (one.stride, one.seen) == (many.stride, many.seen) == (listed.stride, listed.seen)
