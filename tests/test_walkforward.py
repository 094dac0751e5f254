"""Walk-forward on every crypto (issue 12): windows on each crypto's calendar, no look-ahead, in-sample equal to a
/sweep on the train span, out-of-sample equal to /backtest on the test span, the same at any worker count."""
from __future__ import annotations

import csv
import io
import math

import numpy as np
import pandas as pd
import pytest

from api.db.repository import epoch_of_iso
from api.services import walkforward_run
from api.services.batches import WALK_FORWARD_HEAD
from api.services.errors import ValidationFailed
from api.services.price_import import import_csv
from api.services.results import iso_utc
from api.services.selection import Selection
from tests import test_result_cache as result_cache

WF = "/api/crypto/backtest/walkforward"
GRID = {"rsi_period": [5, 9], "oversold_threshold": [30, 40]}
FIXED = {"overbought_threshold": 60}
PICK = Selection(symbols=("SYN001", "SYN002", "SYN003", "SYN004"))


def _candles(n: int, seed: int, start: str = "2024-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.04, n)))
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame({"Date": pd.date_range(start, periods=n, freq="1D").strftime("%Y-%m-%d %H:%M:%S"),
                         "Open": open_, "High": np.maximum(open_, close) * 1.01,
                         "Low": np.minimum(open_, close) * 0.99, "Close": close, "Volume": np.ones(n)})


def _load(engine, tmp_path, symbol: str, frame: pd.DataFrame) -> None:
    path = tmp_path / f"{symbol}.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    assert import_csv(engine, path).rows_rejected == 0


def _run(service, **options):
    run = dict(strategy_id=1, grid=GRID, fixed=FIXED, train_days=30, test_days=10, use_parallel=False, store=False)
    return service.run_walk_forward(**{**run, **options})


def test_windows_are_laid_on_a_hand_made_calendar(services, empty_db, tmp_path) -> None:
    _load(empty_db, tmp_path, "ABCUSDT", _candles(100, seed=1))  # 2024-01-01 .. 2024-04-09
    rolling = _run(services[2])["results"][0]
    assert rolling["error"] is None and len(rolling["windows"]) == 7  # s = 0, 10, ..., 60 days: s + 40 <= 100
    first, last = rolling["windows"][0], rolling["windows"][-1]
    assert (first["train_start"], first["train_end"], first["test_start"], first["test_end"]) == (
        "2024-01-01T00:00:00Z", "2024-01-31T00:00:00Z", "2024-01-31T00:00:00Z", "2024-02-10T00:00:00Z")
    assert (last["train_start"], last["test_end"]) == ("2024-03-01T00:00:00Z", "2024-04-10T00:00:00Z")
    assert all((w["train_candles"], w["test_candles"]) == (30, 10) for w in rolling["windows"])
    anchored = _run(services[2], anchored=True)["results"][0]["windows"]
    assert [w["train_start"] for w in anchored] == ["2024-01-01T00:00:00Z"] * 7
    assert [w["train_candles"] for w in anchored] == [30 + 10 * k for k in range(7)]
    stepped = _run(services[2], step_days=20)["results"][0]["windows"]
    assert [w["test_start"] for w in stepped] == ["2024-01-31T00:00:00Z", "2024-02-20T00:00:00Z",
                                                  "2024-03-11T00:00:00Z", "2024-03-31T00:00:00Z"]


def test_in_sample_equals_a_sweep_on_the_train_span_and_out_of_sample_a_backtest_on_the_test_span(
        services, empty_db, tmp_path) -> None:
    _load(empty_db, tmp_path, "ABCUSDT", _candles(100, seed=2))
    service = services[2]
    answer = _run(service)
    windows = answer["results"][0]["windows"]
    assert sum(w["in_sample"]["num_trades"] > 0 for w in windows) >= 3  # the choice had something to choose from
    for w in windows:
        train = Selection(("ABCUSDT",), epoch_of_iso(w["train_start"]), epoch_of_iso(w["train_end"]) - 1)
        sweep = service.run_grid_sweep(1, GRID, FIXED, use_parallel=False, store=False, use_cache=False,
                                       selection=train, top=4)
        rows = {_key(s["parameters"]): s["results"][0] for s in sweep["top"]}
        assert len(rows) == 4
        chosen = rows[_key(w["parameters"])]
        assert {k: chosen[k] for k in w["in_sample"]} == w["in_sample"]
        sharpes = [r["sharpe_ratio"] for r in rows.values() if r["sharpe_ratio"] is not None]
        assert w["in_sample"]["sharpe_ratio"] == max(sharpes)
        test = Selection(None, epoch_of_iso(w["test_start"]), epoch_of_iso(w["test_end"]) - 1)
        single = service.run_single_backtest(1, w["parameters"], symbol="ABCUSDT", store=False, selection=test)
        assert {k: single["result"][k] for k in w["out_of_sample"]} == w["out_of_sample"]
        assert single["result"]["candles"] == w["test_candles"] == 10


def _key(params):
    return tuple(sorted(params.items()))


@pytest.mark.parametrize("select", ["per_crypto", "universe"])
def test_no_look_ahead_candles_after_a_window_change_nothing_in_it(services, empty_db, tmp_path, select) -> None:
    _load(empty_db, tmp_path, "ABCUSDT", _candles(100, seed=3))
    _load(empty_db, tmp_path, "XYZUSDT", _candles(100, seed=4))
    before = _run(services[2], select=select)
    changed = _candles(100, seed=3)
    later = changed.index >= 60  # from 2024-03-01, where window 2's test span [Feb 20, Mar 1) ends
    changed.loc[later, ["Open", "High", "Low", "Close"]] *= np.linspace(0.5, 2.0, later.sum())[:, None]
    _load(empty_db, tmp_path, "ABCUSDT", changed)
    after = _run(services[2], select=select)
    for b, a in zip(before["results"], after["results"]):
        assert b["symbol"] == a["symbol"]
        fixed = [w for w in b["windows"] if epoch_of_iso(w["test_end"]) <= epoch_of_iso("2024-03-01T00:00:00Z")]
        assert len(fixed) == 3 and fixed == a["windows"][:3]
    abc = lambda answer: next(r for r in answer["results"] if r["symbol"] == "ABCUSDT")  # noqa: E731
    assert abc(before)["windows"][3:] != abc(after)["windows"][3:]  # the change did reach the later windows


@pytest.mark.parametrize("select", ["per_crypto", "universe"])
def test_identical_sequential_and_at_one_and_two_workers(services, demo_db, select) -> None:
    run = dict(train_days=120, test_days=60, select=select, selection=PICK, equity_curve=True)
    seq = _run(services[2], **run)
    one = _run(services[1], **run, use_parallel=True)
    two = _run(services[2], **run, use_parallel=True)
    assert not seq["summary"]["parallel"] and one["summary"]["processes"] == 1 and two["summary"]["processes"] == 2
    assert seq["results"] == one["results"] == two["results"]
    assert sorted(r["symbol"] for r in seq["results"]) == list(PICK.symbols)
    assert all(r["error"] is None and len(r["windows"]) == 4 for r in seq["results"])  # (400 - 120) // 60 windows


def test_universe_chooses_per_window_the_best_median_over_the_cryptos(services, demo_db) -> None:
    service = services[2]
    answer = _run(service, train_days=120, test_days=60, select="universe", selection=PICK)
    choices = answer["summary"]["choices"]
    assert [c["window"] for c in choices] == [0, 1, 2, 3] and all(c["cryptos"] == 4 for c in choices)
    for c in choices:
        assert all(r["windows"][c["window"]]["parameters"] == c["parameters"] for r in answer["results"])
        w = answer["results"][0]["windows"][c["window"]]
        train = Selection(PICK.symbols, epoch_of_iso(w["train_start"]), epoch_of_iso(w["train_end"]) - 1)
        sweep = service.run_grid_sweep(1, GRID, FIXED, use_parallel=False, store=False, use_cache=False,
                                       selection=train, top=4)
        medians = {_key(s["parameters"]): np.median([r["sharpe_ratio"] for r in s["results"]
                                                    if r["sharpe_ratio"] is not None]) for s in sweep["top"]}
        assert medians[_key(c["parameters"])] == max(medians.values()) == pytest.approx(c["median"], rel=1e-12)


def test_the_chained_account_compounds_the_test_runs(services, demo_db) -> None:
    answer = _run(services[2], train_days=100, test_days=50, selection=PICK)
    for r in answer["results"]:
        tested = [w for w in r["windows"] if w["out_of_sample"] is not None]
        growth = math.prod(1 + w["out_of_sample"]["total_return"] / 100 for w in tested)
        assert r["out_of_sample"]["total_return"] == pytest.approx((growth - 1) * 100, rel=1e-9, abs=1e-9)
        assert r["out_of_sample"]["num_trades"] >= sum(w["out_of_sample"]["num_trades"] for w in tested)
        assert len(r["equity_curve"]) == sum(w["test_candles"] for w in tested)
        assert r["equity_curve"][0]["time"] == tested[0]["test_start"]
        assert r["equity_curve"][-1]["equity"] == pytest.approx(r["out_of_sample"]["final_value"], rel=1e-12)
    summary = answer["summary"]
    assert summary["windows"] == summary["windows_tested"] == 4 * 6  # (400 - 100) // 50 windows per crypto
    oos = [w["out_of_sample"]["total_return"] for r in answer["results"] for w in r["windows"]]
    assert summary["out_of_sample"]["median_return"] == pytest.approx(float(np.median(oos)))
    assert summary["out_of_sample"]["profitable_windows"] == pytest.approx(
        100.0 * sum(x > 0 for x in oos) / len(oos))
    is_median = summary["in_sample"]["median_return"]
    if is_median > 0:
        assert summary["decay_ratio"] == pytest.approx((np.median(oos) / 50) / (is_median / 100))
    else:
        assert summary["decay_ratio"] is None


def test_a_crypto_too_short_for_a_window_gets_its_own_error(services, empty_db, tmp_path) -> None:
    _load(empty_db, tmp_path, "LONGUSDT", _candles(100, seed=5))
    _load(empty_db, tmp_path, "SHORTUSDT", _candles(30, seed=6))
    answer = _run(services[2], train_days=30, test_days=10)
    by = {r["symbol"]: r for r in answer["results"]}
    assert by["LONGUSDT"]["error"] is None and by["SHORTUSDT"]["error"]["code"] == "insufficient_data"
    assert "40 days" in by["SHORTUSDT"]["error"]["message"]
    assert all(w["test_candles"] == 10 for w in by["LONGUSDT"]["windows"])
    assert answer["summary"]["failed"] == 1 and answer["summary"]["successful"] == 1


def test_candles_changed_between_the_passes_are_that_cryptos_error(services, demo_db, monkeypatch) -> None:
    real = walkforward_run.choose_per_crypto

    def choose_then_import(trained, rank_by):
        if trained.header["symbol"] == "SYN002":
            result_cache.add_a_candle(demo_db, "SYN002")  # an import lands between training and testing
        return real(trained, rank_by)

    monkeypatch.setattr(walkforward_run, "choose_per_crypto", choose_then_import)
    answer = _run(services[2], train_days=120, test_days=60, selection=PICK)
    by = {r["symbol"]: r for r in answer["results"]}
    assert by["SYN002"]["error"]["code"] == "data_changed" and by["SYN002"]["windows"] == []
    assert all(by[s]["error"] is None for s in ("SYN001", "SYN003", "SYN004"))


@pytest.mark.parametrize("options, field", [
    ({"train_days": 0}, "train_days"), ({"test_days": -1}, "test_days"), ({"train_days": "30"}, "train_days"),
    ({"step_days": 5}, "step_days"), ({"rank_by": "luck"}, "rank_by"), ({"select": "all"}, "select"),
    ({"anchored": "yes"}, "anchored"), ({"train_days": 5000}, "train_days"), ({"test_days": 1e-9}, "test_days"),
    ({"train_days": 1, "test_days": 0.001}, "test_days"), ({"train_days": 0.5}, "train_days"), ({"train_days": 1, "test_days": 1, "step_days": 0.001},
                                                          "step_days"),
    ({"grid": {"rsi_period": list(range(2, 400))}, "fixed": None}, "grid"), ({"grid": {"nope": [1]}}, "grid.nope")])
def test_bad_options_name_the_field(services, demo_db, options, field) -> None:
    service = services[2]
    service.max_sweep_backtests = 10_000
    with pytest.raises(ValidationFailed) as info:
        _run(service, **options)
    assert field in [e["field"] for e in info.value.errors], info.value.errors


def test_the_route_answers_stores_and_exports(client, services, demo_db) -> None:
    body = {"strategy_id": 1, "grid": GRID, "fixed": FIXED, "train_days": 120, "test_days": 60,
            "symbols": list(PICK.symbols), "use_parallel": False}
    resp = client.post(WF, json=body)
    assert resp.status_code == 200, resp.get_json()
    answer = resp.get_json()
    direct = _run(services[2], train_days=120, test_days=60, selection=PICK)
    assert answer["results"] == direct["results"]
    batch = answer["summary"]["batch_id"]
    assert client.get(f"/api/crypto/backtest/batches/{batch}").get_json() == answer
    listed = client.get("/api/crypto/backtest/batches").get_json()["batches"][0]
    assert listed["kind"] == "walkforward" and listed["cryptos"] == 4
    rows = list(csv.DictReader(io.StringIO(client.get(f"/api/crypto/backtest/batches/{batch}?format=csv").text)))
    assert list(rows[0]) == list(WALK_FORWARD_HEAD) and len(rows) == 4 * 4 + 4
    first = answer["results"][0]
    mine = [r for r in rows if r["symbol"] == first["symbol"]]
    assert float(mine[0]["oos_total_return"]) == first["windows"][0]["out_of_sample"]["total_return"]
    assert mine[-1]["window"] == "chained" and float(mine[-1]["oos_total_return"]) == \
        first["out_of_sample"]["total_return"]
    trades = list(csv.DictReader(io.StringIO(client.get(f"/api/crypto/backtest/batches/{batch}/trades").text)))
    w = first["windows"][1]
    last_second = iso_utc(epoch_of_iso(w["test_end"]) - 1)  # /backtest's end is inclusive, a window's test_end is not
    single = client.post("/api/crypto/backtest", json={"strategy_id": 1, "parameters": w["parameters"],
                                                       "symbol": first["symbol"], "start": w["test_start"],
                                                       "end": last_second}).get_json()["result"]
    assert {k: single[k] for k in w["out_of_sample"]} == w["out_of_sample"]
    got = [t for t in trades if t["symbol"] == first["symbol"] and t["window"] == "1"]
    assert len(got) == len(single["trades"]) > 0
    assert [(t["entry_time"], t["exit_time"] or None, float(t["pnl"])) for t in got] == [
        (t["entry_time"], t["exit_time"], t["pnl"]) for t in single["trades"]]

@pytest.mark.parametrize("body, field", [
    ({"train_days": 5000, "test_days": 10}, "train_days"), ({"train_days": 30, "test_days": 10, "step_days": 1},
                                                            "step_days"),
    ({"train_days": True, "test_days": 10}, "train_days"), ({"test_days": 10}, "train_days"),
    ({"train_days": 30, "test_days": 10, "select": "best"}, "select"),
    ({"train_days": 30, "test_days": 10, "grid": []}, "grid")])
def test_the_route_answers_bad_bodies_with_400_naming_the_field(client, demo_db, body, field) -> None:
    resp = client.post(WF, json={"strategy_id": 1, "grid": GRID, **body})
    assert resp.status_code == 400 and resp.content_type == "application/problem+json", resp.get_json()
    assert field in [e["field"] for e in resp.get_json()["errors"]]
    assert client.get("/api/crypto/backtest/batches").get_json()["batches"] == []  # nothing stored


def test_the_cli_prints_a_table_and_stores_a_batch(runner, demo_db) -> None:
    out = runner.invoke(args=["walkforward", "--grid", "rsi_period=5,9", "--fixed", "overbought_threshold=60",
                              "--train-days", "120", "--test-days", "60", "--symbols", "SYN001,SYN002",
                              "--sequential"])
    assert out.exit_code == 0, out.output
    assert "SYN001" in out.output and "SYN002" in out.output and "decay ratio" in out.output
    listed = runner.invoke(args=["batches"])
    assert "walkforward" in listed.output and "2 settings x 8 windows" in listed.output
    bad = runner.invoke(args=["walkforward", "--grid", "rsi_period=5", "--train-days", "9000", "--test-days", "5"])
    assert bad.exit_code != 0 and "train_days" in bad.output


def test_a_window_where_no_setting_ranks_says_so_and_still_counts_its_candles(services, empty_db, tmp_path) -> None:
    _load(empty_db, tmp_path, "ABCUSDT", _candles(100, seed=7))
    answer = _run(services[2], grid={"rsi_period": [5, 9]}, fixed={"oversold_threshold": 0.5,
                                                                     "overbought_threshold": 99.5})
    windows = answer["results"][0]["windows"]
    assert len(windows) == 7 and all(w["error"]["code"] == "no_ranked_setting" for w in windows)
    assert all((w["parameters"], w["in_sample"], w["out_of_sample"], w["test_candles"]) == (None, None, None, 10)
               for w in windows)
    assert answer["results"][0]["out_of_sample"] is None and answer["summary"]["windows_tested"] == 0
