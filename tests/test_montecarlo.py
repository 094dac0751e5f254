"""Monte Carlo on every crypto (issue 12, service level): the same answer at any worker count, seeded per path."""
from __future__ import annotations

import pytest

from api.services.errors import ValidationFailed
from api.services.selection import Selection

PICK = Selection(symbols=("SYN001", "SYN002", "SYN003", "SYN004"))


def _results(answer):
    return answer["results"]


@pytest.mark.parametrize("method", ["trades", "bars"])
def test_identical_sequential_and_at_one_and_two_workers(services, demo_db, method) -> None:
    run = dict(strategy_id=1, parameters={"rsi_period": 10}, method=method, paths=40, block_bars=15, seed=11,
               selection=PICK)
    seq = services[2].run_monte_carlo(**run, use_parallel=False)
    one = services[1].run_monte_carlo(**run, use_parallel=True)
    two = services[2].run_monte_carlo(**run, use_parallel=True)
    assert not seq["summary"]["parallel"] and one["summary"]["processes"] == 1 and two["summary"]["processes"] == 2
    assert _results(seq) == _results(one) == _results(two)
    assert [r["symbol"] for r in seq["results"]] == list(PICK.symbols) and all(r["error"] is None for r in seq["results"])
    for r in seq["results"]:
        for values in r["percentiles"].values():
            ordered = [values[f"p{p}"] for p in (5, 25, 50, 75, 95)]
            assert ordered == sorted(ordered)
        assert 0.0 <= r["probability_of_loss"] <= 100.0 and 0.0 <= r["original_percentile"] <= 100.0
    assert set(seq["results"][0]["percentiles"]) == ({"total_return", "max_drawdown"} if method == "trades" else
                                                     {"total_return", "max_drawdown", "sharpe_ratio"})


def test_same_seed_same_answer_another_seed_another(services, demo_db) -> None:
    run = dict(strategy_id=1, parameters={}, method="bars", paths=30, selection=PICK, use_parallel=False)
    a = services[2].run_monte_carlo(**run, seed=1)
    assert _results(a) == _results(services[2].run_monte_carlo(**run, seed=1))
    b = services[2].run_monte_carlo(**run, seed=2)
    assert [r["percentiles"] for r in a["results"]] != [r["percentiles"] for r in b["results"]]
    assert [r["original"] for r in a["results"]] == [r["original"] for r in b["results"]]  # the original is one run


def test_a_crypto_too_short_gets_its_own_error(services, demo_db) -> None:
    answer = services[2].run_monte_carlo(1, {"rsi_period": 500}, method="trades", paths=5, selection=PICK,
                                         use_parallel=False)
    assert all(r["error"]["code"] == "insufficient_data" for r in answer["results"])
    assert answer["summary"]["failed"] == 4 and answer["summary"]["median_probability_of_loss"] is None


@pytest.mark.parametrize("options, field", [({"method": "luck"}, "method"), ({"paths": 0}, "paths"),
                                            ({"paths": 10_001}, "paths"), ({"block_bars": 0}, "block_bars"),
                                            ({"seed": -1}, "seed"), ({"paths": True}, "paths")])
def test_bad_options_name_the_field(services, demo_db, options, field) -> None:
    with pytest.raises(ValidationFailed) as info:
        services[2].run_monte_carlo(1, {}, **options)
    assert field in [e["field"] for e in info.value.errors]


MC = "/api/crypto/backtest/montecarlo"


def test_the_route_answers_as_the_service_does(client, services, demo_db) -> None:
    body = {"strategy_id": 1, "parameters": {}, "method": "bars", "paths": 20, "block_bars": 10, "seed": 3,
            "symbols": list(PICK.symbols), "use_parallel": False}
    resp = client.post(MC, json=body)
    assert resp.status_code == 200, resp.get_json()
    answer = resp.get_json()
    direct = services[2].run_monte_carlo(1, {}, method="bars", paths=20, block_bars=10, seed=3, selection=PICK,
                                         use_parallel=True)
    assert answer["results"] == direct["results"]
    assert answer["summary"]["successful"] == 4 and answer["summary"]["method"] == "bars"
    replay = client.post(MC, json=body, headers={"Idempotency-Key": "mc-1"})
    again = client.post(MC, json=body, headers={"Idempotency-Key": "mc-1"})
    assert again.headers.get("Idempotent-Replayed") == "true" and again.get_json() == replay.get_json()


