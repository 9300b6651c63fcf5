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
    [quoter]                 # the strategy's guards: alo_guard_sigmas, stale_after_s, max_drawdown_usd, ...
    [quoter.orders]          # requote_price_bps, requote_size_frac, max_batch_len, reduce_only
    [quoter.estimator]       # halflife_s, prior_weight_s (σ and volume estimates)
    [meta]                   # where the file came from: source, generated_by, partial, stopped_at, not_fitted

The coin: a shipped spec (:data:`~hyper_make.instrument.PERP_SPECS`, spelled as the exchange spells it:
``"sol"`` is ``SOL``), or the exchange's ``meta`` (``load_config(path, meta=...)``, the CLI's ``--meta FILE``),
or a spec given in full (``sz_decimals`` and ``asset_id``); any other coin is an error listing the shipped ones.
A file that changes the coin must also give that coin's prices and sizes in ``[market]``
(:data:`COIN_MARKET_KEYS`): the base market's (BTC at $90,000, limits in BTC) would be silently wrong.

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
from typing import Any, ClassVar

from pydantic import TypeAdapter, ValidationError

from ._validate import PYDANTIC_CONFIG
from .allocate import ALLOCATORS, Allocator, make_allocator
from .defaults import default_snapshot, default_spec
from .errors import ConfigError, HyperMakeError, InvalidParameterError
from .instrument import PERP_SPECS, InstrumentSpec, shipped_coin, spec_from_meta
from .ladder import LadderConfig
from .snapshot import MarketSnapshot
from .strategy.quoter import QuoterConfig

DEFAULT_ALLOCATOR = "impact"

_SECTIONS = ("market", "instrument", "ladder", "allocator", "quoter", "meta")

#: ``[market]`` keys whose values belong to one coin (prices in USD per coin, sizes in coins): a file that changes
#: the coin must set them (``daily_volume_coins`` may be replaced by a ``volume_profile_coins`` table).
COIN_MARKET_KEYS = ("mid_usd", "best_bid_usd", "best_ask_usd", "max_position_coins", "daily_volume_coins")


