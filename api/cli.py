"""Flask CLI commands: `flask --app api seed-demo | backtest-all | sweep | walkforward | montecarlo | batches | ...`."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any

import click
import orjson
from flask import Flask, current_app
from flask.cli import with_appcontext
from tqdm import tqdm

from api.db import migrate
from api.services.candle_checks import DATE_FORMATS
from api.services.catalog import upgrade_database
from api.demo_data import INTERVAL_SECONDS
from api.services.demo_loader import seed_demo
from api.services import batches, catalog
from api.services.errors import ServiceError
from api.services.grid_answer import RANKINGS
from api.services.walkforward import RANK_METRICS, SELECTS
from api.services.selection import parse_selection
from api.services.price_import import ImportReport, import_csv


def register_cli(app: Flask) -> None:
    """Attach the commands to the app's `flask` CLI."""
    app.cli.add_command(db_upgrade_command)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(backtest_all_command)
    app.cli.add_command(import_prices_command)
    app.cli.add_command(montecarlo_command)
    app.cli.add_command(walkforward_command)
    app.cli.add_command(jobs_worker_command)
    app.cli.add_command(delete_cryptos_command)
    app.cli.add_command(batches_command)
    app.cli.add_command(sweep_command)
    app.cli.add_command(export_command)


PROGRESS_OPTION = click.option("--progress", "force_progress", is_flag=True,
                               help="show the progress bar even when stderr is not a terminal")