@pytest.mark.parametrize("change, field", [({"method": "luck"}, "method"), ({"paths": 0}, "paths"),
                                           ({"paths": "many"}, "paths"), ({"block_bars": 0}, "block_bars"),
                                           ({"seed": -5}, "seed"), ({"extra": 1}, "extra"),
                                           ({"symbols": ["NOPE"]}, "symbols"), ({"parameters": {"rsi_period": 1}},
                                                                                "parameters.rsi_period")])
def test_bad_bodies_name_the_field(client, demo_db, change, field) -> None:
    resp = client.post(MC, json={"strategy_id": 1, "parameters": {}, "paths": 5, **change})
    assert resp.status_code in (400, 404) and resp.mimetype == "application/problem+json"
    assert resp.get_json()["errors"][0]["field"] == field


def test_a_monte_carlo_is_stored_read_back_and_exported(client, demo_db) -> None:
    import csv
    import io

    body = {"strategy_id": 1, "parameters": {}, "method": "trades", "paths": 25, "seed": 4,
            "symbols": ["SYN001", "SYN002"], "use_parallel": False}
    answer = client.post(MC, json=body).get_json()
    batch = answer["summary"]["batch_id"]
    assert batch and client.get(f"/api/crypto/backtest/batches/{batch}").get_json() == answer
    listed = client.get("/api/crypto/backtest/batches?limit=1").get_json()["batches"][0]
    assert listed["kind"] == "montecarlo" and listed["cryptos"] == 2
    rows = list(csv.DictReader(io.StringIO(client.get(f"/api/crypto/backtest/batches/{batch}?format=csv").text)))
    assert [r["symbol"] for r in rows] == ["SYN001", "SYN002"]
    for row, r in zip(rows, answer["results"]):
        assert float(row["total_return_p50"]) == r["percentiles"]["total_return"]["p50"]
        assert float(row["probability_of_loss"]) == r["probability_of_loss"]
        assert float(row["original_total_return"]) == r["original"]["total_return"]
    trades = list(csv.DictReader(io.StringIO(client.get(f"/api/crypto/backtest/batches/{batch}/trades").text)))
    single = client.post("/api/crypto/backtest", json={"strategy_id": 1, "parameters": {},
                                                       "symbol": "SYN001"}).get_json()["result"]
    assert [t["entry_time"] for t in trades if t["symbol"] == "SYN001"] == [t["entry_time"] for t in single["trades"]]
    unstored = client.post(MC, json={**body, "store": False}).get_json()
    assert unstored["summary"]["batch_id"] is None and unstored["results"] == answer["results"]


def test_cli_montecarlo_and_its_progress(runner, services, demo_db) -> None:
    out = runner.invoke(args=["montecarlo", "--strategy", "rsi", "--method", "bars", "--paths", "15", "--seed", "3",
                              "--symbols", "SYN001,SYN002", "--sequential"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[1].startswith("SYN001") and lines[2].startswith("SYN002")
    assert "bars x 15 paths, seed 3: 2 of 2 cryptos" in out.output
    seen: list[tuple[int, int]] = []
    services[2].run_monte_carlo(1, {}, paths=7, selection=PICK, store=False, use_parallel=True,
                                progress=lambda done, total: seen.append((done, total)))
    assert seen == [(7, 28), (14, 28), (21, 28), (28, 28)]
    bad = runner.invoke(args=["montecarlo", "--param", "rsi_period=1", "--paths", "2"])
    assert bad.exit_code != 0 and "rsi_period" in bad.output
