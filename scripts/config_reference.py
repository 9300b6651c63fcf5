"""Write the reference of every TOML config key from the code: ``python scripts/config_reference.py > docs/config.md``.

Each key comes from a config dataclass's fields (name, type, default) and its numpydoc ``Parameters`` section
(description, range, unit), so the reference cannot drift from what the loader accepts; ``tests/test_docs.py``
checks that ``docs/config.md`` is this script's output.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import typing
from typing import Any

from hyper_make import ALLOCATORS
from hyper_make.config import ConfigMeta
from hyper_make.economics import ExponentialAdverse, ExponentialIntensity, FirstPassage, TableAdverse, TableFill
from hyper_make.economics.impact import SquareRootImpact
from hyper_make.instrument import InstrumentSpec
from hyper_make.ladder import LadderConfig
from hyper_make.levels import GridConfig
from hyper_make.sim.avellaneda import ASConfig
from hyper_make.sim.config import MarketConfig, StrategyConfig
from hyper_make.snapshot import MarketSnapshot, Regime
from hyper_make.stealth import StealthConfig
from hyper_make.strategy import EstimatorConfig, OrderManagerConfig
from hyper_make.strategy.quoter import QuoterConfig

#: (TOML table, class or classes told apart by ``kind``, fields to leave out because a sub-table holds them)
SECTIONS: list[tuple[str, tuple[type, ...], set[str], str]] = [
    ("market", (MarketSnapshot,), {"regime"}, "the market and account state (`MarketSnapshot`)"),
    ("market.regime", (Regime,), set(), "regime indicators (`Regime`): only the entropy allocator reads them"),
    ("instrument", (InstrumentSpec,), set(), "the exchange's rules for the coin (`InstrumentSpec`)"),
    ("ladder", (LadderConfig,), {"grid", "fill", "adverse", "impact", "stealth"}, "the ladder (`LadderConfig`)"),
    ("ladder.grid", (GridConfig,), set(), "levels per side and their spacing (`GridConfig`)"),
    ("ladder.fill", (ExponentialIntensity, FirstPassage, TableFill), set(), "fill-probability model, by `kind`"),
    ("ladder.adverse", (ExponentialAdverse, TableAdverse), set(), "adverse-selection model, by `kind`"),
    ("ladder.impact", (SquareRootImpact,), set(), "self-impact model (`SquareRootImpact`)"),
    ("ladder.stealth", (StealthConfig,), set(), "stealth stage between the allocator and the exchange projection"),
    (
        "quoter",
        (QuoterConfig,),
        {"orders", "estimator"},
        "the strategy's guards, one for all venues (`QuoterConfig`)",
    ),
    ("quoter.orders", (OrderManagerConfig,), set(), "the order diff: requote thresholds, batches, reduce-only"),
    ("quoter.estimator", (EstimatorConfig,), set(), "the σ and traded-volume estimates (`EstimatorConfig`)"),
    ("sim.market", (MarketConfig,), set(), "`hyper-make simulate` only: the synthetic market (`MarketConfig`)"),
    ("sim.strategy", (StrategyConfig,), {"ladder"}, "`hyper-make simulate` only: our quoting loop (`StrategyConfig`)"),
    ("sim.as", (ASConfig,), set(), "`hyper-make simulate --preset avellaneda-stoikov-2008` only (`ASConfig`)"),
    ("meta", (ConfigMeta,), set(), "where the file came from; `hyper-make calibrate` writes it (`ConfigMeta`)"),
]

_ROLE = re.compile(r":(?:class|func|meth|data|attr|mod):`~?([^`]+)`")
_ENTRY = re.compile(r"^(\s*)([A-Za-z_][\w, ]*?)\s*:\s*(.*)$")
_TYPEY = re.compile(r"^(float|int|bool|str|tuple|list|dict|\{|[A-Z]\w*( \||,|$)|.*\bdefault\b|.* or None)")


def param_docs(cls: type) -> dict[str, str]:
    """Field name -> description, from the class's numpydoc ``Parameters`` (or ``Attributes``) section."""
    doc = cls.__doc__ or ""
    doc = inspect.cleandoc(doc)
    lines = doc.splitlines()
    out: dict[str, str] = {}
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() in ("Parameters", "Attributes"))
    except StopIteration:
        return out
    i = start + 2
    base: int | None = None
    while i < len(lines):
        ln = lines[i]
        if not ln.strip():
            i += 1
            continue
        m = _ENTRY.match(ln)
        indent = len(ln) - len(ln.lstrip())
        if base is None:
            base = indent
        if indent < base or (indent == base and not m) or (i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}):
            break  # the next section
        if indent != base or not m:
            i += 1
            continue
        names = [n.strip() for n in m.group(2).split(",")]
        rest = m.group(3).strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > base):
            body.append(lines[j].strip())
            j += 1
        text = " ".join(x for x in body if x)
        desc = text if (body and _TYPEY.match(rest)) else " ".join(x for x in (rest, text) if x)
        for n in names:
            out[n] = desc
        i = j
    return out


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " \\| ".join(f'`"{a}"`' for a in typing.get_args(tp))
    if origin in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"array of {_type_name(args[0])}" if args else "array"
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None)) + (
            " (optional)" if type(None) in typing.get_args(tp) else ""
        )
    return {float: "number", int: "integer", bool: "boolean", str: "string"}.get(tp, getattr(tp, "__name__", str(tp)))


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        v = f.default
    elif f.default_factory is not dataclasses.MISSING:
        v = f.default_factory()
    else:
        return "required"
    if isinstance(v, str):
        return f'`"{v}"`'
    if isinstance(v, bool):
        return f"`{str(v).lower()}`"
    if isinstance(v, tuple) and not v:
        return "`[]`"
    if v is None:
        return "none"
    if isinstance(v, float):
        return f"`{v:.6g}`"
    return f"`{v!r}`"


