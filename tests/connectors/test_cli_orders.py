"""``hyper-make orders --dry-run``: the JSON it prints, signatures, resting files, meta files, refusals."""

from __future__ import annotations

import json

import pytest
from hyperliquid.utils.constants import MAINNET_API_URL, TESTNET_API_URL
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action
from typer.testing import CliRunner

from helpers import DOGE_MARKET_TOML
from hyper_make import InstrumentSpec, InvalidParameterError
from hyper_make.cli import app
from hyper_make.connectors.hyperliquid import order_request, order_wire
from hyper_make.connectors.keys import ENV_KEYSTORE, ENV_PRIVATE_KEY

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_key_in_env(monkeypatch):
    monkeypatch.delenv(ENV_PRIVATE_KEY, raising=False)
    monkeypatch.delenv(ENV_KEYSTORE, raising=False)


def run(*args: str):
    return runner.invoke(app, ["orders", *args])


def dry_json(*args: str) -> dict:
    res = run("--dry-run", "--json", "--ephemeral-key", *args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_dry_run_json_schema_and_signatures():
    d = dry_json("--allocator", "entropy", "--schedule-cancel-s", "30")
    for key in ("dry_run", "sent", "coin", "network", "base_url", "signer", "plan", "rate_limits", "requests"):
        assert key in d
    assert d["dry_run"] is True and d["sent"] is False and d["ephemeral_key"] is True
    assert (d["coin"], d["network"], d["base_url"]) == ("BTC", "mainnet", MAINNET_API_URL)
    plan = d["plan"]
    n = d["desired"]["bids"] + d["desired"]["asks"]
    assert plan["n_actions"] == len(plan["places"]) == n > 0 and not plan["cancels"] and not plan["modifies"]
    kinds = [r["kind"] for r in d["requests"]]
    assert kinds == ["schedule_cancel", "order"]
    assert d["rate_limits"]["address_requests"] == n + 1
    nonces = [r["payload"]["nonce"] for r in d["requests"]]
    assert nonces == sorted(set(nonces))
    for r in d["requests"]:
        p = r["payload"]
        signer = recover_agent_or_user_from_l1_action(p["action"], p["signature"], None, p["nonce"], None, True)
        assert signer == d["signer"]
        assert p["vaultAddress"] is None and p["expiresAfter"] is None
    for w in d["requests"][1]["payload"]["action"]["orders"]:
        assert w["t"] == {"limit": {"tif": "Alo"}} and w["a"] == 0 and w["c"].startswith("0x") and len(w["c"]) == 34


def test_testnet_flag_signs_for_testnet():
    d = dry_json("--testnet")
    assert (d["network"], d["base_url"]) == ("testnet", TESTNET_API_URL)
    p = d["requests"][0]["payload"]
    assert (
        recover_agent_or_user_from_l1_action(p["action"], p["signature"], None, p["nonce"], None, False)
        == (d["signer"])
    )


def test_same_seed_same_plan_and_replanning_from_its_own_output_does_nothing(tmp_path):
    a, b = dry_json("--seed", "4"), dry_json("--seed", "4")
    assert a["plan"] == b["plan"]
    fields = ("side", "price", "size", "cloid", "reduce_only")
    resting = [{k: o[k] for k in fields} for o in a["plan"]["places"]]
    path = tmp_path / "resting.json"
    path.write_text(json.dumps(resting))
    c = dry_json("--seed", "4", "--resting", str(path))
    assert c["plan"]["n_actions"] == 0 and len(c["plan"]["kept"]) == len(resting) and c["requests"] == []


def test_resting_orders_in_hyperliquid_format_are_diffed(tmp_path):
    rows = [
        {"coin": "BTC", "side": "B", "limitPx": "80000.0", "sz": "0.01", "oid": 1, "cloid": None},
        {"coin": "ETH", "side": "A", "limitPx": "3000.0", "sz": "1.0", "oid": 2, "cloid": None},
    ]
    path = tmp_path / "open_orders.json"
    path.write_text(json.dumps(rows))
    d = dry_json("--resting", str(path))
    assert d["resting"] == 1  # the ETH order is not this market's
    assert len(d["plan"]["modifies"]) == 1 and d["plan"]["modifies"][0]["target_oid"] == 1
    (mod,) = [r for r in d["requests"] if r["kind"] == "modify"]
    assert mod["payload"]["action"]["modifies"][0]["oid"] == 1


def test_meta_file_sets_the_asset_index_and_lot(tmp_path):
    meta = {"universe": [{"name": "ETH", "szDecimals": 4}, {"name": "BTC", "szDecimals": 4}]}
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(meta))
    d = dry_json("--meta", str(path))
    assert d["asset"] == 1
    for w in d["requests"][0]["payload"]["action"]["orders"]:
        assert w["a"] == 1 and len(w["s"].partition(".")[2]) <= 4


