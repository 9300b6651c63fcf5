"""TOML configuration: one file overrides any field of the snapshot, instrument, ladder or allocator.

Sections (every key optional; unknown keys are errors that list the valid ones)::

    [market]                 # MarketSnapshot fields (mid_usd, best_bid_usd, sigma_frac, inventory_coins, ...)
    [market.regime]          # toxicity, vol_ratio, cascade_severity
    [instrument]             # coin = "ETH" picks a shipped Hyperliquid perp; other InstrumentSpec fields override
    [ladder]                 # horizon_s, risk_aversion, level_cap_frac
    [ladder.grid]            # n_levels, min_depth_bps, max_depth_bps, spacing, ticks_per_level, touch
    [ladder.fill]            # kind = "exponential" | "first_passage" | "table", then that model's fields
    [ladder.adverse]         # kind = "exponential" | "table", then that model's fields
    [ladder.impact]          # forward_coef, roundtrip_coef, beta, volume_period_s
    [ladder.stealth]         # mode = "off" | "dirichlet" | "posterior", then that mode's fields
    [allocator]              # name = "impact" (default) | "entropy" | "greedy" | ... (``hyper_make.ALLOCATORS``)
    [allocator.<name>]       # that allocator's options

Values are checked by pydantic (types, NaN/inf, unknown keys) and then by each dataclass (ranges), and
every error is one line naming the dotted key, e.g. ``config key 'market.sigma_frac': must be in (0, 1]``.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .allocate import ALLOCATORS, Allocator, make_allocator
from .defaults import default_snapshot, default_spec
from .errors import ConfigError, HyperMakeError
from .instrument import PERP_SPECS, InstrumentSpec
from .ladder import LadderConfig
from .snapshot import MarketSnapshot

DEFAULT_ALLOCATOR = "impact"

_SECTIONS = ("market", "instrument", "ladder", "allocator")


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    """A fully validated run configuration.

    Attributes
    ----------
    snapshot : market and account state.
    spec : the instrument's exchange rules.
    ladder : ladder configuration (grid, economics models, horizon, risk aversion, caps).
    allocator_name : registered allocator to use when none is given on the command line.
    allocator_options : per allocator name, the options from ``[allocator.<name>]``.
    """

    snapshot: MarketSnapshot = field(default_factory=default_snapshot)
    spec: InstrumentSpec = field(default_factory=default_spec)
    ladder: LadderConfig = field(default_factory=LadderConfig)
    allocator_name: str = DEFAULT_ALLOCATOR
    allocator_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def make_allocator(self, name: str | None = None) -> Allocator:
        """Build allocator ``name`` (default: ``allocator_name``) with its ``[allocator.<name>]`` options."""
        n = name or self.allocator_name
        try:
            return make_allocator(n, **self.allocator_options.get(n, {}))
        except HyperMakeError as exc:
            raise ConfigError(f"[allocator.{n}]: {exc}") from None


def load_config(path: str | Path | None = None, *, base: AppConfig | None = None) -> AppConfig:
    """Read a TOML file and apply it over ``base`` (default: the embedded BTC market and default ladder).

    Raises
    ------
    ConfigError
        Unreadable file, invalid TOML, unknown section or key, wrong type, NaN/inf, or out-of-range value.
    """
    cfg = base if base is not None else AppConfig()
    if path is None:
        return cfg
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    return apply_overrides(cfg, raw)


def apply_overrides(cfg: AppConfig, raw: dict[str, Any]) -> AppConfig:
    """Apply a parsed TOML document (nested dicts) over ``cfg``; see :func:`load_config`."""
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"unknown config section {unknown[0]!r}; valid sections are {list(_SECTIONS)}")
    spec = cfg.spec
    if "instrument" in raw:
        section = dict(_table(raw, "instrument"))
        coin = section.get("coin")
        if isinstance(coin, str) and coin.upper() in PERP_SPECS and coin != spec.coin:
            spec = PERP_SPECS[coin.upper()]
        spec = _merge(spec, section, "instrument")
    snapshot = _merge(cfg.snapshot, _table(raw, "market"), "market") if "market" in raw else cfg.snapshot
    ladder = _merge(cfg.ladder, _table(raw, "ladder"), "ladder") if "ladder" in raw else cfg.ladder
    name, options = cfg.allocator_name, {k: dict(v) for k, v in cfg.allocator_options.items()}
    if "allocator" in raw:
        section = _table(raw, "allocator")
        for key, value in section.items():
            if key == "name":
                if value not in ALLOCATORS:
                    raise ConfigError(f"config key 'allocator.name' must be one of {sorted(ALLOCATORS)}; got {value!r}")
                name = value
            elif key in ALLOCATORS:
                if not isinstance(value, dict):
                    raise ConfigError(f"config key 'allocator.{key}' must be a table of options")
                options[key] = {**options.get(key, {}), **value}
                # build once now so that a bad option fails at load time, naming its key
                _build_allocator(key, options[key])
            else:
                raise ConfigError(
                    f"unknown config key 'allocator.{key}'; valid keys are ['name'] and the allocator names "
                    f"{sorted(ALLOCATORS)}"
                )
    return AppConfig(snapshot=snapshot, spec=spec, ladder=ladder, allocator_name=name, allocator_options=options)


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw[key]
    if not isinstance(value, dict):
        raise ConfigError(f"config key {key!r} must be a table ([{key}]); got {type(value).__name__}")
    return value


def _as_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a nested dict of its init fields (nested dataclasses included)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if not f.init:
            continue
        v = getattr(obj, f.name)
        out[f.name] = _as_dict(v) if dataclasses.is_dataclass(v) and not isinstance(v, type) else v
    return out


def _merge(obj: Any, overrides: dict[str, Any], path: str) -> Any:
    """``obj`` with ``overrides`` applied (nested tables merge into nested dataclasses), validated."""
    cls = type(obj)
    merged = _as_dict(obj)
    for key, value in overrides.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            # a new ``kind`` replaces the nested model wholesale instead of mixing two models' fields
            merged[key] = (
                value
                if value.get("kind", current.get("kind")) != current.get("kind")
                else {
                    **current,
                    **value,
                }
            )
        else:
            merged[key] = value
    return _validate(cls, merged, path)


def _tuples(v: Any) -> Any:
    """TOML arrays -> tuples (the dataclasses' sequence type), recursively."""
    if isinstance(v, dict):
        return {k: _tuples(x) for k, x in v.items()}
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    return v


def _check_kinds(cls: type, data: dict[str, Any], path: str) -> None:
    """Checks pydantic's lax mode would let through or word poorly.

    A number field given a boolean or a string (TOML ``true`` or ``"1.5"``) is refused, and for fields
    that are a union of models told apart by ``kind``, a bad ``kind`` names the allowed ones.
    """
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        hint = hints.get(key)
        if hint in (float, int) and isinstance(value, (bool, str)):
            want = "a number" if hint is float else "an integer"
            raise ConfigError(f"config key '{path}.{key}' must be {want}; got {value!r}")
        if typing.get_origin(hint) is tuple and isinstance(value, (list, tuple)):
            bad = [x for x in value if isinstance(x, (bool, str, dict, list))]
            if bad:
                raise ConfigError(f"config key '{path}.{key}' must be an array of numbers; got element {bad[0]!r}")
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            _check_kinds(hint, value, f"{path}.{key}")  # type: ignore[arg-type]
        members = typing.get_args(hint)
        kinds = [
            f.default for m in members if dataclasses.is_dataclass(m) for f in dataclasses.fields(m) if f.name == "kind"
        ]
        if kinds and isinstance(value, dict):
            if value.get("kind") not in kinds:
                raise ConfigError(f"config key '{path}.{key}.kind' must be one of {kinds}; got {value.get('kind')!r}")
            member = next(m for m, k in zip(members, kinds, strict=True) if k == value["kind"])
            _check_kinds(member, value, f"{path}.{key}")


def _validate(cls: type, data: dict[str, Any], path: str) -> Any:
    _check_kinds(cls, data, path)
    try:
        return TypeAdapter(cls).validate_python(_tuples(data))
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, path)) from None
    except HyperMakeError as exc:
        raise ConfigError(_prefixed(str(exc), path)) from None


