"""Shared CLI plumbing: the Typer app, one-line errors with exit code 2, JSON output."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import typer
from rich.console import Console

from .._json import to_jsonable
from ..errors import HyperMakeError

app = typer.Typer(
    name="hyper-make",
    help="Size the levels of a market maker's order ladder: legacy entropy heuristic vs exact impact-aware optimum.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Rich console on stderr for tables, progress and notices, so that ``--json`` keeps stdout clean.
err_console = Console(stderr=True)
#: Rich console on stdout for human-readable results.
out_console = Console()

EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print ``error: message`` on one line of stderr and exit with ``code``."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected errors (bad input, bad config, corrupt data) into one line and exit code 2."""
    try:
        yield
    except HyperMakeError as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except FileNotFoundError as exc:
        fail(f"file not found: {exc.filename}")
    except IsADirectoryError as exc:
        fail(f"expected a file, got a directory: {exc.filename}")


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2) + "\n")


@app.callback()
def _root() -> None:
    """Size the levels of a market maker's order ladder: legacy entropy heuristic vs exact impact-aware optimum."""
