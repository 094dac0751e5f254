"""Past batches: listed newest first with filters and a cursor, read back as they answered, exported as CSV."""
from __future__ import annotations

import csv
import io
import math

import pytest

BATCH, SWEEP, SINGLE, BATCHES = ("/api/crypto/backtest/all", "/api/crypto/backtest/sweep", "/api/crypto/backtest",
                                 "/api/crypto/backtest/batches")


def _ok(resp):
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_a_batch_reads_back_as_it_answered(client, demo_db) -> None:
    answer = _ok(client.post(BATCH, json={"strategy_id": 2, "parameters": {"stop_loss_pct": 5},
                                          "symbols": ["SYN001", "SYN002", "SYN003"], "start": "2020-03-01"}))
    assert _ok(client.get(f"{BATCHES}/{answer['summary']['batch_id']}")) == answer


def test_a_sweep_and_a_single_backtest_read_back(client, demo_db) -> None:
    sweep = _ok(client.post(SWEEP, json={"strategy_id": 1, "parameter_sets": [{}, {"rsi_period": 7},
                                                                              {"execution": "next_open"}]}))
    back = _ok(client.get(f"{BATCHES}/{sweep['summary']['batch_id']}"))
    assert back["summary"] == sweep["summary"]
    assert [s["parameters"] for s in back["settings"]] == [s["parameters"] for s in sweep["settings"]]
    for a, b in zip(back["settings"], sweep["settings"]):
        assert a["results"] == b["results"]
        assert {k: v for k, v in a["summary"].items() if k != "total_time"} == \
            {k: v for k, v in b["summary"].items() if k != "total_time"}
    single = _ok(client.post(SINGLE, json={"strategy_id": 3, "parameters": {}, "symbol": "SYN004"}))
    back = _ok(client.get(f"{BATCHES}/{single['batch_id']}"))
    expected = {k: v for k, v in single["result"].items() if k not in ("trades", "equity_curve")}
    assert back["result"] == expected and back["parameters"] == single["parameters"]


def test_csv_equals_the_json(client, demo_db) -> None:
    answer = _ok(client.post(BATCH, json={"strategy_id": 6, "parameters": {}, "symbols": ["SYN001"]}))
    answer = _ok(client.post(BATCH, json={"strategy_id": 1, "parameters": {"rsi_period": 9}, "use_cache": False}))
    batch_id = answer["summary"]["batch_id"]
    for resp in (client.get(f"{BATCHES}/{batch_id}?format=csv"),
                 client.get(f"{BATCHES}/{batch_id}", headers={"Accept": "text/csv"})):
        assert resp.status_code == 200 and resp.mimetype == "text/csv"
        rows = list(csv.DictReader(io.StringIO(resp.data.decode())))
        assert len(rows) == 24
        by_symbol = {r["symbol"]: r for r in answer["results"]}
        for row in rows:
            want = by_symbol[row["symbol"]]
            for name in ("total_return", "sharpe_ratio", "max_drawdown", "cagr", "total_fees"):
                got = row[name]
                assert (got == "" and want[name] is None) or float(got) == want[name], name
            assert int(row["num_trades"]) == want["num_trades"]
            assert row["open_position"] == str(want["open_position"])
    assert client.get(f"{BATCHES}/{batch_id}", headers={"Accept": "application/json"}).mimetype == "application/json"


