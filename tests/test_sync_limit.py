"""SYNC_MAX_BACKTESTS (issue 13): a synchronous request over it is a 422 naming /api/jobs, runs nothing and stores
nothing; the same body as a job runs; at the limit the route still answers."""
from __future__ import annotations

import dataclasses

import pytest

BATCHES = "/api/crypto/backtest/batches"
TWO = ["SYN001", "SYN002"]
# route, body, backtests it runs on the 24 demo cryptos, the field the 422 names
CASES = {
    "all": ("/api/crypto/backtest/all", {"strategy_id": 1, "parameters": {}, "use_parallel": False}, 24, "request"),
    "grid": ("/api/crypto/backtest/sweep", {"strategy_id": 1, "grid": {"rsi_period": [7, 9, 14]},
                                            "use_parallel": False}, 72, "grid"),
    "parameter_sets": ("/api/crypto/backtest/sweep", {"strategy_id": 1, "parameter_sets": [{}, {"rsi_period": 9}],
                                                      "use_parallel": False}, 48, "parameter_sets"),
    # 400 candles, train 120 + test 60, step 60: 4 windows a crypto, x (2 settings + 1 test run) x 2 cryptos
    "walkforward": ("/api/crypto/backtest/walkforward", {"strategy_id": 1, "grid": {"rsi_period": [7, 14]},
                                                         "train_days": 120, "test_days": 60, "symbols": TWO,
                                                         "use_parallel": False}, 24, "grid"),
    "montecarlo": ("/api/crypto/backtest/montecarlo", {"strategy_id": 1, "parameters": {}, "paths": 30,
                                                       "symbols": TWO, "use_parallel": False}, 60, "paths"),
}
KIND = {"grid": "sweep", "parameter_sets": "sweep"}


@pytest.fixture
def limit(app, monkeypatch):
    """Set SYNC_MAX_BACKTESTS on the running app (the routes read it per request)."""
    def set_limit(n: int) -> None:
        monkeypatch.setitem(app.config, "SETTINGS", dataclasses.replace(app.config["SETTINGS"],
                                                                        sync_max_backtests=n))
    return set_limit


@pytest.mark.parametrize("case", sorted(CASES))
def test_over_the_limit_is_a_422_naming_jobs_and_stores_nothing(client, app, demo_db, limit, case) -> None:
    route, body, backtests, field = CASES[case]
    limit(backtests - 1)
    before = client.get(BATCHES).get_json()["batches"]
    resp = client.post(route, json=body, headers={"Idempotency-Key": f"sync-limit-{case}"})
    assert resp.status_code == 422 and resp.content_type == "application/problem+json", resp.get_json()
    problem = resp.get_json()
    assert "/api/jobs" in problem["detail"] and f"{backtests:,} backtests" in problem["detail"]
    assert f'"kind": "{KIND.get(case, case)}"' in problem["detail"]
    assert [e["field"] for e in problem["errors"]] == [field] and "SYNC_MAX_BACKTESTS" in problem["errors"][0][
        "message"]
    assert client.get(BATCHES).get_json()["batches"] == before
    # the key was not spent on the refusal: at the limit the same request runs and is stored
    limit(backtests)
    done = client.post(route, json=body, headers={"Idempotency-Key": f"sync-limit-{case}"})
    assert done.status_code == 200, done.get_json()
    assert done.headers.get("Idempotent-Replayed") is None
    assert len(client.get(BATCHES).get_json()["batches"]) == len(before) + 1


def test_a_job_is_not_bound_by_the_sync_limit(client, app, demo_db, limit) -> None:
    route, body, backtests, _ = CASES["grid"]
    limit(1)
    assert client.post(route, json=body).status_code == 422
    resp = client.post("/api/jobs", json={"kind": "sweep", "request": body})
    assert resp.status_code == 202, resp.get_json()
    with app.app_context():
        app.extensions["jobs"].run_next("test-runner")
    job = client.get(resp.headers["Location"]).get_json()
    assert job["state"] == "succeeded" and job["progress"] == {"done": backtests, "total": backtests}, job
