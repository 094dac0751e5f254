"""GET /api/openapi.json: an OpenAPI 3.1 description of every route, built from the same models.

Request bodies come from the pydantic request models, so the document cannot
drift from what the API accepts; response bodies are JSON Schemas written
here, and a schemathesis test checks every real response against them.
"""
from __future__ import annotations

from typing import Any

from flask_restful import Resource

from api.http.schemas import (BatchBacktestRequest, JobRequest, MonteCarloRequest, SingleBacktestRequest,
                              SweepBacktestRequest, WalkForwardRequest)
from api.services import catalog
from api.services.candle_checks import DATE_FORMATS, MAX_GAPS

_NUM = {"type": ["number", "null"]}
_STR = {"type": "string"}

PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "errors"],
    "properties": {
        "type": _STR, "title": _STR, "status": {"type": "integer"}, "detail": _STR,
        "errors": {"type": "array", "minItems": 1,
                   "items": {"type": "object", "required": ["field", "message"],
                             "properties": {"field": _STR, "message": _STR}}},
    },
}
NOT_READY = {**PROBLEM, "required": [*PROBLEM["required"], "database"], "properties": {
    **PROBLEM["properties"], "database": {"enum": ["unreachable", "reachable"]},
    "current_revision": {"type": ["string", "null"]}, "head_revision": _STR, "at_head": {"type": "boolean"}}}

METRICS = catalog.metric_specs()
_INT = {"type": "integer"}
TRADE = {"type": "object", "required": ["entry_time", "entry_bar", "entry_price", "exit_time", "exit_bar",
                                        "exit_price", "units", "fees", "pnl", "return_pct", "bars_held",
                                        "exit_reason", "is_open"],
         "properties": {"entry_time": _STR, "entry_bar": _INT, "entry_price": {"type": "number"},
                        "exit_time": {"type": ["string", "null"]}, "exit_bar": {"type": ["integer", "null"]},
                        "exit_price": _NUM, "units": {"type": "number"}, "entry_value": {"type": "number"},
                        "exit_value": {"type": "number"}, "entry_fee": {"type": "number"},
                        "exit_fee": {"type": "number"}, "fees": {"type": "number"}, "pnl": {"type": "number"},
                        "return_pct": {"type": "number"},
                        "bars_held": {**_INT, "description": "exit fill bar - entry fill bar (the last bar "
                                                             "for an open trade)"},
                        "exit_reason": {"enum": ["signal", "stop_loss", "trailing_stop", "take_profit", "end"]},
                        "is_open": {"type": "boolean"}}}
RESULT = {
    "type": "object",
    "required": ["crypto_id", "symbol", "name", *[m["name"] for m in METRICS], "calculation_time_ms", "error"],
    "properties": {
        "crypto_id": {"type": "integer"}, "symbol": _STR, "name": _STR, "interval": _STR,
        "candles": {"type": "integer"},
        "first_time": {"type": ["string", "null"]}, "last_time": {"type": ["string", "null"]},
        "data_version": {"type": ["integer", "null"],
                         "description": "version of the crypto's candles the result was computed on"},
        **{m["name"]: {"type": [m["kind"], "null"], "description": m["description"]} for m in METRICS},
        "calculation_time_ms": {"type": "number"},
        "error": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["code", "message"],
                                               "properties": {"code": _STR, "message": _STR}}]},
        "trades": {"type": "array", "items": TRADE},
        "equity_curve": {"type": "array", "items": {
            "type": "object", "required": ["time", "equity", "buy_and_hold", "drawdown"],
            "properties": {"time": _STR, "equity": {"type": "number"},
                           "buy_and_hold": {"type": "number", "description": "buy and hold's value at that close"},
                           "drawdown": {"type": ["number", "null"], "description": "% below the running peak"}}}},
    },
}

