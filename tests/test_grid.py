"""Grid sweeps: lists and ranges expanded, every value checked, cross-field breakers skipped, the size capped."""
from __future__ import annotations

import pytest

from api import create_app
from api.engine import get_strategy
from api.services.errors import ValidationFailed
from api.services.grid import expand_grid

SWEEP, SINGLE = "/api/crypto/backtest/sweep", "/api/crypto/backtest"


def test_lists_and_ranges_expand_to_every_combination() -> None:
    sets, skipped = expand_grid(get_strategy("rsi"), {"rsi_period": [7, 14, 21],
                                                      "oversold_threshold": {"start": 20, "stop": 40, "step": 5}},
                                {"overbought_threshold": 65})
    assert skipped == 0 and len(sets) == 15
    assert sorted({s["oversold_threshold"] for s in sets}) == [20.0, 25.0, 30.0, 35.0, 40.0]  # stop included
    assert {s["overbought_threshold"] for s in sets} == {65.0} and {s["rsi_period"] for s in sets} == {7, 14, 21}
    assert all(s["execution"] == "close" and s["transaction_fee"] == 0.1 for s in sets)  # defaults filled in


def test_a_range_includes_stop_only_on_a_step_and_does_not_drift() -> None:
    sets, _ = expand_grid(get_strategy("bollinger"), {"num_std": {"start": 1.0, "stop": 1.35, "step": 0.1}}, None)
    assert [s["num_std"] for s in sets] == [1.0, 1.1, 1.2, 1.3]
    sets, _ = expand_grid(get_strategy("bollinger"), {"num_std": {"start": 0.1, "stop": 0.3, "step": 0.1}}, None)
    assert [s["num_std"] for s in sets] == [0.1, 0.2, 0.3]


def test_cross_field_breakers_are_skipped_and_counted() -> None:
    sets, skipped = expand_grid(get_strategy("sma_cross"), {"fast_period": [5, 10, 20, 50],
                                                            "slow_period": [10, 20, 50]}, None)
    assert skipped == 6 and len(sets) == 6
    assert all(s["fast_period"] < s["slow_period"] for s in sets)


@pytest.mark.parametrize("grid, fixed, field", [
    ({"rsi_period": [7, 1]}, None, "grid.rsi_period.1"),
    ({"rsi_period": {"start": 5, "stop": 6, "step": 0.5}}, None, "grid.rsi_period.1"),
    ({"nope": [1]}, None, "grid.nope"),
    ({"rsi_period": []}, None, "grid.rsi_period"),
    ({"rsi_period": {"start": 10, "stop": 5, "step": 1}}, None, "grid.rsi_period"),
    ({"rsi_period": {"start": 1, "stop": 10}}, None, "grid.rsi_period"),
    ({"execution": ["close", "later"]}, None, "grid.execution.1"),
    ({"rsi_period": [7]}, {"rsi_period": 9}, "fixed.rsi_period"),
    ({"rsi_period": [7]}, {"transaction_fee": -1}, "fixed.transaction_fee"),
    ({}, None, "grid"),
    ({"rsi_period": {"start": 1e308, "stop": float("inf"), "step": 1}}, None, "grid.rsi_period"),
    ({"rsi_period": {"start": 2, "stop": 1e300, "step": 1}}, None, "grid.rsi_period"),
])
def test_bad_grids_name_the_field(grid, fixed, field) -> None:
    with pytest.raises(ValidationFailed) as info:
        expand_grid(get_strategy("rsi"), grid, fixed)
    assert field in [e["field"] for e in info.value.errors]