def _prefixed(msg: str, path: str) -> str:
    """``'sigma_frac' must ...`` -> ``config key 'market.sigma_frac' must ...`` (no doubled section name)."""
    m = re.match(r"'([^']+)'(.*)", msg, flags=re.S)
    if not m:
        return f"config [{path}]: {msg}"
    name = m.group(1)
    parts = path.split(".")
    if name.split(".")[0] == parts[-1]:
        parts = parts[:-1]
    return f"config key '{'.'.join([*parts, name])}'{m.group(2)}"


def _build_allocator(name: str, options: dict[str, Any]) -> Allocator:
    cls = ALLOCATORS[name]
    try:
        valid = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ConfigError(f"unknown config key 'allocator.{name}.{unknown[0]}'; valid keys are {sorted(valid)}")
        _check_kinds(cls, options, f"allocator.{name}")
        return TypeAdapter(cls).validate_python(_tuples(options))  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, f"allocator.{name}")) from None
    except ConfigError:
        raise
    except HyperMakeError as exc:
        raise ConfigError(_prefixed(str(exc), f"allocator.{name}")) from None


def _one_line(exc: ValidationError, path: str) -> str:
    """The first pydantic error as ``config key 'a.b.c': message; got value``."""
    err = exc.errors()[0]
    # tagged-union branches add the class name to the location; keep only field names and indices
    loc = [str(x) for x in err.get("loc", ()) if not str(x)[:1].isupper()]
    key = ".".join([path, *loc])
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        return f"unknown config key {key!r}"
    if kind == "value_error":
        return _prefixed(msg.removeprefix("Value error, "), path)
    got = err.get("input")
    return f"config key {key!r}: {msg}; got {got!r}"
