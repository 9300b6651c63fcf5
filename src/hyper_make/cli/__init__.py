"""``hyper-make`` command line: one Typer app, one module per command group.

Every command turns a :class:`~hyper_make.errors.HyperMakeError` (bad config, bad input, corrupt data) into
one line on stderr and exit code 2, never a traceback. A command's module is imported when the command runs
(:data:`~hyper_make.cli._common.COMMANDS`), so ``hyper-make --help`` starts in a fraction of a second.
"""

from __future__ import annotations

from ._common import COMMANDS, app


def main() -> None:
    """Console-script entry point."""
    app()


def load_commands() -> None:
    """Import every command's module (registering it on ``app``): for tools that inspect all of them at once."""
    import typer.main

    group = typer.main.get_command(app)
    for name in COMMANDS:
        group.get_command(None, name)  # type: ignore[attr-defined]


__all__ = ["app", "load_commands", "main"]