def test_a_grid_sweep_equals_single_backtests(client, demo_db) -> None:
    body = {"strategy_id": 2, "grid": {"fast_period": [5, 10, 30], "slow_period": {"start": 20, "stop": 40,
                                                                                     "step": 20}},
            "fixed": {"stop_loss_pct": 6}, "symbols": ["SYN001", "SYN002"]}
    resp = client.post(SWEEP, json=body)
    assert resp.status_code == 200, resp.get_json()
    answer = resp.get_json()
    assert answer["summary"]["settings"] == 5 and answer["summary"]["skipped"] == 1  # 30 < 20 breaks fast < slow
    assert len(answer["settings"]) == len(answer["top"]) == 5
    for setting in answer["top"][::2]:
        params = setting["parameters"]
        for row in setting["results"]:
            single = client.post(SINGLE, json={"strategy_id": 2, "parameters": params,
                                               "symbol": row["symbol"]}).get_json()["result"]
            assert row["total_return"] == single["total_return"] and row["num_trades"] == single["num_trades"]
    back = client.get(f"/api/crypto/backtest/batches/{answer['summary']['batch_id']}").get_json()
    assert back == answer  # a grid reads back as it answered


def test_parallel_equals_sequential_for_a_grid(client, demo_db) -> None:
    body = {"strategy_id": 1, "grid": {"rsi_period": [7, 14], "oversold_threshold": [25, 30]}, "store": False}
    par = client.post(SWEEP, json={**body, "use_parallel": True}).get_json()
    seq = client.post(SWEEP, json={**body, "use_parallel": False}).get_json()
    strip = lambda a: [[{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in s["results"]]  # noqa
                       for s in a["top"]]
    assert par["summary"]["parallel"] and not seq["summary"]["parallel"] and strip(par) == strip(seq)
    assert par["settings"] == seq["settings"] and par["best_per_crypto"] == seq["best_per_crypto"]


def test_an_over_cap_grid_is_refused_with_its_size(settings, demo_db) -> None:
    client = create_app(settings, max_sweep_backtests=1_000).test_client()
    resp = client.post(SWEEP, json={"strategy_id": 1, "grid": {"rsi_period": {"start": 2, "stop": 60, "step": 1}}})
    assert resp.status_code == 400
    assert "1,416 backtests (59 settings x 24 cryptos)" in resp.get_json()["detail"]


@pytest.mark.parametrize("body, field", [
    ({"strategy_id": 1}, "parameter_sets"),
    ({"strategy_id": 1, "parameter_sets": [{}], "grid": {"rsi_period": [7]}}, "parameter_sets"),
    ({"strategy_id": 1, "parameter_sets": [{}], "fixed": {"rsi_period": 7}}, "fixed"),
    ({"strategy_id": 2, "grid": {"fast_period": [50], "slow_period": [20]}}, "grid"),
])
def test_a_sweep_request_names_what_is_wrong(client, demo_db, body, field) -> None:
    resp = client.post(SWEEP, json=body)
    assert resp.status_code == 400 and resp.get_json()["errors"][0]["field"] == field


def test_cli_sweeps_a_grid(runner, demo_db) -> None:
    out = runner.invoke(args=["sweep", "--strategy", "rsi", "--grid", "rsi_period=7:21:7",
                              "--grid", "oversold_threshold=25,30", "--fixed", "overbought_threshold=65",
                              "--symbols", "SYN001,SYN002", "--top", "3", "--sequential"])
    assert out.exit_code == 0, out.output
    assert "6 settings (0 skipped) x 2 cryptos = 12 backtests" in out.output
    assert len([ln for ln in out.output.splitlines() if "median return" in ln]) == 3
    bad = runner.invoke(args=["sweep", "--grid", "rsi_period=7:x:7"])
    assert bad.exit_code != 0 and "must be numbers" in bad.output
    import orjson

    js = runner.invoke(args=["sweep", "--strategy", "rsi", "--grid", "rsi_period=7:21:7", "--symbols", "SYN001,SYN002",
                             "--top", "2", "--rank-by", "worst_drawdown", "--json"])
    answer = orjson.loads(js.output)
    assert len(answer["top"]) == 2 and answer["summary"]["rank_by"] == "worst_drawdown"
    listed = runner.invoke(args=["batches", "--limit", "1"])
    assert "grid" in listed.output and "3 settings, best median return" in listed.output


def test_a_grid_of_more_than_a_thousand_settings_runs_and_reads_back(client, demo_db) -> None:
    grid = {"rsi_period": {"start": 2, "stop": 42, "step": 1}, "oversold_threshold": {"start": 5, "stop": 29, "step": 1}}
    resp = client.post(SWEEP, json={"strategy_id": 1, "grid": grid, "symbols": ["SYN001", "SYN002"], "top": 3})
    assert resp.status_code == 200, resp.get_json()
    answer = resp.get_json()
    assert answer["summary"]["settings"] == 1_025 and answer["summary"]["backtests"] == 2_050
    assert len(answer["settings"]) == 1_025 and len(answer["top"]) == 3
    assert client.get(f"/api/crypto/backtest/batches/{answer['summary']['batch_id']}").get_json() == answer


def test_a_grid_answers_with_aggregates_the_best_settings_and_each_cryptos_best(client, demo_db) -> None:
    body = {"strategy_id": 1, "grid": {"rsi_period": [7, 14, 21], "oversold_threshold": [20, 30]},
            "rank_by": "mean_return", "top": 2, "store": False}
    answer = client.post(SWEEP, json=body).get_json()
    assert len(answer["settings"]) == 6 and len(answer["top"]) == 2 and answer["summary"]["rank_by"] == "mean_return"
    means = [s["aggregate"]["mean_return"] for s in answer["settings"]]
    assert means == sorted(means, reverse=True)
    best = answer["top"][0]
    returns = sorted(r["total_return"] for r in best["results"] if r["error"] is None)
    assert best["aggregate"]["mean_return"] == pytest.approx(sum(returns) / len(returns))
    assert best["aggregate"]["median_return"] == pytest.approx(returns[len(returns) // 2] if len(returns) % 2
                                                               else (returns[len(returns) // 2 - 1]
                                                                     + returns[len(returns) // 2]) / 2)
    assert best["aggregate"]["worst_drawdown"] == max(r["max_drawdown"] for r in best["results"] if r["error"] is None)
    assert len(answer["best_per_crypto"]) == 24
    by_crypto = {}
    for setting in answer["top"]:  # a crypto's best over the top settings is at most its best overall
        for r in setting["results"]:
            by_crypto[r["symbol"]] = max(by_crypto.get(r["symbol"], -1e300), r["total_return"])
    for b in answer["best_per_crypto"]:
        assert b["total_return"] >= by_crypto[b["symbol"]]
    worst = client.post(SWEEP, json={**body, "rank_by": "worst_drawdown"}).get_json()
    drawdowns = [s["aggregate"]["worst_drawdown"] for s in worst["settings"]]
    assert drawdowns == sorted(drawdowns)
    bad = client.post(SWEEP, json={**body, "rank_by": "luck"})
    assert bad.status_code == 400 and bad.get_json()["errors"][0]["field"] == "rank_by"


def test_a_huge_integer_is_named_short_in_the_message() -> None:
    with pytest.raises(ValidationFailed) as info:
        expand_grid(get_strategy("rsi"), {"rsi_period": [1e308]}, None)
    assert info.value.errors == [{"field": "grid.rsi_period.0", "message": "must be at most 1000, got 1e+308"}]


def test_a_grid_far_over_the_cap_is_refused_before_it_is_expanded(client, demo_db, monkeypatch) -> None:
    import api.services.grid as grid_module

    checked: list[int] = []
    real = grid_module.validate_parameters
    monkeypatch.setattr(grid_module, "validate_parameters",
                        lambda *a, **k: checked.append(1) or real(*a, **k))
    grid = {"rsi_period": {"start": 2, "stop": 1000, "step": 1}, "oversold_threshold": {"start": 1, "stop": 49,
                                                                                       "step": 0.01}}
    resp = client.post(SWEEP, json={"strategy_id": 1, "grid": grid})
    assert resp.status_code == 400
    problem = resp.get_json()
    assert problem["errors"][0]["field"] == "grid" and "4,796,199 combinations x 24 cryptos" in problem["detail"]
    assert len(checked) < 6_000  # the values of each axis and the fixed ones, not one per combination