_PRICE = {"type": "number"}
CANDLES = {
    "type": "object", "required": ["symbol", "interval", "count", "candles"],
    "properties": {"symbol": _STR, "interval": _STR, "count": {"type": "integer"},
                   "candles": {"type": "array", "items": {
                       "type": "object", "required": ["time", "open", "high", "low", "close", "volume"],
                       "properties": {"time": {"type": "integer", "description": "epoch seconds (UTC)"},
                                      "open": _PRICE, "high": _PRICE, "low": _PRICE, "close": _PRICE,
                                      "volume": _PRICE}}}},
}

SUMMARY = {
    "type": "object",
    "required": ["total_cryptos", "successful", "failed", "total_time", "parallel", "processes", "strategy_id",
                 "parameters", "best_return", "worst_return", "average_return"],
    "properties": {
        "total_cryptos": {"type": "integer"}, "successful": {"type": "integer"}, "failed": {"type": "integer"},
        "total_time": {"type": "number"}, "parallel": {"type": "boolean"}, "processes": {"type": "integer"},
        "executor": {"enum": ["process", "dask", "sequential"], "description": "what ran the batch (EXECUTOR)"},
        "workers": {"type": "integer", "description": "pool processes or Dask workers that ran it"},
        "strategy_id": {"type": "integer"}, "parameters": {"type": "object"},
        "best_return": _NUM, "worst_return": _NUM, "average_return": _NUM,
        "best_symbol": {"type": ["string", "null"]}, "worst_symbol": {"type": ["string", "null"]},
        "batch_id": {"type": ["string", "null"]},
        "computed": {"type": "integer", "description": "results computed by this request"},
        "from_store": {"type": "integer", "description": "results answered from stored ones (same strategy, "
                                                         "parameters, span and data version)"},
        "selection": {"type": "object", "properties": {"symbols": {"type": ["array", "null"]},
                                                       "start": {"type": ["string", "null"]},
                                                       "end": {"type": ["string", "null"]}}},
    },
}

BATCH = {"type": "object", "required": ["results", "summary"],
         "properties": {"results": {"type": "array", "items": RESULT}, "summary": SUMMARY}}
LIST_SWEEP = {"type": "object", "required": ["settings", "summary"], "properties": {
    "settings": {"type": "array", "items": {"type": "object", "required": ["parameters", "summary", "results"],
                                            "properties": {"parameters": {"type": "object"}, "summary": SUMMARY,
                                                           "results": {"type": "array", "items": RESULT}}}},
    "summary": {"type": "object"}}}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
AGGREGATE = {"type": "object", "required": ["median_return", "mean_return", "beat_buy_and_hold", "mean_sharpe",
                                            "worst_drawdown", "successful"],
             "properties": {"median_return": _NUMBER_OR_NULL, "mean_return": _NUMBER_OR_NULL,
                            "beat_buy_and_hold": _NUMBER_OR_NULL, "mean_sharpe": _NUMBER_OR_NULL,
                            "worst_drawdown": _NUMBER_OR_NULL, "successful": {"type": "integer"}}}
GRID_SWEEP = {"type": "object", "required": ["settings", "top", "best_per_crypto", "summary"], "properties": {
    "settings": {"type": "array", "items": {"type": "object", "required": ["parameters", "aggregate"],
                                            "properties": {"parameters": {"type": "object"},
                                                           "aggregate": AGGREGATE}}},
    "top": {"type": "array", "items": {"type": "object", "required": ["parameters", "aggregate", "results"],
                                       "properties": {"parameters": {"type": "object"}, "aggregate": AGGREGATE,
                                                      "results": {"type": "array", "items": RESULT}}}},
    "best_per_crypto": {"type": "array", "items": {"type": "object", "required": ["crypto_id", "symbol", "parameters",
                                                                                  "total_return"]}},
    "summary": {"type": "object", "description": "with computed and from_store in backtests, skipped, rank_by, "
                                                 "top, best_parameters, best_aggregate"}}}
