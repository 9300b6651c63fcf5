"""Exceptions raised by hyper_make.

Every error names the offending field (with its TOML path where it came from a config file), the
allowed range with its unit, and the value received, so that the fix is in the message::

    HyperMakeError
    ├── InvalidParameterError (also a ValueError)   a field is out of range, NaN/inf, or of the wrong type
    │   ├── ConfigError                             a TOML config file is unreadable or has a wrong key
    │   └── PrivateKeyError                         the signing key is missing or malformed (never shows the key)
    ├── DataError (also a ValueError)                a recorded data file is corrupt or of an unknown format
    └── ExchangeError                                the exchange (or the local one) refused an action
        └── RateLimited                              sending now would exceed the exchange's rate limits
"""

from __future__ import annotations


class HyperMakeError(Exception):
    """Base class of every error hyper_make raises on purpose."""


class InvalidParameterError(HyperMakeError, ValueError):
    """A parameter is out of its allowed range, non-finite, or of the wrong type."""


class ConfigError(InvalidParameterError):
    """A configuration file cannot be read, or holds an unknown key or a bad value."""


class PrivateKeyError(InvalidParameterError):
    """The signing key is missing, malformed, or its keystore cannot be decrypted (the message never holds the key)."""


class DataError(HyperMakeError, ValueError):
    """A data file is corrupt, truncated, out of order, or of an unknown format."""


class ExchangeError(HyperMakeError):
    """The exchange rejected or could not process an action."""


class RateLimited(ExchangeError):
    """A request was held back because it would exceed the exchange's rate limits; ``wait_s`` says for how long."""

    def __init__(self, message: str, wait_s: float) -> None:
        super().__init__(message)
        self.wait_s = wait_s
