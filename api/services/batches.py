"""Past batches: list them, read one back as it answered, export it as CSV.

A batch's answer is rebuilt from its record (the summary it answered with)
and its result rows (its own plus the stored ones it answered from), so
nothing is stored twice. Rows of a crypto deleted since are gone with it.
Trades are not stored: a single backtest read back has its result row
without the trade list and equity curve.
"""
from __future__ import annotations

import base64
import csv
import io
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from api.db import repository as repo
from api.db.repository import epoch_of_iso
from api.engine import get_strategy, required_fields
from api.services.errors import Conflict, NotFound, ValidationFailed
from api.services.grid_answer import grid_answer
from api.services.results import (CryptoSettings, backtest_settings, rank_results, ranked_settings, stored_result,
                                  stored_settings)
from api.services.selection import known_symbol_shape, parse_selection, within_span

MAX_PAGE = 500
RESULTS_ON_RECORD = ("montecarlo", "walkforward")  # kinds whose results are on the batch record (migration 0014)
CSV_HEAD = ("symbol", "crypto_id", "name", "interval", "candles", "first_time", "last_time", "data_version",
            *repo.METRIC_COLUMNS, "calculation_time_ms", "error_code", "error_message")


def list_batches(engine: Engine, limit: Any = 50, cursor: Any = None, strategy_id: Any = None,
                 symbol: Any = None, since: Any = None) -> dict[str, Any]:
    """{"batches": [...newest first], "next_cursor": str | None}; ValidationFailed naming a bad filter."""
    limit = checked_int(limit, "limit", 1, MAX_PAGE)
    strategy = None if strategy_id is None else checked_int(strategy_id, "strategy_id", 1, 2**31 - 1)
    after = None if cursor is None else _cursor(cursor)
    if since is not None:
        _instant(since)
    with engine.connect() as conn:
        crypto_id = None
        if symbol is not None:
            crypto = repo.find_crypto(conn, symbol=known_symbol_shape(symbol))
            if crypto is None:
                raise NotFound(f"cryptocurrency {symbol!r} does not exist",
                               [{"field": "symbol", "message": f"no cryptocurrency {symbol!r}"}])
            crypto_id = crypto["id"]
        rows = repo.list_batches(conn, limit + 1, after, strategy, crypto_id, since)
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1]) if len(rows) > limit else None
    return {"batches": [{"batch_id": r["batch_id"], "kind": r["kind"], "strategy_id": r["strategy_id"],
                         "created_at": r["created_at"], "cryptos": r["cryptos"], "summary": r["summary"]}
                        for r in page], "next_cursor": next_cursor}


def read_batch(engine: Engine, batch_id: str) -> dict[str, Any]:
    """The batch's answer as it gave it (for a single backtest: without its trades); NotFound if unknown."""
    record, rows = _load(engine, batch_id)
    summary = record["summary"]
    if record["kind"] == "grid":
        return grid_answer(_grid_settings(record, rows), record["parameter_sets"], summary["rank_by"],
                           summary["top"], summary)
    if record["kind"] in RESULTS_ON_RECORD:
        return {"results": record["results"], "summary": summary}
    results = [_result(r) for r in rows]
    if record["kind"] == "all":
        return {"results": rank_results(results), "summary": summary}
    if record["kind"] == "single":
        return {"result": results[0] if results else None, **summary}
    by_setting: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for row, result in zip(rows, results):
        key = repo.parameters_hash(row["parameters"])
        by_setting.setdefault(key, (row["parameters"], []))[1].append(result)
    settings = ranked_settings(list(by_setting.values()), summary["total_time"], summary["parallel"],
                               summary["processes"], record["strategy_id"])
    return {"settings": settings, "summary": summary}