SWEEP = {"oneOf": [LIST_SWEEP, GRID_SWEEP], "description": "a parameter_sets sweep, or a grid's answer"}
_PERCENTILES = {"type": "object", "properties": {f"p{p}": _NUMBER_OR_NULL for p in (5, 25, 50, 75, 95)}}
MONTE_CARLO = {"type": "object", "required": ["results", "summary"], "properties": {
    "results": {"type": "array", "items": {"type": "object", "required": ["crypto_id", "symbol", "error"],
                                           "properties": {
                                               "crypto_id": {"type": "integer"}, "symbol": _STR,
                                               "original": {"type": "object"}, "paths": {"type": "integer"},
                                               "percentiles": {"type": "object",
                                                               "additionalProperties": _PERCENTILES},
                                               "probability_of_loss": {"type": "number"},
                                               "original_percentile": _NUMBER_OR_NULL,
                                               "error": {"type": ["object", "null"]}}}},
    "summary": {"type": "object"}}}
_WINDOW = {"type": "object", "required": ["window", "train_start", "train_end", "test_start", "test_end", "parameters",
                                          "in_sample", "out_of_sample", "error"],
           "properties": {"window": {"type": "integer"}, "train_start": _STR, "train_end": _STR, "test_start": _STR,
                          "test_end": _STR, "train_candles": {"type": "integer"}, "test_candles": {"type": "integer"},
                          "parameters": {"type": ["object", "null"]}, "in_sample": {"type": ["object", "null"]},
                          "out_of_sample": {"type": ["object", "null"]}, "error": {"type": ["object", "null"]}},
           "description": "spans are half open: [start, end); the setting chosen on the train span, its metrics "
                          "there and on the test span alone"}
WALK_FORWARD = {"type": "object", "required": ["results", "summary"], "properties": {
    "results": {"type": "array", "items": {"type": "object", "required": ["crypto_id", "symbol", "windows",
                                                                          "out_of_sample", "error"],
                                           "properties": {
                                               "crypto_id": {"type": "integer"}, "symbol": _STR,
                                               "windows": {"type": "array", "items": _WINDOW},
                                               "out_of_sample": {"type": ["object", "null"], "description":
                                                                 "metrics of the test runs chained into one "
                                                                 "account"},
                                               "equity_curve": {"type": "array", "items": {"type": "object"}},
                                               "error": {"type": ["object", "null"]}}}},
    "summary": {"type": "object", "required": ["in_sample", "out_of_sample", "decay_ratio"]}}}