def test_human_output_says_nothing_was_sent():
    res = run("--dry-run", "--ephemeral-key")
    assert res.exit_code == 0, res.output
    assert "Nothing was sent." in res.stdout and "throwaway key" in res.stderr


def test_without_dry_run_it_refuses_in_one_line():
    res = run("--ephemeral-key", "--json")
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.startswith("error: 'orders' only prints") and res.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["--resting", "missing.json"], "error: file not found: missing.json"),
        (["--schedule-cancel-s", "2"], "error: '--schedule-cancel-s' must be >= 5 s"),
        (["--requote-size-frac", "1.5"], "error: '--requote-size-frac' must be in [0, 1)"),
        (["--base-url", "ftp://x"], "error: 'base_url' must be an http(s) URL"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, msg):
    res = run("--dry-run", "--ephemeral-key", "--json", *args)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(msg) and res.stderr.count("\n") == 1


def test_bad_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "resting.json"
    bad.write_text("[{")
    res = run("--dry-run", "--ephemeral-key", "--resting", str(bad))
    assert res.exit_code == 2 and "not JSON" in res.stderr
    meta = tmp_path / "meta.json"
    meta.write_text('{"universe": [{"name": "ETH", "szDecimals": 4}]}')
    res = run("--dry-run", "--ephemeral-key", "--meta", str(meta))
    assert res.exit_code == 2 and "'coin' 'BTC' is not in the exchange's meta" in res.stderr


DOGE_MARKET = DOGE_MARKET_TOML + '[instrument]\ncoin = "doge"\n'


def test_a_coin_without_shipped_spec_signs_with_the_asset_index_of_the_meta(tmp_path):
    cfg = tmp_path / "doge.toml"
    cfg.write_text(DOGE_MARKET)
    res = run("--dry-run", "--ephemeral-key", "--json", "--config", str(cfg))
    assert res.exit_code == 2 and "'DOGE' has no shipped spec" not in res.stderr  # spelled as typed until resolved
    assert "'doge' has no shipped spec" in res.stderr and res.stderr.count("\n") == 1
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"universe": [{"name": n, "szDecimals": 2} for n in ("BTC", "ETH")]
                                + [{"name": "DOGE", "szDecimals": 0}]}))  # fmt: skip
    d = dry_json("--config", str(cfg), "--meta", str(meta))
    assert (d["coin"], d["asset"]) == ("DOGE", 2)
    orders = d["requests"][0]["payload"]["action"]["orders"]
    assert orders and all(w["a"] == 2 and "." not in w["s"] for w in orders)  # DOGE's index, whole-coin lots


def test_a_spec_given_in_full_signs_with_its_own_asset_index(tmp_path):
    cfg = tmp_path / "doge.toml"
    cfg.write_text(DOGE_MARKET + "sz_decimals = 0\nasset_id = 173\n")
    d = dry_json("--config", str(cfg))
    assert (d["coin"], d["asset"]) == ("doge", 173)
    assert all(w["a"] == 173 for w in d["requests"][0]["payload"]["action"]["orders"])


def test_the_signer_refuses_a_spec_without_asset_index():
    spec = InstrumentSpec(coin="DOGE", sz_decimals=0)
    with pytest.raises(InvalidParameterError, match="'asset_id' of DOGE is unknown, so no order can be signed"):
        order_wire(spec, order_request(spec, "bid", 0.3, 100.0, False, f"0x{1:032x}"))


@pytest.mark.parametrize("option", ["--meta", "--resting"])
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x94\x1f\x8b\x00\xff binary", "not JSON (binary content, not UTF-8 at byte 0)"),
        (b"", "empty file, expected JSON"),
        (b"{'a': 1}", "not JSON (Expecting property name enclosed in double quotes at line 1)"),
    ],
)
def test_binary_empty_or_malformed_json_files_are_one_line_errors(tmp_path, option, content, message):
    path = tmp_path / "file.json"
    path.write_bytes(content)
    res = run("--dry-run", "--ephemeral-key", option, str(path))
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1 and message in res.stderr
    res = run("--dry-run", "--ephemeral-key", option, str(tmp_path))
    assert res.exit_code == 2 and "is a directory, expected a JSON file" in res.stderr