def test_the_list_is_newest_first_with_filters_and_a_cursor(client, demo_db) -> None:
    made = []
    for i, strategy in enumerate((1, 7, 1, 2, 1)):
        made.append(_ok(client.post(BATCH, json={"strategy_id": strategy, "parameters": {},
                                                 "symbols": ["SYN001"] if i == 3 else None}))["summary"]["batch_id"])
    seen, cursor = [], None
    while True:
        page = _ok(client.get(BATCHES, query_string={"limit": 2, **({"cursor": cursor} if cursor else {})}))
        assert len(page["batches"]) <= 2
        seen += [b["batch_id"] for b in page["batches"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1] and math.ceil(len(made) / 2) >= 1
    rsi = _ok(client.get(BATCHES, query_string={"strategy_id": 1}))["batches"]
    assert [b["batch_id"] for b in rsi] == [made[4], made[2], made[0]]
    with_syn024 = _ok(client.get(BATCHES, query_string={"symbol": "syn024"}))["batches"]
    assert made[3] not in [b["batch_id"] for b in with_syn024] and len(with_syn024) == 4
    assert _ok(client.get(BATCHES, query_string={"since": "2999-01-01"}))["batches"] == []


@pytest.mark.parametrize("query, status, field", [
    ({"limit": 0}, 400, "limit"), ({"limit": "ten"}, 400, "limit"), ({"cursor": "garbage"}, 400, "cursor"),
    ({"strategy_id": "x"}, 400, "strategy_id"), ({"since": "soon"}, 400, "since"), ({"symbol": "NOPE"}, 404, "symbol"),
])
def test_bad_list_filters_name_the_field(client, demo_db, query, status, field) -> None:
    resp = client.get(BATCHES, query_string=query)
    assert resp.status_code == status and resp.get_json()["errors"][0]["field"] == field


def test_unknown_batches_are_404(client, demo_db) -> None:
    for batch_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        resp = client.get(f"{BATCHES}/{batch_id}")
        assert resp.status_code == 404 and resp.get_json()["errors"][0]["field"] == "batch_id"


def test_trades_csv_equals_single_backtests_for_the_same_inputs(client, demo_db) -> None:
    params = {"execution": "next_open", "stop_loss_pct": 4, "take_profit_pct": 9}
    answer = _ok(client.post(BATCH, json={"strategy_id": 2, "parameters": params,
                                          "symbols": ["SYN001", "SYN005"], "start": "2020-02-01"}))
    resp = client.get(f"{BATCHES}/{answer['summary']['batch_id']}/trades?format=csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.data.decode())))
    for symbol in ("SYN001", "SYN005"):
        single = _ok(client.post(SINGLE, json={"strategy_id": 2, "parameters": params, "symbol": symbol,
                                               "start": "2020-02-01"}))["result"]
        mine = [r for r in rows if r["symbol"] == symbol]
        assert len(mine) == len(single["trades"]) > 0
        for row, trade in zip(mine, single["trades"]):
            assert row["entry_time"] == trade["entry_time"] and row["exit_reason"] == trade["exit_reason"]
            assert float(row["entry_price"]) == trade["entry_price"] and float(row["pnl"]) == trade["pnl"]
            assert int(row["bars_held"]) == trade["bars_held"]


def test_trades_of_a_batch_whose_candles_changed_are_409(client, demo_db) -> None:
    import numpy as np

    from api.db import repository as repo

    answer = _ok(client.post(BATCH, json={"strategy_id": 7, "parameters": {}, "symbols": ["SYN002"]}))
    with demo_db.begin() as conn:
        crypto = repo.find_crypto(conn, symbol="SYN002")
        one = np.ones(1)
        repo.copy_prices(conn, crypto["id"], np.array([np.datetime64("2031-01-01T00:00:00")]), one, one, one, one, one)
    resp = client.get(f"{BATCHES}/{answer['summary']['batch_id']}/trades")
    assert resp.status_code == 409 and resp.get_json()["errors"][0]["field"] == "batch_id"


def test_cli_lists_and_exports_batches(runner, client, demo_db) -> None:
    answer = _ok(client.post(BATCH, json={"strategy_id": 1, "parameters": {}, "symbols": ["SYN003"]}))
    batch_id = answer["summary"]["batch_id"]
    listed = runner.invoke(args=["batches", "--strategy", "1"])
    assert listed.exit_code == 0 and batch_id in listed.output
    exported = runner.invoke(args=["export", batch_id, "--csv"])
    assert exported.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(exported.output)))
    assert [r["symbol"] for r in rows] == ["SYN003"]
    assert float(rows[0]["total_return"]) == answer["results"][0]["total_return"]
    trades = runner.invoke(args=["export", batch_id, "--trades"])
    assert trades.exit_code == 0 and trades.output.startswith("symbol,entry_time")
    missing = runner.invoke(args=["export", "00000000-0000-0000-0000-000000000000"])
    assert missing.exit_code != 0 and "no batch" in missing.output
