"""The job routes (issue 13): queue with 202 + Location, checked like the route; read progress and the result."""
from __future__ import annotations

import pytest

from tests.answers import untimed

JOBS = "/api/jobs"
BODIES = {
    "all": ("/api/crypto/backtest/all", {"strategy_id": 1, "parameters": {"rsi_period": 9}, "use_parallel": False}),
    "sweep": ("/api/crypto/backtest/sweep", {"strategy_id": 1, "grid": {"rsi_period": [7, 14]}, "use_parallel": False}),
    "walkforward": ("/api/crypto/backtest/walkforward", {"strategy_id": 1, "grid": {"rsi_period": [7, 14]},
                                                         "train_days": 120, "test_days": 60, "use_parallel": False,
                                                         "symbols": ["SYN001", "SYN002"]}),
    "montecarlo": ("/api/crypto/backtest/montecarlo", {"strategy_id": 1, "parameters": {}, "method": "bars",
                                                       "paths": 20, "seed": 3, "symbols": ["SYN001", "SYN002"]}),
}


def _inside_request(errors):
    """The route's errors as a job names them: inside its request."""
    return [{**e, "field": f"request.{e['field']}"} for e in errors]


def _run_one(app):
    with app.app_context():
        return app.extensions["jobs"].run_next("test-runner")



@pytest.mark.parametrize("kind", sorted(BODIES))
def test_a_job_answers_what_its_route_answers(client, app, demo_db, kind) -> None:
    route, body = BODIES[kind]
    resp = client.post(JOBS, json={"kind": kind, "request": body})
    assert resp.status_code == 202, resp.get_json()
    job = resp.get_json()
    assert resp.headers["Location"] == f"/api/jobs/{job['job_id']}" and job["state"] == "queued"
    assert client.get(resp.headers["Location"]).get_json()["state"] == "queued"
    _run_one(app)
    done = client.get(resp.headers["Location"]).get_json()
    assert done["state"] == "succeeded" and done["error"] is None and done["eta_seconds"] is None
    assert done["progress"]["done"] == done["progress"]["total"] > 0
    assert done["result_url"] == f"/api/crypto/backtest/batches/{done['batch_id']}"
    stored = client.get(done["result_url"]).get_json()
    direct = client.post(route, json=body).get_json()
    assert untimed(stored) == untimed(direct)


@pytest.mark.parametrize("body, status, field", [
    ({"kind": "luck", "request": {}}, 400, "kind"),
    ({"kind": "all", "request": []}, 400, "request"),
    ({"kind": "all"}, 400, "request"),
    ({"kind": "all", "request": {"strategy_id": 999, "parameters": {}}}, 404, "request.strategy_id"),
    ({"kind": "all", "request": {"strategy_id": "1", "parameters": {}}}, 400, "request.strategy_id"),
    ({"kind": "all", "request": {"strategy_id": 1, "parameters": {"rsi_period": 1}}}, 400,
     "request.parameters.rsi_period"),
    ({"kind": "all", "request": {"strategy_id": 1, "parameters": {}, "symbols": ["NOPE"]}}, 404, "request.symbols"),
    ({"kind": "sweep", "request": {"strategy_id": 1}}, 400, "request.parameter_sets"),
    ({"kind": "sweep", "request": {"strategy_id": 1, "grid": {"rsi_period": [5]}, "store": False}}, 400,
     "request.store"),
    ({"kind": "montecarlo", "request": {"strategy_id": 1, "parameters": {}, "store": False}}, 400, "request.store"),
    ({"kind": "walkforward", "request": {"strategy_id": 1, "grid": {"rsi_period": [7]}}}, 400, "request.train_days"),
    ({"kind": "walkforward", "request": {"strategy_id": 1, "grid": {"rsi_period": [7]}, "train_days": 9000,
                                         "test_days": 10}}, 400, "request.train_days"),
    ({"kind": "walkforward", "request": {"strategy_id": 1, "grid": {"nope": [7]}, "train_days": 90,
                                         "test_days": 10}}, 400, "request.grid.nope"),
    ({"kind": "montecarlo", "request": {"strategy_id": 1, "parameters": {}, "paths": 0}}, 400, "request.paths"),
])
def test_a_bad_job_is_the_routes_4xx_and_nothing_is_queued(client, demo_db, body, status, field) -> None:
    resp = client.post(JOBS, json=body)
    assert resp.status_code == status and resp.content_type == "application/problem+json", resp.get_json()
    assert field in [e["field"] for e in resp.get_json()["errors"]]
    assert client.get(JOBS).get_json()["jobs"] == []


