"""The documentation is executable: every example in README.md and docs/*.md produces what the text says.

* ``python`` blocks written as doctests (``>>>``) run, and their printed output must match;
* ``toml`` blocks load through the loader of their sections (a grid file's regimes over the default preset)
  without error, and the shipped ``examples/*.toml`` give what their comments promise (a non-empty two-sided
  ladder for every allocator);
* every ``hyper-make ...`` line of a ``bash`` block names a real command, and its options and arguments parse
  (the command is not run: some need the network, a key or minutes of CPU);
* ``docs/config.md`` is exactly what ``scripts/config_reference.py`` writes from the code.
"""

from __future__ import annotations

import doctest
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import typer
import typer.main

from hyper_make import ALLOCATORS, build_ladder, load_config
from hyper_make.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)


def _blocks(lang: str) -> list[tuple[str, int, str]]:
    """``(file, line, text)`` of every fenced block of ``lang`` in the docs."""
    out = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for m in _FENCE.finditer(text):
            if m.group(1) == lang:
                out.append((path.name, text.count("\n", 0, m.start()) + 1, m.group(2)))
    return out


def _ids(blocks: list[tuple[str, int, str]]) -> list[str]:
    return [f"{name}:{line}" for name, line, _ in blocks]


PY_BLOCKS = [b for b in _blocks("python") if ">>>" in b[2]]
TOML_BLOCKS = _blocks("toml")


def test_the_docs_have_examples():
    assert PY_BLOCKS and TOML_BLOCKS and EXAMPLES


@pytest.mark.parametrize("block", PY_BLOCKS, ids=_ids(PY_BLOCKS))
def test_python_examples_print_what_the_text_says(block):
    name, line, text = block
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {}, f"{name}:{line}", name, line)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    out: list[str] = []
    runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)


def _load_toml_text(text: str, tmp_path: Path) -> None:
    raw = tomllib.loads(text)
    path = tmp_path / "block.toml"
    path.write_text(text, encoding="utf-8")
    if "grid" in raw:
        from hyper_make.sim.config import get_preset
        from hyper_make.sim.grid import apply_regime, load_grid

        for regime in load_grid(path).regimes:
            apply_regime(get_preset("default"), regime)
    elif "sim" in raw:
        from hyper_make.cli.simulate import load_sim_config
        from hyper_make.sim.config import get_preset

        load_sim_config(path, get_preset("default"))
    else:
        load_config(path)


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=_ids(TOML_BLOCKS))
def test_toml_examples_load(block, tmp_path):
    _load_toml_text(block[2], tmp_path)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_shipped_examples_load(path, tmp_path):
    _load_toml_text(path.read_text(encoding="utf-8"), tmp_path)


LADDER_EXAMPLES = [p for p in EXAMPLES if not {"sim", "grid"} & set(tomllib.loads(p.read_text("utf-8")))]


@pytest.mark.parametrize("path", LADDER_EXAMPLES, ids=[p.name for p in LADDER_EXAMPLES])
@pytest.mark.parametrize("name", sorted(ALLOCATORS))
def test_shipped_ladder_examples_quote_both_sides(path, name):
    cfg = load_config(path)
    ladder = build_ladder(cfg.snapshot, cfg.spec, cfg.make_allocator(name), config=cfg.ladder, rng=0)
    assert ladder.bids and ladder.asks, (ladder.bid.empty_reason, ladder.ask.empty_reason)


def _commands() -> list[tuple[str, int, list[str]]]:
    """Every ``hyper-make`` invocation in the bash blocks, continuation lines joined, as argv after the name."""
    out = []
    for name, line, text in _blocks("bash"):
        joined = re.sub(r"\\\n\s*", " ", text)
        for row in joined.splitlines():
            row = row.split(" # ")[0].strip()
            if "hyper-make " not in row or row.startswith("#"):
                continue
            for part in re.split(r"&&|\||&\s*$", row):
                words = shlex.split(part, comments=True)
                if "hyper-make" in words or any(w.endswith("/hyper-make") for w in words):
                    i = next(i for i, w in enumerate(words) if w == "hyper-make" or w.endswith("/hyper-make"))
                    out.append((name, line, words[i + 1 :]))
    return out


COMMANDS = _commands()


@pytest.mark.parametrize("cmd", COMMANDS, ids=[f"{n}:{line}:{' '.join(a[:1])}" for n, line, a in COMMANDS])
def test_documented_command_lines_parse(cmd):
    _name, _line, argv = cmd
    group = typer.main.get_command(app)
    if not argv or argv[0].startswith("-"):
        group.make_context("hyper-make", list(argv), resilient_parsing=False)
        return
    sub = group.get_command(None, argv[0])
    assert sub is not None, f"no command {argv[0]!r}; commands are {group.list_commands(None)}"
    try:
        sub.make_context(argv[0], list(argv[1:]))
    except typer.Exit:
        pass  # --help / --version


def test_config_reference_is_generated_from_the_code():
    got = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "config_reference.py")], capture_output=True, text=True, check=True
    ).stdout
    assert (ROOT / "docs" / "config.md").read_text(encoding="utf-8") == got, (
        "docs/config.md is stale: run `python scripts/config_reference.py > docs/config.md`"
    )
