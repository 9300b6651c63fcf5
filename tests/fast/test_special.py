"""The compiled erfc gives the reference's values bit for bit (the fast path's curves depend on it)."""

import numba as nb
import numpy as np

from hyper_make.economics._special import erfc
from hyper_make.fast._special import erfc as c_erfc


@nb.njit
def _map_erfc(x):  # type: ignore[no-untyped-def]
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = c_erfc(x[i])
    return out


def test_erfc_matches_the_reference_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [rng.normal(0, 6, 200_000), np.linspace(-40, 40, 20_001), [0.0, -0.0, 1.0, -1.0, 8.0, -8.0, 1e-300, 40.0]]
    )
    assert np.array_equal(_map_erfc(x), erfc(x))
    assert np.isnan(c_erfc(np.nan))