def _rows(cls: type, skip: set[str]) -> list[str]:
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):  # a subclass's own docs win over inherited ones
        docs |= param_docs(base)
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name in skip or f.name.startswith("_"):
            continue
        if f.name == "kind":
            continue
        desc = docs.get(f.name)
        if desc is None:
            raise SystemExit(f"{cls.__name__}.{f.name} has no entry in its docstring's Parameters section")
        desc = _ROLE.sub(r"`\1`", desc).replace("``", "`").replace("|", "\\|")
        rows.append(f"| `{f.name}` | {_type_name(hints[f.name])} | {_default(f)} | {desc} |")
    return rows


def render() -> str:
    out = [
        "# Config reference",
        "",
        "<!-- generated by `python scripts/config_reference.py > docs/config.md`; do not edit by hand -->",
        "",
        "Every key a TOML config file may hold, read from the code (field, type, default) and its docstrings",
        "(meaning, range, unit). Every key is optional; an unknown key, a wrong type, NaN/inf or a value out of",
        "range is a one-line error naming the dotted key (exit code 2). `hyper-make ladder`, `compare`, `orders`,",
        "`run` and `backtest` read `[market]`, `[instrument]`, `[ladder.*]`, `[allocator.*]` and `[quoter.*]`;",
        "`simulate` reads `[sim.*]`, `[ladder.*]`, `[allocator.*]` and `[quoter.*]`.",
        "",
    ]
    for table, classes, skip, what in SECTIONS:
        out += [f"## `[{table}]`", "", what[0].upper() + what[1:] + ".", ""]
        for cls in classes:
            kind = next((f.default for f in dataclasses.fields(cls) if f.name == "kind"), None)
            if kind is not None:
                summary = (inspect.getdoc(cls) or "").splitlines()[0].replace("``", "`")
                out += [f'`kind = "{kind}"` (`{cls.__name__}`): {summary}', ""]
            rows = _rows(cls, skip)
            if rows:
                out += ["| key | type | default | meaning |", "|---|---|---|---|", *rows, ""]
            elif kind is not None:
                out += ["No other keys.", ""]
    out += [
        "## `[allocator]`",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
        f'| `name` | string | `"impact"` | the allocator used when none is given on the command line: one of '
        f"{', '.join(f'`{n}`' for n in ALLOCATORS)} |",
        "",
    ]
    for name, cls in ALLOCATORS.items():
        summary = _ROLE.sub(r"`\1`", (inspect.getdoc(cls) or "").splitlines()[0]).replace("``", "`")
        out += [f"### `[allocator.{name}]`", "", summary, ""]
        rows = _rows(cls, set())
        out += ["| key | type | default | meaning |", "|---|---|---|---|", *rows, ""] if rows else ["No options.", ""]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
