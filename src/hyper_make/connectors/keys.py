"""The signing key: from an environment variable or an encrypted keystore file, never shown.

Sources, in order:

1. ``keystore=PATH`` (or ``HYPER_MAKE_KEYSTORE``): an Ethereum V3 keystore JSON (eth-account
   ``Account.encrypt``), decrypted with the password from ``HYPER_MAKE_KEYSTORE_PASSWORD`` or, when a terminal
   is attached, a hidden prompt;
2. ``HYPER_MAKE_PRIVATE_KEY``: 32 bytes as 64 hex digits, ``0x`` optional.

The key is never printed, logged, put in an exception message, a repr, or an exception's context: errors are
raised outside the ``except`` block that saw the library's exception, so not even a chained traceback can show
it. Only the public address leaves this module (``wallet.address``).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ..errors import PrivateKeyError

#: Environment variable holding the private key (hex).
ENV_PRIVATE_KEY = "HYPER_MAKE_PRIVATE_KEY"
#: Environment variable holding the path of an encrypted keystore file.
ENV_KEYSTORE = "HYPER_MAKE_KEYSTORE"
#: Environment variable holding the keystore's password.
ENV_KEYSTORE_PASSWORD = "HYPER_MAKE_KEYSTORE_PASSWORD"

_HEX = frozenset("0123456789abcdefABCDEF")


def wallet_from_hex(key: str, source: str = ENV_PRIVATE_KEY) -> LocalAccount:
    """A wallet from a hex private key (32 bytes, ``0x`` optional); ``source`` names where it came from.

    Raises
    ------
    PrivateKeyError
        If the key is not 64 hex digits or not a valid secp256k1 key (the message never contains the key).
    """
    s = key.strip() if isinstance(key, str) else ""
    body = s[2:] if s[:2] in ("0x", "0X") else s
    if len(body) != 64 or not set(body) <= _HEX:
        raise PrivateKeyError(f"{source} is malformed: expected 32 bytes as 64 hex digits (0x optional)")
    wallet: LocalAccount | None = None
    try:
        wallet = Account.from_key("0x" + body)
    except Exception:  # eth-account rejects 0 and keys >= the curve order
        wallet = None
    if wallet is None:  # raised here, outside the except block: no chained context carries the key
        raise PrivateKeyError(f"{source} is not a valid secp256k1 private key")
    return wallet


def wallet_from_keystore(path: str | Path, password: str) -> LocalAccount:
    """A wallet from an encrypted keystore file (eth-account V3 JSON) and its password.

    Raises
    ------
    PrivateKeyError
        If the file is missing, not a keystore, or the password is wrong.
    """
    p = Path(path)
    if not p.is_file():
        raise PrivateKeyError(f"keystore file not found: {p}")
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("crypto", data.get("Crypto")), dict):
        raise PrivateKeyError(f"keystore file {p} is not an Ethereum V3 keystore (JSON with a 'crypto' object)")
    raw: bytes | None = None
    failure = ""
    try:
        raw = bytes(Account.decrypt(data, password))
    except ValueError as exc:
        failure = "wrong password" if "MAC mismatch" in str(exc) else "cannot decrypt it"
    except Exception:
        failure = "cannot decrypt it"
    if raw is None:
        raise PrivateKeyError(f"keystore file {p}: {failure}")
    return wallet_from_hex(raw.hex(), source=f"keystore file {p}")


def load_wallet(
    *,
    keystore: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
    interactive: bool | None = None,
) -> LocalAccount:
    """The signing wallet from a keystore (``keystore`` or ``$HYPER_MAKE_KEYSTORE``) or ``$HYPER_MAKE_PRIVATE_KEY``.

    Parameters
    ----------
    keystore : path of an encrypted keystore; overrides the environment.
    env : environment to read (default ``os.environ``).
    prompt : asks for the keystore password (default ``getpass.getpass``, which does not echo).
    interactive : whether a terminal is attached to prompt on (default: ``sys.stdin.isatty()``).

    Raises
    ------
    PrivateKeyError
        No key configured, a malformed key, an unreadable keystore, or a keystore password that is neither in
        the environment nor can be asked for.
    """
    e = os.environ if env is None else env
    ks = keystore if keystore is not None else e.get(ENV_KEYSTORE) or None
    if ks is not None:
        password = e.get(ENV_KEYSTORE_PASSWORD)
        if password is None:
            tty = sys.stdin.isatty() if interactive is None else interactive
            if not tty:
                raise PrivateKeyError(
                    f"keystore {ks} needs a password: set {ENV_KEYSTORE_PASSWORD} or run on a terminal to be asked"
                )
            password = (prompt or getpass.getpass)(f"password for keystore {ks}: ")
        return wallet_from_keystore(ks, password)
    key = e.get(ENV_PRIVATE_KEY)
    if not key:
        raise PrivateKeyError(
            f"no signing key: set {ENV_PRIVATE_KEY} (hex), or {ENV_KEYSTORE} / --keystore FILE (encrypted keystore)"
        )
    return wallet_from_hex(key)


def ephemeral_wallet() -> LocalAccount:
    """A freshly generated throwaway wallet (random key, never stored): to inspect signed payloads without a key."""
    return Account.create()
