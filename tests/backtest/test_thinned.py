"""The replay's plot rows kept in bounded memory: a batch of rows keeps what one row at a time keeps."""

from __future__ import annotations

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
