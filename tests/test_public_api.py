"""The public surface: ``__all__`` is unique and importable; the package is typed."""

from __future__ import annotations

from importlib import resources

import hyper_make


def test_all_is_unique_and_importable():
    # the order is ruff's (RUF022: constants first, then classes and functions, each alphabetical)
    assert len(set(hyper_make.__all__)) == len(hyper_make.__all__)
    for name in hyper_make.__all__:
        assert getattr(hyper_make, name) is not None


def test_py_typed_marker_ships():
    assert resources.files("hyper_make").joinpath("py.typed").is_file()