def test_cancel_list_and_unknown_jobs(client, app, demo_db) -> None:
    ids = [client.post(JOBS, json={"kind": "all", "request": BODIES["all"][1]}).get_json()["job_id"]
           for _ in range(3)]
    cancelled = client.post(f"{JOBS}/{ids[0]}/cancel")
    assert cancelled.status_code == 202 and cancelled.get_json()["state"] == "cancelled"
    first = client.get(f"{JOBS}?limit=2").get_json()
    assert [j["job_id"] for j in first["jobs"]] == [ids[2], ids[1]] and first["next_cursor"]
    rest = client.get(f"{JOBS}?limit=2&cursor={first['next_cursor']}").get_json()
    assert [j["job_id"] for j in rest["jobs"]] == [ids[0]] and rest["next_cursor"] is None
    assert _run_one(app)["job_id"] == ids[1]  # the cancelled one is skipped, the oldest queued runs
    again = client.post(f"{JOBS}/{ids[0]}/cancel")  # finished: nothing to cancel, and nothing changes
    assert again.status_code == 409 and "already cancelled" in again.get_json()["detail"]
    assert "Retry-After" not in again.headers and client.get(f"{JOBS}/{ids[0]}").get_json()["state"] == "cancelled"
    done = client.post(f"{JOBS}/{ids[1]}/cancel")
    assert done.status_code == 409 and client.get(f"{JOBS}/{ids[1]}").get_json()["state"] == "succeeded"
    for bad in ("0d9f0a0e-0000-4000-8000-000000000000", "not-a-uuid"):
        assert client.get(f"{JOBS}/{bad}").status_code == 404
        assert client.post(f"{JOBS}/{bad}/cancel").status_code == 404
    assert client.get(f"{JOBS}?limit=0").status_code == 400
    assert client.get(f"{JOBS}?cursor=garbage").status_code == 400


def test_a_job_that_fails_keeps_the_routes_problem(client, app, demo_db) -> None:
    body = {"strategy_id": 1, "parameters": {}, "symbols": ["SYN003"], "use_parallel": False}
    job = client.post(JOBS, json={"kind": "all", "request": body}).get_json()
    assert client.delete("/api/crypto/cryptocurrencies/SYN003").status_code == 200  # gone before it runs
    ended = _run_one(app)
    assert ended["job_id"] == job["job_id"] and ended["state"] == "failed"
    shown = client.get(f"{JOBS}/{job['job_id']}").get_json()
    route = client.post("/api/crypto/backtest/all", json=body)
    assert shown["error"]["status"] == route.status_code == 404
    assert shown["error"]["errors"] == route.get_json()["errors"] and shown["batch_id"] is None


def test_a_monte_carlo_too_large_is_refused_before_it_is_queued(app, client, demo_db, monkeypatch) -> None:
    monkeypatch.setattr(app.extensions["backtest_service"], "max_sweep_backtests", 1_000)
    body = {"strategy_id": 1, "parameters": {}, "method": "trades", "paths": 100}  # 24 cryptos: 2,400 backtests
    resp = client.post(JOBS, json={"kind": "montecarlo", "request": body})
    route = client.post("/api/crypto/backtest/montecarlo", json=body)
    assert resp.status_code == route.status_code == 400
    assert resp.get_json()["errors"] == _inside_request(route.get_json()["errors"])
    assert resp.get_json()["errors"][0]["field"] == "request.paths"
    assert client.get(JOBS).get_json()["jobs"] == []


def test_a_grid_too_large_is_refused_before_it_is_queued(client, demo_db) -> None:
    body = {"strategy_id": 1, "grid": {"rsi_period": list(range(2, 1000)),
                                       "oversold_threshold": {"start": 1, "stop": 29, "step": 0.5}}}
    resp = client.post(JOBS, json={"kind": "sweep", "request": body})
    route = client.post("/api/crypto/backtest/sweep", json=body)
    assert resp.status_code == route.status_code == 400
    assert resp.get_json()["errors"] == _inside_request(route.get_json()["errors"])
    assert client.get(JOBS).get_json()["jobs"] == []