def batch_csv(engine: Engine, batch_id: str) -> str:
    """One CSV row per result (a sweep or grid adds each row's parameters as JSON), every metric, the error."""
    record, rows = _load(engine, batch_id)
    if record["kind"] == "montecarlo":
        return _montecarlo_csv(record["results"])
    if record["kind"] == "walkforward":
        return _walkforward_csv(record["results"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    sweep = record["kind"] in ("sweep", "grid")
    writer.writerow((*CSV_HEAD, "parameters") if sweep else CSV_HEAD)
    for params, result in _results_of(record, rows):
        error = result["error"] or {}
        line = _cells([result[k] for k in CSV_HEAD[:-2]] + [error.get("code", ""), error.get("message", "")])
        if sweep:
            line.append(orjson.dumps(params, option=orjson.OPT_SORT_KEYS).decode())
        writer.writerow(line)
    return out.getvalue()


MONTE_CARLO_HEAD = ("symbol", "crypto_id", "name", "interval", "candles", "first_time", "last_time", "data_version",
                    "paths", "original_total_return", "original_max_drawdown", "original_sharpe_ratio",
                    "probability_of_loss", "original_percentile",
                    *(f"{m}_p{p}" for m in ("total_return", "max_drawdown", "sharpe_ratio")
                      for p in (5, 25, 50, 75, 95)), "error_code", "error_message")


def _montecarlo_csv(results: list[dict[str, Any]]) -> str:
    """A Monte Carlo batch: one row per crypto, its original metrics, shares and every percentile."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MONTE_CARLO_HEAD)
    for r in results:
        original = r.get("original") or {}
        percentiles = r.get("percentiles") or {}
        error = r["error"] or {}
        cells = [r.get(k) for k in MONTE_CARLO_HEAD[:8]] + [r.get("paths")] + [
            original.get(k) for k in ("total_return", "max_drawdown", "sharpe_ratio")] + [
            r.get("probability_of_loss"), r.get("original_percentile")] + [
            (percentiles.get(m) or {}).get(f"p{p}") for m in ("total_return", "max_drawdown", "sharpe_ratio")
            for p in (5, 25, 50, 75, 95)] + [error.get("code", ""), error.get("message", "")]
        writer.writerow(_cells(cells))
    return out.getvalue()


WALK_FORWARD_HEAD = ("symbol", "crypto_id", "name", "interval", "window", "train_start", "train_end", "test_start",
                     "test_end", "train_candles", "test_candles", "parameters",
                     *(f"is_{m}" for m in repo.METRIC_COLUMNS), *(f"oos_{m}" for m in repo.METRIC_COLUMNS),
                     "error_code", "error_message")


def _walkforward_csv(results: list[dict[str, Any]]) -> str:
    """A walk-forward batch: one row per crypto and window (spans half open), in-sample (is_) and out-of-sample
    (oos_) metrics of the chosen setting; then per crypto a row `chained` with its chained account's metrics."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(WALK_FORWARD_HEAD)
    for r in results:
        lead = [r.get(k) for k in WALK_FORWARD_HEAD[:4]]
        for w in r["windows"]:
            error = w["error"] or {}
            params = "" if w["parameters"] is None else orjson.dumps(w["parameters"], option=orjson.OPT_SORT_KEYS
                                                                     ).decode()
            writer.writerow(_cells(lead + [w.get(k) for k in WALK_FORWARD_HEAD[4:11]] + [params] + [
                (w["in_sample"] or {}).get(m) for m in repo.METRIC_COLUMNS] + [
                (w["out_of_sample"] or {}).get(m) for m in repo.METRIC_COLUMNS] + [
                error.get("code", ""), error.get("message", "")]))
        error = r["error"] or {}
        writer.writerow(_cells(lead + ["chained"] + [None] * 7 + [None] * len(repo.METRIC_COLUMNS) + [
            (r["out_of_sample"] or {}).get(m) for m in repo.METRIC_COLUMNS] + [
            error.get("code", ""), error.get("message", "")]))
    return out.getvalue()


def _results_of(record: Mapping[str, Any], rows: list[dict[str, Any]]) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(parameters, result) of every backtest of the batch: a grid's crypto by crypto, setting by setting."""
    if record["kind"] != "grid":
        for row in rows:
            yield row.get("parameters"), _result(row)
        return
    sets = record["parameter_sets"]
    for settings in _grid_settings(record, rows):
        for i, params in enumerate(sets):
            yield params, settings.result(i)


def _grid_settings(record: Mapping[str, Any], rows: list[dict[str, Any]]) -> list[CryptoSettings]:
    """A grid batch's rows as each crypto's CryptoSettings, in crypto order."""
    k = len(record["parameter_sets"])
    return [stored_settings(_crypto(row), row, k) for row in rows]


TRADE_HEAD = ("symbol", "entry_time", "entry_bar", "entry_price", "exit_time", "exit_bar", "exit_price", "units",
              "entry_value", "exit_value", "entry_fee", "exit_fee", "fees", "pnl", "return_pct", "bars_held",
              "exit_reason", "is_open")


def batch_trades_csv(engine: Engine, batch_id: str) -> str:
    """Every trade of the batch's results, one CSV row each with its symbol (a sweep adds the parameters).

    Trades are not stored: they are computed again from the same candles,
    strategy, parameters and span, so they equal what /backtest gives for
    those inputs. Conflict when a crypto's candles changed since the batch
    (its data version moved on): its trades could not be the batch's.
    """
    record, rows = _load(engine, batch_id)
    summary = record["summary"]
    if record["kind"] == "grid":
        rows = _top_rows(record, rows)
    elif record["kind"] == "montecarlo":  # the original runs' trades
        rows = [{**r, "parameters": summary["parameters"]} for r in record["results"]]
    elif record["kind"] == "walkforward":  # each window's test run
        rows = _test_runs(record["results"])
    selection = summary.get("selection") or {}
    span = parse_selection(None, selection.get("start"), selection.get("end"))
    spec = get_strategy(int(record["strategy_id"]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    sweep = record["kind"] in ("sweep", "grid", "walkforward")
    windowed = record["kind"] == "walkforward"
    writer.writerow((*TRADE_HEAD, *(("window",) if windowed else ()), "parameters") if sweep else TRADE_HEAD)
    with engine.connect() as conn:
        dbapi = conn.connection.driver_connection
        for row in rows:
            if row["error"] is not None or row["data_version"] is None:
                continue
            params = row["parameters"]
            prices = repo.load_candles(dbapi, row["crypto_id"], required_fields(spec, [params], with_trades=True))
            if prices.version != row["data_version"]:
                raise Conflict(f"the candles of {row['symbol']} changed since this batch; its trades cannot be "
                               "recomputed as they were", [{"field": "batch_id", "message": "candles changed since"}],
                               retry_after=0)
            crypto = {"id": row["crypto_id"], "symbol": row["symbol"], "name": row["name"],
                      "interval": row["interval"]}
            start, end = row["span"] if "span" in row else (span.start, span.end)
            inside = within_span(prices, start, end)
            result = backtest_settings(crypto, spec.id, [params], inside, 0.0, with_trades=True)[0]
            for trade in result.get("trades", []):
                line = _cells([row["symbol"], *(trade[k] for k in TRADE_HEAD[1:])])
                if windowed:
                    line.append(row["window"])
                if sweep:
                    line.append(orjson.dumps(params, option=orjson.OPT_SORT_KEYS).decode())
                writer.writerow(line)
    return out.getvalue()


def _test_runs(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A walk-forward's test runs as trade rows: each window's chosen setting on its test span [start, end)."""
    return [{**r, "parameters": w["parameters"], "window": w["window"],
             "span": (epoch_of_iso(w["test_start"]), epoch_of_iso(w["test_end"]) - 1)}
            for r in results for w in r["windows"] if w["parameters"] is not None and w["error"] is None]


def _top_rows(record: Mapping[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A grid's result rows of its `top` settings (those its answer lists with rows), setting by setting."""
    answer = grid_answer(_grid_settings(record, rows), record["parameter_sets"], record["summary"]["rank_by"],
                         record["summary"]["top"], record["summary"])
    return [{**r, "parameters": setting["parameters"]}
            for setting in answer["top"] for r in setting["results"]]


def _cells(values: list[Any]) -> list[Any]:
    """CSV cells: empty for null, floats by repr (they read back bit for bit)."""
    return ["" if v is None else repr(v) if isinstance(v, float) else v for v in values]


def _load(engine: Engine, batch_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not is_uuid(batch_id):
        raise NotFound(f"no batch {batch_id!r}", [{"field": "batch_id", "message": "not a batch id (a UUID)"}])
    with engine.connect() as conn:
        record = repo.get_batch(conn, batch_id)
        if record is None:
            raise NotFound(f"no batch {batch_id!r}", [{"field": "batch_id", "message": f"no batch {batch_id}"}])
        if record["kind"] == "grid":
            rows = repo.batch_grid_rows(conn, batch_id, record["reused_result_ids"])
        elif record["kind"] in RESULTS_ON_RECORD:
            rows = []
        else:
            rows = repo.batch_result_rows(conn, batch_id, record["reused_result_ids"])
    return record, rows


def _result(row: Mapping[str, Any]) -> dict[str, Any]:
    return stored_result(_crypto(row), row)


def _crypto(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["crypto_id"], "symbol": row["symbol"], "name": row["name"], "interval": row["interval"]}


def is_uuid(value: Any) -> bool:
    """The value reads as a UUID (ids of batches and jobs): anything else is an unknown id, a 404."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def checked_int(value: Any, field: str, lo: int, hi: int) -> int:
    """`value` as an integer in [lo, hi] (a query parameter's text too), else ValidationFailed naming `field`."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or str(value).strip() != str(number) or not lo <= number <= hi:
        raise ValidationFailed(f"{field} must be an integer from {lo} to {hi}",
                               [{"field": field, "message": f"must be an integer from {lo} to {hi}"}])
    return number


def _instant(value: Any) -> None:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed("since must be an ISO 8601 datetime",
                               [{"field": "since", "message": "must be an ISO 8601 date or datetime"}]) from None


def _encode_cursor(row: Mapping[str, Any]) -> str:
    return encode_cursor(row["created_at"], row["batch_id"])


def encode_cursor(created_at: Any, row_id: str) -> str:
    """The next page's cursor after a row (its creation time and id): opaque to the client."""
    return base64.urlsafe_b64encode(f"{created_at}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(value: Any) -> tuple[str, str]:
    """(created_at, id) of a cursor `encode_cursor` gave; ValidationFailed naming `cursor` otherwise."""
    return _cursor(value)


def _cursor(value: Any) -> tuple[str, str]:
    try:
        text = base64.urlsafe_b64decode(str(value) + "=" * (-len(str(value)) % 4)).decode()
        at, batch_id = text.split("|")
        datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(timezone.utc)
        if not is_uuid(batch_id):
            raise ValueError(batch_id)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("cursor is not one this API gave",
                               [{"field": "cursor", "message": "use the next_cursor of the previous page"}]) from None
    return at, batch_id