@dataclass(frozen=True, kw_only=True)
class ConfigMeta:
    """``[meta]``: where a config file came from (``hyper-make calibrate`` writes it).

    Attributes
    ----------
    source : the data file it was fitted from.
    generated_by : the command that wrote it.
    partial : True when the file does not hold everything its writer meant to fit (commands that load it warn).
    stopped_at : the error that stopped reading the data early (``"FILE: line N: ..."``), or empty.
    not_fitted : what could not be fitted, with why (those sections keep their defaults).
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    source: str = ""
    generated_by: str = ""
    partial: bool = False
    stopped_at: str = ""
    not_fitted: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line on why the file is partial (empty when it is complete)."""
        if not self.partial:
            return ""
        parts = [f"stopped at {self.stopped_at}"] if self.stopped_at else []
        if self.not_fitted:
            parts.append("not fitted: " + "; ".join(self.not_fitted))
        return "partial" + (f" ({'; '.join(parts)})" if parts else "")


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
    meta : the ``[meta]`` section (origin of the file, and whether it is partial).
    quoter : the strategy's requote thresholds, estimator and guards (``[quoter]``), the same in ``simulate``,
        ``backtest`` and ``run``.
    """

    snapshot: MarketSnapshot = field(default_factory=default_snapshot)
    spec: InstrumentSpec = field(default_factory=default_spec)
    ladder: LadderConfig = field(default_factory=LadderConfig)
    allocator_name: str = DEFAULT_ALLOCATOR
    allocator_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: ConfigMeta = field(default_factory=ConfigMeta)
    quoter: QuoterConfig = field(default_factory=QuoterConfig)

    def make_allocator(self, name: str | None = None) -> Allocator:
        """Build allocator ``name`` (default: ``allocator_name``) with its ``[allocator.<name>]`` options."""
        n = name or self.allocator_name
        if n not in ALLOCATORS:
            raise InvalidParameterError(f"'allocator' must be one of {sorted(ALLOCATORS)}; got {n!r}")
        try:
            return make_allocator(n, **self.allocator_options.get(n, {}))
        except HyperMakeError as exc:
            raise ConfigError(f"[allocator.{n}]: {exc}") from None


def load_config(
    path: str | Path | None = None, *, base: AppConfig | None = None, meta: dict[str, Any] | None = None
) -> AppConfig:
    """Read a TOML file and apply it over ``base`` (default: the embedded BTC market and default ladder).

    With the exchange's perp ``meta`` (``{"universe": [...]}``), the instrument's lot (``szDecimals``), asset
    index and spelling come from it, for the file's coin (or the base's when the file names none).

    Raises
    ------
    ConfigError
        Unreadable file, invalid TOML, unknown section or key, wrong type, NaN/inf, out-of-range value, a coin
        without a spec, or a coin change without that coin's market prices and sizes.
    """
    cfg = base if base is not None else AppConfig()
    if path is None:
        return apply_overrides(cfg, {}, meta=meta) if meta is not None else cfg
    return apply_overrides(cfg, read_toml(path), meta=meta)


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML config file; every failure is a one-line :class:`ConfigError` naming the file."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {p} is a directory, expected a TOML file")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {p} is not valid TOML: binary content, not UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None


def apply_overrides(cfg: AppConfig, raw: dict[str, Any], *, meta: dict[str, Any] | None = None) -> AppConfig:
    """Apply a parsed TOML document (nested dicts) over ``cfg``; see :func:`load_config`."""
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"unknown config section {unknown[0]!r}; valid sections are {list(_SECTIONS)}")
    market = _table(raw, "market") if "market" in raw else {}
    spec = _instrument(cfg.spec, _table(raw, "instrument") if "instrument" in raw else {}, meta)
    if spec.coin != cfg.spec.coin:
        missing = [k for k in COIN_MARKET_KEYS if k not in market]
        if "daily_volume_coins" in missing and "volume_profile_coins" in market:
            missing.remove("daily_volume_coins")
        if missing:
            raise ConfigError(
                f"config key 'instrument.coin' = {spec.coin!r} changes the coin from {cfg.spec.coin}, but [market] "
                f"does not set {', '.join(missing)}: these are per coin (USD per coin, coins), so {cfg.spec.coin}'s "
                f"would be used for {spec.coin}; set them in [market]"
            )
    snapshot = _merge(cfg.snapshot, market, "market") if "market" in raw else cfg.snapshot
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
    file_meta = _validate(ConfigMeta, _table(raw, "meta"), "meta") if "meta" in raw else cfg.meta
    quoter = _merge(cfg.quoter, _table(raw, "quoter"), "quoter") if "quoter" in raw else cfg.quoter
    return AppConfig(
        snapshot=snapshot,
        spec=spec,
        ladder=ladder,
        allocator_name=name,
        allocator_options=options,
        meta=file_meta,
        quoter=quoter,
    )


def _instrument(base: InstrumentSpec, section: dict[str, Any], meta: dict[str, Any] | None) -> InstrumentSpec:
    """The spec of ``[instrument]`` over ``base``: from the exchange's ``meta`` if given, else the coin's shipped
    spec, else a spec given in full (``sz_decimals`` and ``asset_id``); the other keys override."""
    rest = {k: v for k, v in section.items() if k != "coin"}
    coin = section.get("coin", base.coin)
    if not isinstance(coin, str) or not coin.strip():
        raise ConfigError(f"config key 'instrument.coin' must be a non-empty string; got {coin!r}")
    if meta is not None:
        try:
            spec = spec_from_meta(meta, coin, min_notional_usd=base.min_notional_usd)
        except HyperMakeError as exc:
            raise ConfigError(str(exc)) from None
        for key in ("sz_decimals", "asset_id"):
            if key in rest and rest[key] != getattr(spec, key):
                raise ConfigError(
                    f"config key 'instrument.{key}' = {rest[key]!r} disagrees with the exchange's meta "
                    f"({spec.coin}: {getattr(spec, key)!r}); remove it"
                )
        return _merge(spec, rest, "instrument")
    shipped = shipped_coin(coin)
    if shipped == base.coin or coin == base.coin:
        return _merge(base, rest, "instrument")
    if shipped is not None:
        return _merge(PERP_SPECS[shipped], rest, "instrument")
    if "sz_decimals" in rest and "asset_id" in rest:
        return _validate(InstrumentSpec, {**rest, "coin": coin.strip()}, "instrument")
    raise ConfigError(
        f"config key 'instrument.coin' = {coin!r} has no shipped spec (shipped: {', '.join(sorted(PERP_SPECS))}): "
        "give its sz_decimals and asset_id in [instrument], or the exchange's meta (--meta FILE)"
    )


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
        if hint is bool and not isinstance(value, bool):
            raise ConfigError(f"config key '{path}.{key}' must be true or false; got {value!r}")
        numbers = set(typing.get_args(hint)) <= {float, int, type(Ellipsis)}
        if typing.get_origin(hint) is tuple and numbers and isinstance(value, (list, tuple)):
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
        raise ConfigError(_one_line(exc, path, cls)) from None
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
        raise ConfigError(_one_line(exc, f"allocator.{name}", cls)) from None
    except ConfigError:
        raise
    except HyperMakeError as exc:
        raise ConfigError(_prefixed(str(exc), f"allocator.{name}")) from None


def _class_at(cls: type, loc: tuple[Any, ...]) -> type | None:
    """The dataclass holding the field at pydantic location ``loc`` (field names, union branch class names)."""
    candidates: list[type] = [cls]
    for seg in loc:
        named = [c for c in candidates if c.__name__ == seg]
        if named:  # a tagged-union branch: pydantic puts the class name in the location
            candidates = named
            continue
        if len(candidates) != 1 or not isinstance(seg, str):
            return None
        hint = typing.get_type_hints(candidates[0]).get(seg)
        members = [m for m in (typing.get_args(hint) or (hint,)) if dataclasses.is_dataclass(m)]
        if not members:
            return None
        candidates = members  # type: ignore[assignment]
    return candidates[0] if len(candidates) == 1 else None


def _one_line(exc: ValidationError, path: str, cls: type | None = None) -> str:
    """The first relevant pydantic error as ``config key 'a.b.c': message; got value``.

    For a field that is a union of models told apart by ``kind``, the errors of the branches whose ``kind`` does
    not match are left out: the error shown is the one of the model the file asked for.
    """
    errors = exc.errors()
    wrong = [tuple(e["loc"][:-1]) for e in errors if e["loc"][-1:] == ("kind",) and e["type"] == "literal_error"]
    relevant = [e for e in errors if not any(tuple(e["loc"])[: len(w)] == w for w in wrong)] or errors
    err = relevant[0]
    loc_all = tuple(err.get("loc", ()))
    # tagged-union branches add the class name to the location; keep only field names and indices
    loc = [x for x in loc_all if not str(x)[:1].isupper()]
    key = path
    for x in loc:  # array elements as key[i]
        key += f"[{x}]" if isinstance(x, int) else f".{x}"
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        owner = _class_at(cls, loc_all[:-1]) if cls is not None else None
        if owner is None:
            return f"unknown config key {key!r}"
        valid = [f.name for f in dataclasses.fields(owner) if f.init]
        model = next((f.default for f in dataclasses.fields(owner) if f.name == "kind"), None)
        of_kind = f" for kind {model!r}" if isinstance(model, str) else ""
        return f"unknown config key {key!r}{of_kind}; valid keys are {valid}"
    if kind == "value_error":
        return _prefixed(msg.removeprefix("Value error, "), path)
    got = err.get("input")
    return f"config key {key!r}: {msg}; got {got!r}"
