"""``hyper-make`` command line: one Typer app, one module per command group.

Every command turns a :class:`~hyper_make.errors.HyperMakeError` (bad config, bad input, corrupt data) into
one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

# each import registers its commands on ``app``
from . import compare as _compare  # noqa: F401
from . import convert as _convert  # noqa: F401
from . import data as _data  # noqa: F401
from . import exchange as _exchange  # noqa: F401
from . import ladder as _ladder  # noqa: F401
from . import orders as _orders  # noqa: F401
from . import run as _run  # noqa: F401
from . import simulate as _simulate  # noqa: F401
from . import tune as _tune  # noqa: F401
from ._common import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
