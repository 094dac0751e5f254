"""A grid's compact store (migration 0013): one row per crypto with every setting's metrics, read back, exported
as CSV, and answering a repeated grid without computing it again."""
from __future__ import annotations

import csv
import io

import orjson
import pytest

from api.db import repository as repo
from api.services.batches import CSV_HEAD
from tests import test_result_cache as result_cache

SWEEP, SINGLE = "/api/crypto/backtest/sweep", "/api/crypto/backtest"
GRID = {"strategy_id": 1, "grid": {"rsi_period": [7, 14], "oversold_threshold": [25, 30, 35]},
        "fixed": {"overbought_threshold": 65}, "use_parallel": False, "top": 2}


def _computations(monkeypatch) -> list[str]:
    """Symbols the (in-process) grid actually computes."""
    return result_cache._computations(monkeypatch, "_grid_crypto")


def _post(client, **body):
    resp = client.post(SWEEP, json={**GRID, **body})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def _grid_rows(engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM grid_results").scalar_one())


def test_a_grid_is_stored_as_one_row_per_crypto_and_reads_back(client, demo_db) -> None:
    answer = _post(client)
    assert answer["summary"]["computed"] == 6 * 24 and answer["summary"]["from_store"] == 0
    assert _grid_rows(demo_db) == 24
    with demo_db.connect() as conn:
        assert repo.count_results(conn) == 0  # no per-backtest rows
    back = client.get(f"/api/crypto/backtest/batches/{answer['summary']['batch_id']}")
    assert back.status_code == 200 and back.get_json() == answer
    listed = client.get("/api/crypto/backtest/batches").get_json()["batches"][0]
    assert listed["kind"] == "grid" and listed["cryptos"] == 24


def test_a_repeated_grid_computes_nothing_and_new_candles_recompute_one_crypto(client, demo_db, monkeypatch) -> None:
    first = _post(client)
    computed = _computations(monkeypatch)
    again = _post(client)
    assert computed == [] and again["summary"]["computed"] == 0 and again["summary"]["from_store"] == 144
    assert again["settings"] == first["settings"] and again["top"] == first["top"]
    assert again["best_per_crypto"] == first["best_per_crypto"]
    assert _grid_rows(demo_db) == 24  # nothing stored twice
    assert client.get(f"/api/crypto/backtest/batches/{again['summary']['batch_id']}").get_json() == again
    result_cache.add_a_candle(demo_db, "SYN003")
    third = _post(client)
    assert computed == ["SYN003"] and third["summary"]["computed"] == 6 and third["summary"]["from_store"] == 138
    fresh = _post(client, use_cache=False)
    assert fresh["summary"]["computed"] == 144 and computed[1:] == [f"SYN{i:03d}" for i in range(1, 25)]
    strip = lambda a: [[{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in s["results"]]  # noqa
                       for s in a["top"]]
    assert fresh["settings"] == third["settings"] and strip(fresh) == strip(third)


@pytest.mark.parametrize("change", [{"fixed": {"overbought_threshold": 65, "transaction_fee": 0.2}},
                                    {"fixed": {"overbought_threshold": 70}},
                                    {"start": "2020-06-01"}])
def test_another_grid_key_misses(client, demo_db, change) -> None:
    _post(client)
    other = _post(client, **change)
    assert other["summary"]["from_store"] == 0 and other["summary"]["computed"] == 144


def test_grid_csv_equals_the_json_and_trades_equal_single_backtests(client, demo_db) -> None:
    answer = _post(client, symbols=["SYN001", "SYN002", "SYN003"])
    batch = answer["summary"]["batch_id"]
    rows = list(csv.DictReader(io.StringIO(client.get(f"/api/crypto/backtest/batches/{batch}?format=csv").text)))
    assert len(rows) == 6 * 3 and list(rows[0]) == [*CSV_HEAD, "parameters"]
    for setting in answer["top"]:
        key = orjson.dumps(setting["parameters"], option=orjson.OPT_SORT_KEYS).decode()
        for r in setting["results"]:
            line = next(x for x in rows if x["parameters"] == key and x["symbol"] == r["symbol"])
            assert float(line["total_return"]) == r["total_return"] and int(line["num_trades"]) == r["num_trades"]
            assert float(line["sharpe_ratio"]) == r["sharpe_ratio"]
    trades = list(csv.DictReader(io.StringIO(
        client.get(f"/api/crypto/backtest/batches/{batch}/trades?format=csv").text)))
    want = []
    for setting in answer["top"]:  # a grid's trades are those of its top settings
        for r in sorted(setting["results"], key=lambda r: r["crypto_id"]):
            single = client.post(SINGLE, json={"strategy_id": 1, "parameters": setting["parameters"],
                                               "symbol": r["symbol"]}).get_json()["result"]
            want += [(r["symbol"], t["entry_time"], repr(t["pnl"])) for t in single["trades"]]
    assert want and sorted((t["symbol"], t["entry_time"], t["pnl"]) for t in trades) == sorted(want)


def test_a_grid_with_failing_settings_stores_and_reads_back_their_errors(client, demo_db) -> None:
    answer = _post(client, grid={"rsi_period": [14, 900]}, fixed={}, top=2)  # 900 > 400 candles: every crypto fails
    failing = next(s for s in answer["top"] if s["parameters"]["rsi_period"] == 900)
    assert all(r["error"]["code"] == "insufficient_data" for r in failing["results"])
    assert failing["aggregate"]["successful"] == 0 and failing["aggregate"]["median_return"] is None
    assert answer["summary"]["failed"] == 24 and answer["summary"]["successful"] == 24
    assert client.get(f"/api/crypto/backtest/batches/{answer['summary']['batch_id']}").get_json() == answer
    again = _post(client, grid={"rsi_period": [14, 900]}, fixed={}, top=2)
    assert again["summary"]["from_store"] == 48 and again["top"] == answer["top"]


@pytest.mark.parametrize("use_parallel", [True, False], ids=["parallel", "sequential"])
def test_progress_rises_to_the_total_in_backtests(app, demo_db, use_parallel) -> None:
    service = app.extensions["backtest_service"]
    seen: list[tuple[int, int]] = []
    _post(app.test_client(), symbols=["SYN001", "SYN002"])  # two cryptos stored: the count starts there
    service.run_grid_sweep(1, GRID["grid"], GRID["fixed"], use_parallel=use_parallel, store=False,
                           progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (12, 144) and seen[-1] == (144, 144)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == 23  # once per computed crypto


def test_both_sweep_answers_match_the_documented_schema(client, demo_db) -> None:
    import jsonschema

    doc = client.get("/api/openapi.json").get_json()
    schema = doc["paths"]["/api/crypto/backtest/sweep"]["post"]["responses"]["200"]["content"]["application/json"]
    schema = {**schema["schema"], "components": doc.get("components", {})}
    jsonschema.validate(_post(client), schema)  # exactly one of oneOf: the grid's
    listed = client.post(SWEEP, json={"strategy_id": 1, "parameter_sets": [{}], "store": False}).get_json()
    jsonschema.validate(listed, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"settings": [{"parameters": {}}], "summary": {}}, schema)  # neither shape


def test_an_unknown_export_format_is_a_400_naming_it(client, demo_db) -> None:
    batch = _post(client, symbols=["SYN001"])["summary"]["batch_id"]
    for url in (f"/api/crypto/backtest/batches/{batch}?format=xml", f"/api/crypto/backtest/batches/{batch}?format=",
                f"/api/crypto/backtest/batches/{batch}/trades?format=json"):
        resp = client.get(url)
        assert resp.status_code == 400 and resp.mimetype == "application/problem+json", url
        assert resp.get_json()["errors"][0]["field"] == "format"
    assert client.get(f"/api/crypto/backtest/batches/{batch}?format=JSON").status_code == 200