JOB = {"type": "object", "required": ["job_id", "kind", "state", "progress", "eta_seconds", "created_at",
                                      "started_at", "finished_at", "error", "batch_id", "result_url"],
       "properties": {"job_id": _STR, "kind": _STR,
                      "state": {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
                      "progress": {"type": "object", "properties": {"done": {"type": "integer"},
                                                                    "total": {"type": ["integer", "null"]}}},
                      "eta_seconds": _NUMBER_OR_NULL, "created_at": _STR,
                      "started_at": {"type": ["string", "null"]}, "finished_at": {"type": ["string", "null"]},
                      "attempts": {"type": "integer"}, "cancel_requested": {"type": "boolean"},
                      "error": {"type": ["object", "null"], "description": "a failed job's problem+json"},
                      "batch_id": {"type": ["string", "null"]}, "result_url": {"type": ["string", "null"]},
                      "request": {"type": "object"}}}
JOB_LIST = {"type": "object", "required": ["jobs", "next_cursor"],
            "properties": {"jobs": {"type": "array", "items": JOB}, "next_cursor": {"type": ["string", "null"]}}}
SINGLE = {"type": "object", "required": ["result", "strategy_id", "parameters"],
          "properties": {"result": RESULT, "strategy_id": {"type": "integer"}, "parameters": {"type": "object"},
                         "batch_id": {"type": ["string", "null"]}}}
STRATEGY_LIST = {"type": "object", "required": ["strategies", "count"], "properties": {
    "count": {"type": "integer"},
    "strategies": {"type": "array", "items": {"type": "object", "required": ["id", "code", "name", "parameter_schema"],
                                              "properties": {"id": {"type": "integer"}, "code": _STR, "name": _STR,
                                                             "description": _STR,
                                                             "parameter_schema": {"type": "object"}}}}}}
_MISSING = {"type": "integer", "minimum": 0,
            "description": "candles missing at the crypto's interval between its first and last candle: "
                           "(last - first) / interval + 1 - rows"}
CRYPTOS = {"type": "object", "required": ["cryptocurrencies", "count"], "properties": {
    "count": {"type": "integer"},
    "cryptocurrencies": {"type": "array", "items": {
        "type": "object", "required": ["id", "symbol", "rows", "missing_candles"],
        "properties": {"id": {"type": "integer"}, "symbol": _STR, "name": _STR, "interval": _STR,
                       "is_synthetic": {"type": "boolean"}, "first_time": _STR, "last_time": _STR,
                       "rows": {"type": "integer"}, "missing_candles": {**_MISSING, "type": ["integer", "null"]}}}}}}
GAP = {"type": "object", "required": ["after", "before", "missing"], "properties": {
    "after": {**_STR, "description": "time of the candle before the gap"},
    "before": {**_STR, "description": "time of the candle after the gap"},
    "missing": {"type": "integer", "minimum": 1, "description": "candles of the interval that fit in the gap"}}}
IMPORT_REPORT = {"type": "object", "required": ["symbol", "rows_read", "rows_stored", "rows_rejected", "errors",
                                                "date_format", "missing_candles", "largest_gaps"],
                 "properties": {"symbol": _STR, "interval": {"type": ["string", "null"]},
                                "rows_read": {"type": "integer"}, "rows_stored": {"type": "integer"},
                                "rows_rejected": {"type": "integer"},
                                "rows_unchanged": {"type": "integer", "description":
                                                   "of rows_stored, candles already stored with the same values"},
                                "date_format": {"type": "string", "enum": list(DATE_FORMATS),
                                                "description": "how the file's dates were read (one format for "
                                                               "the file): iso = ISO 8601, epoch = s/ms/us "
                                                               "numbers, dmy = dd/mm/yy(yy), mdy = mm/dd/yy(yy)"},
                                "missing_candles": {**_MISSING, "description": "in the crypto's whole stored "
                                                    "series after this import, at its interval (a file that "
                                                    "fills a hole lowers it)"},
                                "largest_gaps": {"type": "array", "maxItems": MAX_GAPS, "items": GAP,
                                                 "description": "the largest gaps of that series, largest first"},
                                "rejected_by_reason": {"type": "object"},
                                "errors": {"type": "array", "items": {"type": "object"}}}}
HEALTH = {"type": "object", "required": ["status"], "properties": {"status": _STR}}
BATCH_LIST = {"type": "object", "required": ["batches", "next_cursor"], "properties": {
    "next_cursor": {"type": ["string", "null"]},
    "batches": {"type": "array", "items": {"type": "object", "required": ["batch_id", "kind", "strategy_id",
                                                                          "created_at", "summary"],
                                           "properties": {"batch_id": _STR, "kind": {"enum": [
                                                              "all", "sweep", "grid", "walkforward", "montecarlo", "single"]},
                                                          "strategy_id": {"type": "integer"}, "created_at": _STR,
                                                          "cryptos": {"type": "integer"},
                                                          "summary": {"type": "object"}}}}}}
DELETED = {"type": "object", "required": ["deleted", "count"], "properties": {
    "count": {"type": "integer"},
    "deleted": {"type": "array", "items": {"type": "object", "required": ["symbol", "candles", "results"],
                                           "properties": {"symbol": _STR, "candles": {"type": "integer"},
                                                          "results": {"type": "integer"}}}}}}


def _problem(description: str, schema: dict[str, Any] = PROBLEM, retry_after: bool = False) -> dict[str, Any]:
    response = {"description": description, "content": {"application/problem+json": {"schema": schema}}}
    if retry_after:
        response["headers"] = {"Retry-After": {"description": "seconds to wait before trying again",
                                               "required": True, "schema": {"type": "integer", "minimum": 0}}}
    return response


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _parameters_ref(strategy_id: int) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/Strategy{strategy_id}Parameters"}


def _body(model: Any, field: str) -> dict[str, Any]:
    """The request body: one variant per strategy, whose `parameters` (or each of `parameter_sets`, or `fixed`
    beside a `grid`) is that strategy's own schema, generated from the engine's registry. Cross-field rules (fast < slow, ...) are
    not expressible here; they answer 400 naming the field."""
    base = model.model_json_schema()
    variants = []
    for strategy_id in catalog.parameter_json_schemas():
        props = dict(base["properties"])
        props["strategy_id"] = {"const": strategy_id}
        if field == "parameters":
            props["parameters"] = _parameters_ref(strategy_id)
        else:  # a grid; a sweep takes exactly one of parameter_sets or grid (400 otherwise)
            if field == "parameter_sets":
                props["parameter_sets"] = {"type": "array", "minItems": 1, "maxItems": 500,
                                           "items": _parameters_ref(strategy_id)}
            props["grid"] = {"type": "object", "minProperties": 1, "description": props["grid"].get("description"),
                             "additionalProperties": {"oneOf": [
                                 {"type": "array", "minItems": 1},
                                 {"type": "object", "required": ["start", "stop", "step"],
                                  "additionalProperties": False,
                                  "properties": {k: {"type": "number"} for k in ("start", "stop", "step")}}]}}
            props["fixed"] = _parameters_ref(strategy_id)
        variants.append({**base, "title": f"{base['title']} (strategy {strategy_id})", "properties": props})
    return {"required": True, "content": {"application/json": {"schema": {"oneOf": variants}}}}


_POST_ERRORS = {
    "400": _problem("invalid body or parameters, or a body that cannot be read; `errors` names each field"),
    "404": _problem("unknown strategy or cryptocurrency"),
    "408": _problem("the body was not complete within REQUEST_BODY_TIMEOUT_SECONDS"),
    "413": _problem("the body is larger than MAX_UPLOAD_MB"),
    "415": _problem("the body is not application/json"),
    "429": _problem("a backtest is already running in this server process; retry after Retry-After",
                    retry_after=True),
    "503": _problem("the database is down, locked or too slow; retry after Retry-After", retry_after=True),
}

_KEY_ERRORS = {
    "409": _problem("the request with this Idempotency-Key is still running", retry_after=True),
    "422": _problem("this Idempotency-Key was used with another request"),
}

_BATCH_ERRORS = {  # the routes that fan out over many cryptos
    **_KEY_ERRORS,
    "422": _problem("this Idempotency-Key was used with another request, or the request would run more than "
                    "SYNC_MAX_BACKTESTS backtests: `detail` says how many and to submit it to POST /api/jobs"),
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the whole API."""
    key_header = {"name": "Idempotency-Key", "in": "header", "required": False,
                  "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,255}$"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Crypto backtesting service", "version": "1.0.0",
                 "description": "Runs a trading strategy against every cryptocurrency in PostgreSQL, "
                                "in parallel, and answers with a ranked table. Every error answers "
                                "application/problem+json with a non-empty `errors` list of {field, message}; "
                                "a URL that is no route answers 404, a method a route does not take 405 with "
                                "`Allow`."},
        "components": {"schemas": {f"Strategy{sid}Parameters": schema
                                   for sid, schema in catalog.parameter_json_schemas().items()}},
        "paths": {
            "/api/crypto/backtest/all": {"post": {
                "summary": "Run a strategy against every cryptocurrency", "parameters": [key_header],
                "requestBody": _body(BatchBacktestRequest, "parameters"),
                "responses": {"200": _ok(BATCH), **_POST_ERRORS, **_BATCH_ERRORS}}},
            "/api/crypto/backtest/sweep": {"post": {
                "summary": "Run many parameter settings against every cryptocurrency", "parameters": [key_header],
                "requestBody": _body(SweepBacktestRequest, "parameter_sets"),
                "responses": {"200": _ok(SWEEP), **_POST_ERRORS, **_BATCH_ERRORS}}},
            "/api/crypto/backtest/walkforward": {"post": {
                "summary": "Walk-forward of a grid on every cryptocurrency: per window the best setting on the "
                           "train span, run alone on the test span; the test runs chained",
                "parameters": [key_header],
                "requestBody": _body(WalkForwardRequest, "grid"),
                "responses": {"200": _ok(WALK_FORWARD), **_POST_ERRORS, **_BATCH_ERRORS}}},
            "/api/crypto/backtest/montecarlo": {"post": {
                "summary": "Monte Carlo robustness of a strategy on every cryptocurrency (trades or bars); the "
                           "same seed gives the same answer at any worker count",
                "parameters": [key_header],
                "requestBody": _body(MonteCarloRequest, "parameters"),
                "responses": {"200": _ok(MONTE_CARLO), **_POST_ERRORS, **_BATCH_ERRORS}}},
            "/api/crypto/backtest": {"post": {
                "summary": "Backtest one cryptocurrency, with trades and equity curve", "parameters": [key_header],
                "requestBody": _body(SingleBacktestRequest, "parameters"),
                "responses": {"200": _ok(SINGLE), **_POST_ERRORS, **_KEY_ERRORS}}},
            "/api/crypto/backtest/batches": {"get": {
                "summary": "Stored batches, newest first; `next_cursor` gives the next page",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    {"name": "strategy_id", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                    {"name": "symbol", "in": "query", "schema": {"type": "string"}},
                    {"name": "since", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": _ok(BATCH_LIST), "400": _problem("a bad filter or cursor"),
                              "404": _problem("unknown symbol"),
                              "503": _problem("database unavailable", retry_after=True)}}},
            "/api/crypto/backtest/batches/{batch_id}": {"get": {
                "summary": "One batch as it answered (JSON), or its rows as CSV (?format=csv or Accept: text/csv)",
                "parameters": [{"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"}},
                               {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}}],
                "responses": {"200": {"description": "the batch", "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "text/csv": {"schema": {"type": "string"}}}},
                    "400": _problem("an unknown format"),
                    "404": _problem("no such batch"),
                    "503": _problem("database unavailable", retry_after=True)}}},
            "/api/crypto/backtest/batches/{batch_id}/trades": {"get": {
                "summary": "Every trade of the batch as CSV, one row per trade with its symbol (computed again "
                           "from the same inputs: equal to /backtest's)",
                "parameters": [{"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"}},
                               {"name": "format", "in": "query", "schema": {"enum": ["csv"]}}],
                "responses": {"200": {"description": "the trades", "content": {"text/csv": {"schema": {
                    "type": "string"}}}},
                    "400": _problem("an unknown format"),
                    "404": _problem("no such batch"),
                    "409": _problem("a crypto's candles changed since the batch"),
                    "503": _problem("database unavailable", retry_after=True)}}},
            "/api/crypto/prices": {"post": {
                "summary": "Upload one candle file (CSV, Binance kline CSV, Parquet or .xlsx); bad rows are reported",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"},
                                   "symbol": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"},
                                   "sheet": {"type": "string"},
                                   "date_format": {
                                       "type": "string", "enum": ["auto", *DATE_FORMATS], "default": "auto",
                                       "description": "how the dates are written: dmy = dd/mm/yyyy or "
                                                      "dd/mm/yy, mdy = mm/dd/yyyy or mm/dd/yy (separator / - or ., "
                                                      "optional HH:MM[:SS]; yy 69-99 = 19yy, 00-68 = 20yy), iso = "
                                                      "ISO 8601, epoch = s/ms/us numbers. auto decides once per "
                                                      "file: ISO 8601, epoch or day-month-year (the order by a "
                                                      "first or second field over 12; a file where both readings "
                                                      "fit every row is a 400 naming date_format). A cell in "
                                                      "another format is a rejected row, never guessed"}}}}}},
                "responses": {"201": _ok(IMPORT_REPORT, "imported"), **_POST_ERRORS,
                              "409": _problem("another import of the same symbol held its lock past "
                                              "LOCK_TIMEOUT_MS; nothing stored, retry after Retry-After"),
                              "413": _problem("the upload is larger than MAX_UPLOAD_MB"),
                              "415": _problem("the body is not multipart/form-data")}}},
            "/api/jobs": {
                "post": {"summary": "Queue a long request (kind all, sweep, walkforward or montecarlo, with the body "
                                    "its route takes); checked first like that route",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": JobRequest.model_json_schema()}}},
                         "responses": {"202": {**_ok(JOB, "queued"), "headers": {"Location": {
                             "description": "the job's URL", "schema": {"type": "string"}}}},
                             **{k: v for k, v in _POST_ERRORS.items() if k != "429"}}},
                "get": {"summary": "Jobs, newest first; `next_cursor` gives the next page",
                        "parameters": [
                            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                        "maximum": 500}},
                            {"name": "cursor", "in": "query", "schema": {"type": "string"}}],
                        "responses": {"200": _ok(JOB_LIST), "400": _problem("a bad limit or cursor"),
                                      "503": _problem("database unavailable", retry_after=True)}}},
            "/api/jobs/{job_id}": {"get": {
                "summary": "A job: state, progress, eta, its error or its result's URL",
                "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _ok(JOB), "404": _problem("no such job"),
                              "503": _problem("database unavailable", retry_after=True)}}},
            "/api/jobs/{job_id}/cancel": {"post": {
                "summary": "Cancel a queued job, or stop a running one (nothing of it is stored)",
                "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"202": _ok(JOB, "cancelled, or asked to stop"), "404": _problem("no such job"),
                              "503": _problem("database unavailable", retry_after=True)}}},
            "/api/strategies": {"get": {"summary": "The strategy catalog with parameter schemas",
                                        "responses": {"200": _ok(STRATEGY_LIST),
                                                      "503": _problem("database unavailable", retry_after=True)}}},
            "/api/crypto/cryptocurrencies": {
                "get": {"summary": "Cryptocurrencies with price data",
                        "responses": {"200": _ok(CRYPTOS),
                                      "503": _problem("database unavailable", retry_after=True)}},
                "delete": {"summary": "Delete every synthetic demo crypto (with its candles and results)",
                           "parameters": [{"name": "synthetic", "in": "query", "required": True,
                                           "schema": {"const": "true"}}],
                           "responses": {"200": _ok(DELETED), "400": _problem("synthetic=true is missing"),
                                         "409": _problem("a batch is storing results for one of them; nothing "
                                                         "deleted", retry_after=True),
                                         "503": _problem("database unavailable", retry_after=True)}}},
            "/api/crypto/cryptocurrencies/{symbol}": {"delete": {
                "summary": "Delete one cryptocurrency with its candles and results",
                "parameters": [{"name": "symbol", "in": "path", "required": True,
                                "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"}}],
                "responses": {"200": _ok(DELETED), "404": _problem("no such cryptocurrency"),
                              "409": _problem("a batch is storing results for it or an import is writing it; "
                                              "nothing deleted", retry_after=True),
                              "503": _problem("database unavailable", retry_after=True)}}},
            "/api/crypto/cryptocurrencies/{symbol}/candles": {"get": {
                "summary": "One cryptocurrency's candles (inside start..end), as a price chart takes them",
                "parameters": [{"name": "symbol", "in": "path", "required": True,
                                "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"}},
                               {"name": "start", "in": "query", "required": False, "schema": _STR},
                               {"name": "end", "in": "query", "required": False, "schema": _STR}],
                "responses": {"200": _ok(CANDLES), "400": _problem("start or end is no date or datetime"),
                              "404": _problem("no such cryptocurrency"),
                              "503": _problem("database unavailable", retry_after=True)}}},
            "/api/health": {"get": {"summary": "The process answers", "responses": {"200": _ok(HEALTH)}}},
            "/api/ready": {"get": {"summary": "Database reachable and migrations at head",
                                   "responses": {"200": _ok(HEALTH), "503": _problem(
                                       "not ready: the database is unreachable or migrations are not at head; "
                                       "retry after Retry-After", NOT_READY, retry_after=True)}}},
            "/api/openapi.json": {"get": {"summary": "This document",
                                          "responses": {"200": _ok({"type": "object"})}}},
        },
    }


class OpenApiResource(Resource):
    def get(self):
        return openapi_document(), 200
