"""The signing key: environment or encrypted keystore; clear one-line errors; the key never shows anywhere."""

from __future__ import annotations

import json
import traceback

import pytest
from eth_account import Account
from typer.testing import CliRunner

from hyper_make.cli import app
from hyper_make.connectors.keys import (
    ENV_KEYSTORE,
    ENV_KEYSTORE_PASSWORD,
    ENV_PRIVATE_KEY,
    ephemeral_wallet,
    load_wallet,
    wallet_from_hex,
)
from hyper_make.errors import InvalidParameterError, PrivateKeyError

KEY_HEX = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = Account.from_key("0x" + KEY_HEX).address
#: the order of secp256k1: a 64-hex-digit value that is not a valid key
CURVE_ORDER = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"


def leaks(text: str, secret: str) -> bool:
    """Whether ``secret`` (hex, any case, with or without 0x) or a long piece of it appears in ``text``."""
    t = text.lower()
    s = secret.lower().removeprefix("0x")
    return any(s[i : i + 16] in t for i in range(0, len(s) - 15, 8))


def error_text(exc: BaseException) -> str:
    """Everything a user could see of an exception: message, repr, and the full chained traceback."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


@pytest.fixture
def keystore(tmp_path):
    path = tmp_path / "key.json"
    # pbkdf2 with few iterations: the format of a real keystore, fast enough for a test
    path.write_text(json.dumps(Account.encrypt("0x" + KEY_HEX, "correct horse", kdf="pbkdf2", iterations=2)))
    return path


@pytest.mark.parametrize("key", [KEY_HEX, "0x" + KEY_HEX, "0X" + KEY_HEX.upper(), f"  {KEY_HEX}\n"])
def test_key_from_the_environment(key):
    assert load_wallet(env={ENV_PRIVATE_KEY: key}).address == ADDRESS


def test_missing_key_is_a_clear_error():
    with pytest.raises(PrivateKeyError, match=f"no signing key: set {ENV_PRIVATE_KEY}") as exc:
        load_wallet(env={})
    assert isinstance(exc.value, InvalidParameterError)


@pytest.mark.parametrize(
    ("bad", "msg"),
    [
        (KEY_HEX[:-2], "is malformed: expected 32 bytes as 64 hex digits"),
        (KEY_HEX[:-1] + "g", "is malformed"),
        (KEY_HEX + "00", "is malformed"),
        ("0" * 64, "is not a valid secp256k1 private key"),
        (CURVE_ORDER, "is not a valid secp256k1 private key"),
    ],
)
def test_malformed_keys_never_appear_in_the_error(bad, msg):
    with pytest.raises(PrivateKeyError, match=msg) as exc:
        load_wallet(env={ENV_PRIVATE_KEY: bad})
    text = error_text(exc.value)
    assert "\n" not in str(exc.value)
    if bad.strip("0"):
        assert not leaks(text, bad)
    assert exc.value.__context__ is None and exc.value.__cause__ is None


def test_keystore_with_the_password_from_the_environment(keystore):
    w = load_wallet(keystore=keystore, env={ENV_KEYSTORE_PASSWORD: "correct horse"})
    assert w.address == ADDRESS
    # the keystore path may also come from the environment, and wins over a raw key
    w = load_wallet(env={ENV_KEYSTORE: str(keystore), ENV_KEYSTORE_PASSWORD: "correct horse", ENV_PRIVATE_KEY: "x"})
    assert w.address == ADDRESS


def test_keystore_password_is_prompted_only_on_a_terminal(keystore):
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "correct horse"

    assert load_wallet(keystore=keystore, env={}, prompt=prompt, interactive=True).address == ADDRESS
    assert len(asked) == 1 and "password" in asked[0]
    with pytest.raises(PrivateKeyError, match=f"needs a password: set {ENV_KEYSTORE_PASSWORD}"):
        load_wallet(keystore=keystore, env={}, prompt=prompt, interactive=False)


def test_keystore_errors(keystore, tmp_path):
    with pytest.raises(PrivateKeyError, match="wrong password") as exc:
        load_wallet(keystore=keystore, env={ENV_KEYSTORE_PASSWORD: "wrong"})
    assert not leaks(error_text(exc.value), KEY_HEX) and "wrong" not in str(exc.value).replace("wrong password", "")
    bad = tmp_path / "bad.json"
    bad.write_text('{"address": "00"}')
    with pytest.raises(PrivateKeyError, match="is not an Ethereum V3 keystore"):
        load_wallet(keystore=bad, env={ENV_KEYSTORE_PASSWORD: "x"})
    with pytest.raises(PrivateKeyError, match="keystore file not found"):
        load_wallet(keystore=tmp_path / "missing.json", env={ENV_KEYSTORE_PASSWORD: "x"})


def test_wallet_repr_and_ephemeral_keys_do_not_show_the_key():
    w = wallet_from_hex(KEY_HEX)
    assert not leaks(repr(w) + str(w), KEY_HEX)
    a, b = ephemeral_wallet(), ephemeral_wallet()
    assert a.address != b.address


runner = CliRunner()


def test_the_cli_never_prints_the_key(monkeypatch):
    monkeypatch.setenv(ENV_PRIVATE_KEY, "0x" + KEY_HEX)
    for args in (["--json"], []):
        res = runner.invoke(app, ["orders", "--dry-run", *args])
        assert res.exit_code == 0, res.output
        assert ADDRESS in res.stdout or ADDRESS[:10] in res.stdout
        assert not leaks(res.stdout + res.stderr, KEY_HEX)


@pytest.mark.parametrize("bad", [KEY_HEX[:-3], CURVE_ORDER])
def test_the_cli_turns_a_bad_key_into_one_line_and_exit_2(monkeypatch, bad):
    monkeypatch.setenv(ENV_PRIVATE_KEY, bad)
    res = runner.invoke(app, ["orders", "--dry-run", "--json"])
    assert res.exit_code == 2
    assert res.stdout == ""
    assert res.stderr.startswith("error: HYPER_MAKE_PRIVATE_KEY is") and res.stderr.count("\n") == 1
    assert not leaks(res.stderr, bad)