@contextlib.contextmanager
def progress_bar(unit: str, force: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar on stderr (only on a terminal, unless `force`), moved by the service's progress(done, total):
    the same counter a job's progress is fed by."""
    with tqdm(unit=unit, unit_scale=unit != "crypto", file=sys.stderr, disable=False if force else None,
              leave=False) as bar:
        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()
        yield advance


@click.command("sweep")
@with_appcontext
@click.option("--strategy", "strategy", default="1", show_default=True, metavar="ID|CODE")
@click.option("--grid", "grid", multiple=True, metavar="NAME=START:STOP:STEP|NAME=V1,V2,...",
              help="a grid axis, e.g. --grid rsi_period=7:28:7 --grid execution=close,next_open (repeatable)")
@click.option("--fixed", "fixed", multiple=True, metavar="NAME=VALUE", help="a parameter held fixed (repeatable)")
@click.option("--symbols", default=None, metavar="SYM,SYM,...")
@click.option("--start", default=None, metavar="DATE")
@click.option("--end", default=None, metavar="DATE")
@click.option("--sequential", is_flag=True)
@click.option("--no-store", is_flag=True, help="do not store the results")
@click.option("--no-cache", is_flag=True, help="compute every crypto again, even where stored rows are current")
@click.option("--top", default=10, type=click.IntRange(1, 100), show_default=True,
              help="the best settings the answer carries with their rows (and that are printed)")
@click.option("--rank-by", default="median_return", type=click.Choice(RANKINGS), show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the full JSON answer")
@PROGRESS_OPTION
def sweep_command(strategy: str, grid: tuple[str, ...], fixed: tuple[str, ...], symbols: str | None,
                  start: str | None, end: str | None, sequential: bool, no_store: bool, no_cache: bool, top: int,
                  rank_by: str, as_json: bool, force_progress: bool) -> None:
    """Run every valid combination of a parameter grid against the cryptos; print the best settings."""
    service = current_app.extensions["backtest_service"]
    axes = _parse_grid(grid)
    try:
        selection = _selection(symbols, start, end)
        with progress_bar("backtest", force_progress) as advance:
            answer = service.run_grid_sweep(service.resolve_strategy_id(strategy), axes, _parse_params(fixed),
                                            use_parallel=not sequential, store=not no_store, selection=selection,
                                            use_cache=not no_cache, progress=advance, rank_by=rank_by,
                                            top=top)
    except ServiceError as exc:
        raise _failed(exc) from None
    if as_json:
        click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        return
    s = answer["summary"]
    own = {p.name for p in catalog.find_strategy(s["strategy_id"]).own_parameters}
    for rank, setting in enumerate(answer["settings"][:top], start=1):
        shown = {k: v for k, v in setting["parameters"].items() if k in own or k in axes}
        a = setting["aggregate"]
        click.echo(f"{rank:4d}  median return {_pct(a['median_return']):>12}  mean Sharpe "
                   f"{'-' if a['mean_sharpe'] is None else format(a['mean_sharpe'], '.2f'):>6}  "
                   f"beat buy-and-hold {_pct(a['beat_buy_and_hold']):>8}  {shown}")
    click.echo(f"\n{s['settings']} settings ({s['skipped']} skipped) x {s['total_cryptos']} cryptos = "
               f"{s['backtests']} backtests ({s['computed']} computed, {s['from_store']} from the store), ranked by "
               f"{s['rank_by']}, {s['total_time']:.2f} s, batch {s['batch_id']}")


def _parse_grid(grid: tuple[str, ...]) -> dict[str, Any]:
    """--grid NAME=START:STOP:STEP or NAME=V1,V2,... options as the service's grid."""
    axes: dict[str, Any] = {}
    for axis in grid:
        name, sep, spec = axis.partition("=")
        if not sep or not spec:
            raise click.BadParameter(f"{axis!r} is not NAME=START:STOP:STEP or NAME=V1,V2", param_hint="--grid")
        parts = spec.split(":")
        if len(parts) == 3:
            try:
                axes[name.strip()] = dict(zip(("start", "stop", "step"), (orjson.loads(p) for p in parts)))
            except orjson.JSONDecodeError:
                raise click.BadParameter(f"{axis!r}: START:STOP:STEP must be numbers", param_hint="--grid") from None
        else:
            axes[name.strip()] = [_parse_params((f"v={v}",))["v"] for v in spec.split(",")]
    return axes


def _batch_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every robustness command takes: which cryptos and span, sequential, no store, JSON, progress."""
    for option in reversed((
            click.option("--symbols", default=None, metavar="SYM,SYM,..."),
            click.option("--start", default=None, metavar="DATE"),
            click.option("--end", default=None, metavar="DATE"),
            click.option("--sequential", is_flag=True),
            click.option("--no-store", is_flag=True, help="do not store the batch"),
            click.option("--json", "as_json", is_flag=True, help="print the full JSON answer"), PROGRESS_OPTION)):
        command = option(command)
    return command


@click.command("walkforward")
@with_appcontext
@click.option("--strategy", "strategy", default="1", show_default=True, metavar="ID|CODE")
@click.option("--grid", "grid", multiple=True, required=True, metavar="NAME=START:STOP:STEP|NAME=V1,V2,...",
              help="a grid axis, as for sweep (repeatable)")
@click.option("--fixed", "fixed", multiple=True, metavar="NAME=VALUE", help="a parameter held fixed (repeatable)")
@click.option("--train-days", required=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--test-days", required=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--step-days", default=None, type=click.FloatRange(min=0, min_open=True),
              help="how far each window moves on [default: test days]")
@click.option("--anchored", is_flag=True, help="every train span starts at the first candle")
@click.option("--rank-by", default="sharpe_ratio", type=click.Choice(list(RANK_METRICS)), show_default=True)
@click.option("--select", "select", default="per_crypto", type=click.Choice(list(SELECTS)), show_default=True)
@_batch_options
def walkforward_command(strategy: str, grid: tuple[str, ...], fixed: tuple[str, ...], train_days: float,
                        test_days: float, step_days: float | None, anchored: bool, rank_by: str, select: str,
                        symbols: str | None, start: str | None, end: str | None, sequential: bool, no_store: bool,
                        as_json: bool, force_progress: bool) -> None:
    """Walk-forward of a grid on every crypto: does the setting chosen in sample hold out of sample?"""
    service = current_app.extensions["backtest_service"]
    try:
        selection = _selection(symbols, start, end)
        with progress_bar("backtest", force_progress) as advance:
            answer = service.run_walk_forward(
                service.resolve_strategy_id(strategy), _parse_grid(grid), _parse_params(fixed),
                train_days=train_days, test_days=test_days, step_days=step_days, anchored=anchored,
                rank_by=rank_by, select=select, use_parallel=not sequential, selection=selection,
                store=not no_store, equity_curve=as_json, progress=advance)
    except ServiceError as exc:
        raise _failed(exc) from None
    if as_json:
        click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"{'symbol':<12} {'windows':>7} {'OOS chained %':>14} {'OOS Sharpe':>10} {'buy & hold %':>12}")
    for r in answer["results"]:
        if r["error"] is not None:
            click.echo(f"{r['symbol']:<12} {r['error']['code']}: {r['error']['message']}")
            continue
        o = r["out_of_sample"] or {}
        click.echo(f"{r['symbol']:<12} {len(r['windows']):>7} {_num(o.get('total_return')):>14} "
                   f"{_num(o.get('sharpe_ratio')):>10} {_num(o.get('buy_and_hold_return')):>12}")
    s = answer["summary"]
    decay = "-" if s["decay_ratio"] is None else f"{s['decay_ratio']:.2f}"
    click.echo(f"\n{s['settings']} settings x {s['windows']} windows ({s['select']}, by {s['rank_by']}): median "
               f"return in sample {_pct(s['in_sample']['median_return'])}, out of sample "
               f"{_pct(s['out_of_sample']['median_return'])}, {_pct(s['out_of_sample']['profitable_windows'])} "
               f"of windows profitable out of sample, decay ratio {decay}; {s['total_time']:.2f} s, "
               f"batch {s['batch_id']}")


@click.command("montecarlo")
@with_appcontext
@click.option("--strategy", default="1", show_default=True, metavar="ID|CODE")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="a strategy parameter (repeatable)")
@click.option("--method", default="trades", type=click.Choice(["trades", "bars"]), show_default=True)
@click.option("--paths", default=1_000, type=click.IntRange(1, 10_000), show_default=True)
@click.option("--block-bars", default=20, type=click.IntRange(min=1), show_default=True)
@click.option("--seed", default=0, type=click.IntRange(min=0), show_default=True)
@_batch_options
def montecarlo_command(strategy: str, params: tuple[str, ...], method: str, paths: int, block_bars: int, seed: int,
                       symbols: str | None, start: str | None, end: str | None, sequential: bool, no_store: bool,
                       as_json: bool, force_progress: bool) -> None:
    """Monte Carlo robustness of a strategy on every crypto: percentiles of its return, and the chance of a loss."""
    service = current_app.extensions["backtest_service"]
    try:
        selection = _selection(symbols, start, end)
        with progress_bar("path", force_progress) as advance:
            answer = service.run_monte_carlo(service.resolve_strategy_id(strategy), _parse_params(params),
                                             method=method, paths=paths, block_bars=block_bars, seed=seed,
                                             use_parallel=not sequential, selection=selection, store=not no_store,
                                             progress=advance)
    except ServiceError as exc:
        raise _failed(exc) from None
    if as_json:
        click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"{'symbol':<12} {'original %':>11} {'p5 %':>10} {'p50 %':>10} {'p95 %':>10} {'P(loss) %':>9} "
               f"{'rank %':>7}")
    for r in answer["results"]:
        if r["error"] is not None:
            click.echo(f"{r['symbol']:<12} {r['error']['code']}: {r['error']['message']}")
            continue
        q = r["percentiles"]["total_return"]
        click.echo(f"{r['symbol']:<12} {_num(r['original']['total_return']):>11} {_num(q['p5']):>10} "
                   f"{_num(q['p50']):>10} {_num(q['p95']):>10} {_num(r['probability_of_loss']):>9} "
                   f"{_num(r['original_percentile']):>7}")
    s = answer["summary"]
    click.echo(f"\n{s['method']} x {s['paths']} paths, seed {s['seed']}: {s['successful']} of {s['total_cryptos']} "
               f"cryptos, median probability of loss {_pct(s['median_probability_of_loss'])}, "
               f"{s['total_time']:.2f} s, batch {s['batch_id']}")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@click.command("jobs-worker")
@with_appcontext
@click.option("--poll-seconds", default=0.5, type=click.FloatRange(min=0.05), show_default=True,
              help="how long to wait when no job is queued")
def jobs_worker_command(poll_seconds: float) -> None:
    """Run queued jobs (POST /api/jobs) until SIGTERM or SIGINT, MAX_RUNNING_JOBS at a time over all runners."""
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    jobs = current_app.extensions["jobs"]
    click.echo(f"jobs-worker: waiting for jobs (at most {jobs.max_running} running, heartbeat timeout "
               f"{jobs.heartbeat_timeout:g} s)", err=True)
    jobs.run_forever(stop, poll_seconds=poll_seconds)
    click.echo("jobs-worker: stopped", err=True)


@click.command("batches")
@with_appcontext
@click.option("--limit", default=20, type=click.IntRange(1, 500), show_default=True)
@click.option("--strategy", "strategy_id", default=None, type=int, help="only this strategy id")
@click.option("--symbol", default=None, help="only batches that include this crypto")
def batches_command(limit: int, strategy_id: int | None, symbol: str | None) -> None:
    """List stored batches, newest first."""
    try:
        page = batches.list_batches(current_app.extensions["db_engine"], limit, None, strategy_id, symbol)
    except ServiceError as exc:
        raise click.ClickException(exc.detail) from None
    for b in page["batches"]:
        s = b["summary"]
        click.echo(f"{b['batch_id']}  {b['created_at'][:19]}  {b['kind']:11s} strategy {b['strategy_id']}  "
                   f"{b['cryptos']} cryptos  {_headline(b['kind'], s)}")


def _headline(kind: str, summary: dict[str, Any]) -> str:
    """What a batch found, in a few words: its average return, a grid's best median, a sweep's best average."""
    if kind == "grid":
        best = summary.get("best_aggregate") or {}
        return f"{summary.get('settings')} settings, best median return {_pct(best.get('median_return'))}"
    if kind == "sweep":
        return f"{summary.get('settings')} settings, best average return {_pct(summary.get('best_average_return'))}"
    if kind == "single":
        return f"symbol {summary.get('symbol') or '-'}"
    if kind == "walkforward":
        return (f"{summary.get('settings')} settings x {summary.get('windows')} windows, median out-of-sample "
                f"return {_pct((summary.get('out_of_sample') or {}).get('median_return'))}")
    if kind == "montecarlo":
        return (f"{summary.get('method')} x {summary.get('paths')} paths, median probability of loss "
                f"{_pct(summary.get('median_probability_of_loss'))}")
    return f"average return {_pct(summary.get('average_return'))}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} %"


@click.command("export")
@with_appcontext
@click.argument("batch_id")
@click.option("--csv", "as_csv", is_flag=True, help="CSV: one row per result (default: the JSON answer)")
@click.option("--trades", is_flag=True, help="CSV of every trade instead (computed again from the same inputs)")
def export_command(batch_id: str, as_csv: bool, trades: bool) -> None:
    """Print a stored batch: its JSON answer, its rows as CSV, or its trades as CSV."""
    engine = current_app.extensions["db_engine"]
    try:
        if trades:
            click.echo(batches.batch_trades_csv(engine, batch_id), nl=False)
        elif as_csv:
            click.echo(batches.batch_csv(engine, batch_id), nl=False)
        else:
            click.echo(orjson.dumps(batches.read_batch(engine, batch_id), option=orjson.OPT_INDENT_2).decode())
    except ServiceError as exc:
        raise click.ClickException(exc.detail) from None


@click.command("delete-cryptos")
@with_appcontext
@click.argument("symbols", nargs=-1)
@click.option("--synthetic", is_flag=True, help="every synthetic demo crypto")
def delete_cryptos_command(symbols: tuple[str, ...], synthetic: bool) -> None:
    """Delete cryptos by symbol (or --synthetic: the demo ones) with their candles and results."""
    if bool(symbols) == synthetic:
        raise click.UsageError("give SYMBOL... or --synthetic")
    service = current_app.extensions["backtest_service"]
    targets = [None] if synthetic else list(symbols)
    for symbol in targets:
        try:
            out = service.delete_cryptocurrencies(symbol=symbol, synthetic=synthetic)
        except ServiceError as exc:
            raise click.ClickException(exc.detail) from None
        for d in out["deleted"]:
            click.echo(f"deleted {d['symbol']}: {d['candles']} candles, {d['results']} results")
        if not out["deleted"]:
            click.echo("nothing to delete")


@click.command("db-upgrade")
@with_appcontext
def db_upgrade_command() -> None:
    """Apply Alembic migrations up to head and write the strategy rows from the engine's registry."""
    upgrade_database(current_app.extensions["db_engine"])
    click.echo(f"database at revision {migrate.head_revision()}")


@click.command("seed-demo")
@with_appcontext
@click.option("--cryptos", default=None, type=click.IntRange(1, 10_000), help="number of synthetic cryptos (211)")
@click.option("--candles", default=None, type=click.IntRange(2, 1_000_000), help="candles per crypto (1828)")
@click.option("--seed", default=None, type=int, help="random seed (42): same seed, same candles")
@click.option("--interval", default="1d", type=click.Choice(list(INTERVAL_SECONDS)), show_default=True)
@click.option("--force", is_flag=True,
              help="load even if prices are already stored: the synthetic demo cryptos already there (with their "
                   "candles and backtest results) are replaced by this set; imported cryptos are kept")
def seed_demo_command(cryptos: int | None, candles: int | None, seed: int | None, interval: str,
                      force: bool) -> None:
    """Load deterministic SYNTHETIC demo candles with COPY (skipped when prices exist, unless --force)."""
    settings = current_app.config["SETTINGS"]
    out = seed_demo(current_app.extensions["db_engine"], n_cryptos=cryptos or settings.demo_cryptos,
                    n_candles=candles or settings.demo_candles,
                    seed=settings.demo_seed if seed is None else seed, interval=interval,
                    only_if_empty=not force, progress=True)
    if out["loaded"]:
        replaced = f" (replacing {out['replaced']} synthetic cryptos)" if out["replaced"] else ""
        click.echo(f"loaded {out['cryptos']} synthetic cryptos, {out['rows']} candles{replaced}")
    else:
        click.echo("prices already stored; nothing loaded (use --force to replace the demo set, or add it)")


@click.command("backtest-all")
@with_appcontext
@click.option("--strategy", "--strategy-id", "strategy", default="1", show_default=True, metavar="ID|CODE",
              help="strategy id or code (see GET /api/strategies), e.g. --strategy sma_cross")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="strategy parameter, e.g. --param fast_period=10, --param execution=next_open, "
                   "--param stop_loss_pct=null (repeatable; values are read as JSON, else as text)")
@click.option("--symbols", default=None, metavar="SYM,SYM,...",
              help="only these cryptos (comma-separated; default every crypto with data)")
@click.option("--start", default=None, metavar="DATE", help="first candle time, ISO date or datetime (UTC)")
@click.option("--end", default=None, metavar="DATE", help="last candle time, ISO date (that whole day) or datetime")
@click.option("--sequential", is_flag=True, help="run in this process instead of a Pool")
@click.option("--no-cache", is_flag=True, help="compute every crypto again (default: stored results answer)")
@click.option("--top", default=0, type=click.IntRange(min=0), help="show only the best N rows (0 = all)")
@click.option("--json", "as_json", is_flag=True, help="print the full JSON answer instead of a table")
@PROGRESS_OPTION
def backtest_all_command(strategy: str, params: tuple[str, ...], symbols: str | None, start: str | None,
                         end: str | None, sequential: bool, no_cache: bool, top: int, as_json: bool,
                         force_progress: bool) -> None:
    """Run a strategy against every crypto and print the ranked table (the CLI twin of the API)."""
    service = current_app.extensions["backtest_service"]
    try:
        parameters = _parse_params(params)
        selection = _selection(symbols, start, end)
        with progress_bar("crypto", force_progress) as advance:
            answer = service.run_strategy_against_all_cryptos(service.resolve_strategy_id(strategy), parameters,
                                                              use_parallel=not sequential, selection=selection,
                                                              use_cache=not no_cache, progress=advance)
    except ServiceError as exc:
        raise _failed(exc) from None
    if as_json:
        click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(format_ranked_table(answer["results"][:top] if top else answer["results"]))
    s = answer["summary"]
    click.echo(f"\n{s['successful']} successful, {s['failed']} failed ({s['computed']} computed, "
               f"{s['from_store']} from the store), {s['total_time']:.3f} s, "
               f"parallel={s['parallel']} executor={s['executor']} workers={s['workers']}, "
               f"parameters={s['parameters']}")


def _selection(symbols: str | None, start: str | None, end: str | None) -> Any:
    """--symbols A,B --start --end as the service's Selection."""
    return parse_selection([s for s in symbols.split(",") if s.strip()] if symbols is not None else None, start, end)


def _failed(exc: ServiceError) -> click.ClickException:
    """A service error as the CLI reports it: every field and its message."""
    return click.ClickException("; ".join(f"{e['field']}: {e['message']}" for e in exc.errors) or exc.detail)


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--param")
        try:
            out[name.strip()] = orjson.loads(value)
        except orjson.JSONDecodeError:
            out[name.strip()] = value
    return out


def format_ranked_table(results: list[dict[str, Any]]) -> str:
    """A plain-text ranked table of batch results."""
    head = f"{'#':>4} {'symbol':<12} {'return %':>10} {'b&h %':>10} {'trades':>6} {'win %':>6} {'max dd %':>8} {'sharpe':>7}  note"
    lines = [head, "-" * len(head)]
    for rank, r in enumerate(results, 1):
        if r["error"]:
            lines.append(f"{rank:>4} {r['symbol']:<12} {'-':>10} {'-':>10} {'-':>6} {'-':>6} {'-':>8} {'-':>7}  "
                         f"error: {r['error']['code']}: {r['error']['message']}")
            continue
        sharpe = "-" if r["sharpe_ratio"] is None else f"{r['sharpe_ratio']:.2f}"
        lines.append(f"{rank:>4} {r['symbol']:<12} {r['total_return']:>10.2f} {r['buy_and_hold_return']:>10.2f} "
                     f"{r['num_trades']:>6} {r['win_rate']:>6.1f} {r['max_drawdown']:>8.2f} {sharpe:>7}  "
                     f"{'open position' if r['open_position'] else ''}")
    return "\n".join(lines)


@click.command("import-prices")
@with_appcontext
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--symbol", help="symbol for a single file (default: the file name, e.g. BTCUSDT.csv -> BTCUSDT)")
@click.option("--date-format", type=click.Choice(["auto", *DATE_FORMATS], case_sensitive=False), default="auto",
              show_default=True, help="how the dates are written: dmy (dd/mm/yy(yy)), mdy (mm/dd/yy(yy)), iso, epoch; "
                                      "auto decides once per file and refuses a file where dd/mm and mm/dd both fit")
def import_prices_command(paths: tuple[Path, ...], symbol: str | None, date_format: str) -> None:
    """Import candle files, CSV or Parquet (or directories of them): bad rows are reported, good rows upserted.

    The results go to stdout, one line each; the progress bar (several files)
    to stderr and only on a terminal, so it never ends up inside the results.
    """
    files = sorted(f for p in paths for f in ([p] if p.is_file() else
                                              [g for g in p.iterdir() if g.suffix.lower() in (".csv", ".parquet", ".xlsx")]))
    if symbol and len(files) != 1:
        raise click.BadParameter("--symbol needs exactly one file", param_hint="--symbol")
    failed = 0
    with tqdm(files, desc="import", unit="file", file=sys.stderr, disable=True if len(files) < 2 else None) as bar:
        for path in bar:
            try:
                report = import_csv(current_app.extensions["db_engine"], path, symbol, date_format)
            except ServiceError as exc:  # refused as a whole, or another import of the symbol held it too long
                failed += 1
                _print_result([f"{path.name}: rejected: {exc}"])
                continue
            _print_result(_report_lines(path.name, report))
    if failed:
        raise click.ClickException(f"{failed} of {len(files)} files rejected")


def _report_lines(name: str, report: ImportReport) -> list[str]:
    """One file's import report as text: the counts, the first bad rows, the largest gaps."""
    head = (f"{name}: {report.symbol} {report.interval}: read {report.rows_read}, stored {report.rows_stored} "
            f"({report.rows_unchanged} unchanged), rejected {report.rows_rejected}"
            + (f" {report.rejected_by_reason}" if report.rejected_by_reason else "")
            + (f", {report.missing_candles} candles missing" if report.missing_candles else ""))
    return [head,
            *(f"  line {err['line']}, {err['column']}={err['value']!r}: {err['reason']}" for err in report.errors[:5]),
            *(f"  gap after {gap['after']}, before {gap['before']}: {gap['missing']} missing"
              for gap in report.largest_gaps)]


def _print_result(lines: list[str]) -> None:
    """Result lines to stdout; tqdm.write lifts a progress bar shown on the same terminal out of their way."""
    for line in lines:
        tqdm.write(line, file=sys.stdout)
