/* Crypto backtests dashboard: plain JS over the JSON API (no framework, no build step). */
"use strict";

const POLL_MS = 300;
const TERMINAL_STATES = ["succeeded", "failed", "cancelled"];
// Result keys that are never metric columns, whatever their values.
const NON_METRIC_KEYS = new Set(["crypto_id", "candles", "data_version", "calculation_time_ms", "symbol", "name",
  "interval", "first_time", "last_time", "error", "open_position", "trades", "equity_curve"]);
const PERCENT_KEYS = new Set(["total_return", "buy_and_hold_return", "win_rate", "max_drawdown", "exposure", "cagr",
  "avg_trade_return", "best_trade", "worst_trade"]);
const MONEY_KEYS = new Set(["final_value", "total_fees"]);
const METRIC_LABELS = {
  total_return: "Total return", final_value: "Final value", buy_and_hold_return: "Buy & hold return",
  num_trades: "Trades", win_rate: "Win rate", max_drawdown: "Max drawdown", sharpe_ratio: "Sharpe",
  sortino_ratio: "Sortino", exposure: "Exposure", profit_factor: "Profit factor", total_fees: "Fees",
  cagr: "CAGR", calmar_ratio: "Calmar", sqn: "SQN", avg_trade_return: "Avg trade", best_trade: "Best trade",
  worst_trade: "Worst trade", max_drawdown_duration: "Max DD duration (bars)", avg_bars_held: "Avg bars held",
};
const COLORS = { up: "#1a7f37", down: "#c62828", strategy: "#1f5fbf", hold: "#b35c00" };
const CHART_IDS = ["price-chart", "equity-chart", "drawdown-chart"];

const state = {
  strategies: [],
  job: null,            // the job in flight (or the last one)
  batch: null,          // the batch in the table: {results (with their server rank), summary}
  metricKeys: [],
  sort: { key: null, dir: "none" },
  batchesCursor: null,
  charts: [],
  detailToken: 0,       // bumps on every open and close, so a stale answer is dropped
  openSymbol: null,
};

const $ = (id) => document.getElementById(id);

/* ---------- small helpers ---------- */

// document.createElement with attributes ("text" = textContent, false/null = left out) and children.
function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of [].concat(children || [])) if (child) node.append(child);
  return node;
}

function humanize(name) {
  const words = name.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

const metricLabel = (key) => METRIC_LABELS[key] || humanize(key);

// A metric as text: percents with 2 decimals, money grouped, whole numbers as they are, null as "–".
function formatMetric(key, value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (typeof value !== "number") return String(value);
  if (PERCENT_KEYS.has(key)) return `${value.toFixed(2)} %`;
  if (MONEY_KEYS.has(key)) return value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return value.toFixed(2);
}

function formatPrice(value) {
  return typeof value === "number" ? value.toLocaleString("en-US", { maximumSignificantDigits: 8 }) : "–";
}

function signedPercent(value, digits) {
  return typeof value === "number" ? `${value >= 0 ? "+" : ""}${value.toFixed(digits)} %` : "–";
}

// "2026-12-02T03:40:12.3Z" -> "2026-12-02 03:40" (UTC, as the API gives it).
const shortTime = (iso) => (iso ? iso.replace("T", " ").slice(0, 16) : "–");
const isoToEpoch = (iso) => Math.floor(Date.parse(iso) / 1000);

function strategyName(id) {
  const found = state.strategies.find((s) => s.id === id);
  return found ? found.name : `strategy ${id}`;
}

function textOf(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/* ---------- HTTP and problems ---------- */

// An Error carrying an API problem (or a made-up one for a network failure).
const apiError = (problem) => Object.assign(new Error(problem.title || "Request failed"), { problem });

// fetch + JSON; a non-2xx answer throws an error with its problem, a network failure one with a plain sentence.
async function api(method, url, body) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw apiError({ title: "Network error", network: true,
      detail: "Could not reach the server. Check the connection and try again." });
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw apiError(data && typeof data === "object" && data.title ? data
      : { title: `Request failed (HTTP ${response.status})`, detail: response.statusText || "" });
  }
  return data;
}

function problemOf(err) {
  if (err.problem) return err.problem;
  console.error(err);
  return { title: "Something went wrong", detail: "The page hit an unexpected error; reloading may help." };
}

// A problem in #error: its title, its detail, one "field: message" line per error; the named fields are marked.
function showProblem(problem) {
  clearError();
  const box = $("error");
  box.append(el("p", { className: "error-title", text: textOf(problem.title) || "Request failed" }));
  const errors = Array.isArray(problem.errors) ? problem.errors : [];
  const lines = errors.map((e) => (e.field ? `${textOf(e.field)}: ${textOf(e.message)}` : textOf(e.message)));
  // a validation problem's detail is its errors joined: show them once, as the list
  if (problem.detail && textOf(problem.detail) !== lines.join("; ")) {
    box.append(el("p", { className: "error-detail", text: textOf(problem.detail) }));
  }
  if (errors.length) {
    box.append(el("ul", { className: "error-list" }, lines.map((line) => el("li", { text: line }))));
  }
  errors.forEach(markField);
  const invalid = document.querySelector("#backtest-form [aria-invalid='true']");
  if (invalid) invalid.scrollIntoView({ block: "nearest" });  // above the pinned run bar (scroll-padding)
}

// A field "parameters.x" / "request.parameters.x" (or symbols, start, end) -> its input gets aria-invalid + message.
function markField(error) {
  const field = textOf(error.field).replace(/^request\./, "");
  const match = /^parameters\.([A-Za-z0-9_]+)/.exec(field);
  const inputId = match ? `param-${match[1]}` : (["symbols", "start", "end"].includes(field) ? field : null);
  const input = inputId && $(inputId);
  const message = inputId && $(`${inputId}-error`);
  if (!input || !message) return;
  input.setAttribute("aria-invalid", "true");
  message.textContent = textOf(error.message);
  message.hidden = false;
}

function clearError() {
  $("error").replaceChildren();
  document.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
  document.querySelectorAll(".field-error").forEach((node) => { node.textContent = ""; node.hidden = true; });
}

/* ---------- strategy and the generated parameter form ---------- */

function currentStrategy() {
  return state.strategies.find((s) => String(s.id) === $("strategy").value) || null;
}

const currentSchema = () => (currentStrategy() || {}).parameter_schema || {};

function fillStrategies(strategies) {
  state.strategies = strategies;
  $("strategy").replaceChildren(...strategies.map((s) => el("option", { value: s.id, text: s.name })));
  showStrategy();
}

function showStrategy() {
  const strategy = currentStrategy();
  $("strategy-description").textContent = strategy ? strategy.description || "" : "";
  $("parameter-fields").replaceChildren(...Object.entries(currentSchema()).map(([n, spec]) => parameterField(n, spec)));
}

// One field per schema entry: label (the name), control, description as help text, a slot for the server's message.
function parameterField(name, spec) {
  const id = `param-${name}`;
  const control = parameterControl(id, spec);
  control.name = name;
  control.setAttribute("aria-describedby", `${id}-help ${id}-error`);
  setControlValue(control, spec);
  const label = el("label", { for: id, text: humanize(name) });
  const help = el("p", { id: `${id}-help`, className: "help", text: spec.description || "" });
  const error = el("span", { id: `${id}-error`, className: "field-error", hidden: true });
  if (spec.type === "boolean") {
    return el("div", { className: "field" }, [el("div", { className: "check-row" }, [control, label]), help, error]);
  }
  return el("div", { className: "field" }, [label, control, help, error]);
}

// enum -> <select>, boolean -> checkbox, integer/number -> number input with the inclusive bounds, else text.
function parameterControl(id, spec) {
  if (Array.isArray(spec.enum)) {
    const options = spec.enum.map((v) => el("option", { value: String(v), text: String(v) }));
    return el("select", { id }, spec.nullable ? [el("option", { value: "", text: "none" })].concat(options) : options);
  }
  if (spec.type === "boolean") return el("input", { id, type: "checkbox" });
  if (spec.type !== "integer" && spec.type !== "number") {
    return el("input", { id, type: "text", placeholder: spec.nullable ? "none" : null });
  }
  return el("input", {
    id, type: "number", step: spec.type === "integer" ? "1" : "any",
    min: typeof spec.min === "number" && !spec.exclusive_min ? spec.min : null,
    max: typeof spec.max === "number" && !spec.exclusive_max ? spec.max : null,
    placeholder: spec.nullable ? "none" : null,
  });
}

function setControlValue(control, spec) {
  if (control.type === "checkbox") control.checked = Boolean(spec.default);
  else control.value = spec.default === null || spec.default === undefined ? "" : String(spec.default);
}

function resetParameters() {
  for (const [name, spec] of Object.entries(currentSchema())) {
    const control = $(`param-${name}`);
    if (control) setControlValue(control, spec);
  }
  clearError();
}

// The form's parameters: numbers as numbers, an empty nullable one as null, other empty ones left out (the
// server's default). Returns {parameters, errors}; errors name numbers the browser could not read.
function readParameters() {
  const parameters = {};
  const errors = [];
  for (const [name, spec] of Object.entries(currentSchema())) {
    const control = $(`param-${name}`);
    if (!control) continue;
    const raw = control.value.trim();
    if (control.type === "checkbox") parameters[name] = control.checked;
    else if (control.validity.badInput) errors.push({ field: `parameters.${name}`, message: "is not a number" });
    else if (raw === "") { if (spec.nullable) parameters[name] = null; }
    else if (control.type === "number") parameters[name] = Number(raw);
    else if (Array.isArray(spec.enum)) parameters[name] = spec.enum.find((v) => String(v) === raw) ?? raw;
    else parameters[name] = raw;
  }
  return { parameters, errors };
}

function buildRequest() {
  const { parameters, errors } = readParameters();
  const request = { strategy_id: Number($("strategy").value), parameters };
  const symbols = Array.from($("symbols").selectedOptions, (o) => o.value);
  if (symbols.length) request.symbols = symbols;
  if ($("start").value) request.start = $("start").value;
  if ($("end").value) request.end = $("end").value;
  return { request, errors };
}

function fillCryptos(cryptos) {
  $("symbols").replaceChildren(...cryptos.map((c) => el("option", { value: c.symbol,
    text: `${c.symbol} (${c.interval}, ${c.rows} candles, ${(c.first_time || "").slice(0, 10)} – ${(c.last_time || "").slice(0, 10)})` })));
}

/* ---------- jobs ---------- */

async function submitJob(event) {
  event.preventDefault();
  if ($("run").disabled) return;  // a job is in flight (or the strategies have not loaded)
  clearError();
  const { request, errors } = buildRequest();
  if (errors.length) {
    showProblem({ title: "Invalid request", detail: "Some parameters could not be read as numbers.", errors });
    return;
  }
  setRunning(true);
  showJob({ state: "queued", progress: { done: 0, total: null } });
  $("job-status").focus();  // Run is disabled now: keep the keyboard user where the news is
  try {
    const job = await api("POST", "/api/jobs", { kind: "all", request });
    showJob(job);
    await pollJob(job.job_id);
  } catch (err) {
    showProblem(problemOf(err));
    if (!state.job.job_id) $("job").hidden = true;  // never queued
  }
  setRunning(false);
}

// Polls every POLL_MS until the job ends, then shows its batch or its problem. A network blip is retried
// (up to 5 in a row); any other failure throws.
async function pollJob(jobId) {
  let failures = 0;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    let job;
    try {
      job = await api("GET", `/api/jobs/${encodeURIComponent(jobId)}`);
      failures = 0;
    } catch (err) {
      if (err.problem && err.problem.network && ++failures < 5) continue;
      throw err;
    }
    showJob(job);
    if (!TERMINAL_STATES.includes(job.state)) continue;
    if (job.state === "failed") {
      showProblem(job.error || { title: "The job failed", detail: "The server gave no reason." });
    } else if (job.state === "succeeded" && job.result_url) {
      const batch = await api("GET", job.result_url);
      showBatch(batch);
      $("job-status").textContent = jobText(job) + failuresText(batch.summary || {});
      loadBatches(false);
    }
    return;
  }
}

async function cancelJob() {
  const job = state.job;
  if (!job || !job.job_id) return;
  $("cancel").disabled = true;
  try {
    showJob(await api("POST", `/api/jobs/${encodeURIComponent(job.job_id)}/cancel`));
  } catch (err) {
    showProblem(problemOf(err));
  }
}

function setRunning(running) {
  $("run").disabled = running;
  $("backtest-form").setAttribute("aria-busy", String(running));
}

// Progress bar (indeterminate while the total is unknown), status text, and Cancel only while it can cancel.
function showJob(job) {
  state.job = job;
  $("job").hidden = false;
  const bar = $("job-progress");
  const { done, total } = job.progress || {};
  if (typeof total === "number" && total > 0) {
    bar.max = total;
    bar.value = Math.min(done || 0, total);
  } else {
    bar.removeAttribute("value");
  }
  $("job-status").dataset.state = job.state;
  $("job-status").textContent = jobText(job);
  $("cancel").disabled = !job.job_id || !["queued", "running"].includes(job.state) || job.cancel_requested === true;
}

// "running: 12 / 57 cryptos, about 3 s left"
function jobText(job) {
  const { done, total } = job.progress || {};
  let text = job.state;
  if (typeof total === "number") text += `: ${done || 0} / ${total} cryptos`;
  if (job.state === "running" && typeof job.eta_seconds === "number") text += `, about ${Math.ceil(job.eta_seconds)} s left`;
  if (job.cancel_requested && !TERMINAL_STATES.includes(job.state)) text += " (cancelling…)";
  if (job.state === "failed") text += " – see the error below";
  return text;
}

// " · 2 of 57 failed (1 worth retrying)": a job that ran to its end may still hold cryptos that failed.
function failuresText(s) {
  if (typeof s.failed !== "number" || s.failed === 0) return "";
  const retry = typeof s.retryable === "number" && s.retryable > 0 ? ` (${s.retryable} worth retrying)` : "";
  return ` · ${s.failed} of ${s.total_cryptos} failed${retry}`;
}

/* ---------- results table ---------- */

// Metric columns: result keys whose values are numbers or null in every row (minus ids, sizes and timings).
function metricKeysOf(results) {
  if (!results.length) return [];
  return Object.keys(results[0]).filter((key) => !NON_METRIC_KEYS.has(key) &&
    results.every((r) => r[key] === null || r[key] === undefined || typeof r[key] === "number"));
}

function showBatch(batch) {
  const results = Array.isArray(batch.results) ? batch.results : [];
  state.batch = { results: results.map((r, i) => Object.assign({ rank: i + 1 }, r)), summary: batch.summary || {} };
  state.metricKeys = metricKeysOf(results);
  state.sort = { key: null, dir: "none" };
  closeDetail(false);
  $("results-empty").hidden = results.length > 0;
  $("results-empty").textContent = results.length ? "" : "This batch has no per-crypto results.";
  $("results").hidden = false;
  $("results").querySelector("caption").textContent = captionText(state.batch.summary, results.length);
  renderTable();
  markCurrentBatch();
}

// "RSI buy/sell · 57 cryptos · 55 successful, 2 failed · average return +19.80 % · batch <id>"
function captionText(s, rows) {
  const count = (v) => (typeof v === "number" ? v : "?");
  return [strategyName(s.strategy_id), `${typeof s.total_cryptos === "number" ? s.total_cryptos : rows} cryptos`,
    `${count(s.successful)} successful, ${count(s.failed)} failed`,
    `average return ${signedPercent(s.average_return, 2)}`, `batch ${s.batch_id || "–"}`].join(" · ");
}

function renderTable() {
  const head = el("tr", {}, [el("th", { scope: "col", className: "col-rank", text: "Rank" }),
    el("th", { scope: "col", className: "col-symbol", text: "Symbol" })]);
  for (const key of state.metricKeys) {
    head.append(el("th", { scope: "col", className: "num", "aria-sort": state.sort.key === key ? state.sort.dir : "none" },
      el("button", { type: "button", className: "sort", "data-sort": key, text: metricLabel(key) })));
  }
  $("results").querySelector("thead").replaceChildren(head);
  $("results").querySelector("tbody").replaceChildren(...sortedResults().map(resultRow));
}

function resultRow(result) {
  const tr = el("tr", { "data-symbol": result.symbol, className: result.symbol === state.openSymbol ? "is-open" : null }, [
    el("td", { className: "col-rank", text: String(result.rank) }),
    el("th", { scope: "row", className: "col-symbol" }, el("button", { type: "button", className: "open-crypto",
      "aria-label": `${result.symbol}: show details`, text: result.symbol })),
  ]);
  if (result.error) {
    tr.classList.add("has-error");
    tr.append(el("td", { colspan: Math.max(state.metricKeys.length, 1), className: "row-error",
      text: `Error: ${textOf(result.error.message || result.error.code)}` }));
    return tr;
  }
  for (const key of state.metricKeys) {
    const negative = typeof result[key] === "number" && result[key] < 0 && PERCENT_KEYS.has(key);
    tr.append(el("td", { className: negative ? "num neg" : "num", text: formatMetric(key, result[key]) }));
  }
  return tr;
}

// Rows in the chosen order: nulls last either way, ties keep the server's rank; no key = the server's order.
function sortedResults() {
  const rows = state.batch.results.slice();
  const { key, dir } = state.sort;
  if (!key) return rows;
  const sign = dir === "ascending" ? 1 : -1;
  const value = (r) => (typeof r[key] === "number" ? r[key] : null);
  return rows.sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va === null || vb === null || va === vb) return (va === null) - (vb === null) || a.rank - b.rank;
    return (va - vb) * sign;
  });
}

// A metric header: a new column sorts descending first, the same column again flips it. A symbol: the detail.
function onResultsClick(event) {
  const sortButton = event.target.closest("button[data-sort]");
  if (sortButton) {
    const key = sortButton.dataset.sort;
    const dir = state.sort.key === key && state.sort.dir === "descending" ? "ascending" : "descending";
    state.sort = { key, dir };
    renderTable();
    $("results").querySelector(`button[data-sort="${key}"]`).focus();
    return;
  }
  const openButton = event.target.closest("button.open-crypto");
  if (openButton) openDetail(openButton.closest("tr").dataset.symbol);
}

/* ---------- detail ---------- */

// The batch's own span (summary.selection) for both the candles and the re-run backtest.
function spanOf(summary) {
  const selection = summary.selection || {};
  return Object.fromEntries(["start", "end"].filter((k) => selection[k]).map((k) => [k, selection[k]]));
}

// Shows the section at once (title, the row's metrics), then fetches candles and the backtest's trades and curves.
async function openDetail(symbol) {
  const result = state.batch.results.find((r) => r.symbol === symbol);
  if (!result) return;
  const token = ++state.detailToken;
  const summary = state.batch.summary;
  state.openSymbol = symbol;
  document.querySelectorAll("#results tr").forEach((tr) => tr.classList.toggle("is-open", tr.dataset.symbol === symbol));
  clearCharts();
  $("detail").hidden = false;
  $("detail").classList.toggle("no-data", Boolean(result.error));  // no chart boxes for a failed row
  $("detail-title").textContent = `${symbol} – ${strategyName(summary.strategy_id)}`;
  renderMetrics(result);
  renderTrades(null);
  $("detail-status").textContent = result.error ? `No charts: ${textOf(result.error.message)}` : "Loading prices and trades…";
  $("detail-title").focus({ preventScroll: true });
  $("detail-title").scrollIntoView({ block: "start" });
  if (result.error) return;

  const span = spanOf(summary);
  const query = new URLSearchParams(span).toString();
  try {
    const [candles, backtest] = await Promise.all([
      api("GET", `/api/crypto/cryptocurrencies/${encodeURIComponent(symbol)}/candles${query ? `?${query}` : ""}`),
      api("POST", "/api/crypto/backtest", Object.assign({ strategy_id: summary.strategy_id,
        parameters: summary.parameters || {}, symbol, store: false }, span)),
    ]);
    if (token !== state.detailToken) return;
    const full = backtest.result || {};
    const trades = full.trades || [];
    renderMetrics(Object.assign({}, result, full));
    drawCharts(candles.candles || [], trades, full.equity_curve || [], candles.interval || result.interval);
    renderTrades(trades);
    $("detail-status").textContent = `${(candles.candles || []).length} candles, ${trades.length} trades.`;
  } catch (err) {
    if (token !== state.detailToken) return;
    const problem = problemOf(err);
    $("detail-status").textContent = `Could not load the charts: ${textOf(problem.title)}.`;
    $("detail").classList.add("no-data");
    showProblem(problem);
  }
}

function renderMetrics(result) {
  const item = (label, value) => el("div", { className: "metric" }, [el("dt", { text: label }), el("dd", { text: value })]);
  const period = result.first_time ? `${result.first_time.slice(0, 10)} – ${(result.last_time || "").slice(0, 10)}` : "–";
  const items = [item("Period", period),
    item("Candles", formatMetric("candles", result.candles))];
  for (const key of state.metricKeys) items.push(item(metricLabel(key), formatMetric(key, result[key])));
  if (typeof result.open_position === "boolean") items.push(item("Open position", result.open_position ? "yes" : "no"));
  $("detail-metrics").replaceChildren(...items);
}

// The trades table; null = still loading (empty).
function renderTrades(trades) {
  const cell = (text, negative) => el("td", { className: negative ? "num neg" : "num", text });
  const rows = (trades || []).map((t, i) => el("tr", {}, [
    cell(String(i + 1)),
    el("td", { text: shortTime(t.entry_time) }),
    cell(formatPrice(t.entry_price)),
    el("td", { text: t.exit_time ? shortTime(t.exit_time) : "open" }),
    cell(formatPrice(t.exit_price)),
    cell(formatMetric("final_value", t.pnl), t.pnl < 0),
    cell(formatMetric("total_return", t.return_pct), t.return_pct < 0),
    el("td", { text: t.is_open ? "still open" : textOf(t.exit_reason) || "–" }),
  ]));
  if (trades && !rows.length) rows.push(el("tr", {}, el("td", { colspan: 8, text: "No trades." })));
  $("trades").querySelector("tbody").replaceChildren(...rows);
}

// Hides the detail; from the Close button (or Escape) focus goes back to the crypto's row.
function closeDetail(restoreFocus) {
  state.detailToken += 1;
  clearCharts();
  $("detail").hidden = true;
  const symbol = state.openSymbol;
  state.openSymbol = null;
  document.querySelectorAll("#results tr.is-open").forEach((tr) => tr.classList.remove("is-open"));
  const button = restoreFocus && symbol && $("results").querySelector(`tr[data-symbol="${CSS.escape(symbol)}"] .open-crypto`);
  if (button) button.focus();
}

/* ---------- charts (TradingView Lightweight Charts v5) ---------- */

function clearCharts() {
  state.charts.forEach((chart) => chart.remove());
  state.charts = [];
  CHART_IDS.forEach((id) => { delete $(id).dataset.ready; delete $(id).dataset.markers; $(id).replaceChildren(); });
}

function newChart(container, interval) {
  const chart = LightweightCharts.createChart(container, {
    autoSize: true,
    layout: { attributionLogo: true, background: { color: "#ffffff" }, textColor: "#1f2328", fontSize: 12 },
    grid: { vertLines: { color: "#eef0f3" }, horzLines: { color: "#eef0f3" } },
    rightPriceScale: { borderColor: "#d0d7de" },
    // a small minBarSpacing lets fitContent show years of daily bars on a narrow chart
    timeScale: { borderColor: "#d0d7de", minBarSpacing: 0.01, timeVisible: interval !== "1d" && interval !== "1w" },
  });
  state.charts.push(chart);
  return chart;
}

// Drops points without a time or out of order: a series needs strictly ascending times.
function ascending(points) {
  const out = [];
  for (const p of points) {
    if (Number.isFinite(p.time) && (!out.length || p.time > out[out.length - 1].time)) out.push(p);
  }
  return out;
}

function drawCharts(candles, trades, curve, interval) {
  if (typeof LightweightCharts === "undefined") {
    $("detail-status").textContent = "The chart library did not load.";
    return;
  }
  drawPriceChart(candles, trades, interval);
  const points = curve.map((p) => Object.assign({}, p, { time: isoToEpoch(p.time) }));
  drawEquityChart(points, interval);
  drawDrawdownChart(points, interval);
  // the library's attribution logo is a link with a title only: give it a name screen readers read
  requestAnimationFrame(() => CHART_IDS.forEach((id) => $(id).querySelectorAll("a[href*='tradingview']")
    .forEach((a) => a.setAttribute("aria-label", "TradingView, maker of the chart library"))));
}

function drawPriceChart(candles, trades, interval) {
  const container = $("price-chart");
  const chart = newChart(container, interval);
  const series = chart.addSeries(LightweightCharts.CandlestickSeries, { upColor: COLORS.up, downColor: COLORS.down,
    borderVisible: false, wickUpColor: COLORS.up, wickDownColor: COLORS.down });
  series.applyOptions({ priceFormat: priceFormatFor(candles) });
  series.setData(ascending(candles.map((c) => ({ time: c.time, open: c.open, high: c.high, low: c.low, close: c.close }))));
  const markers = tradeMarkers(trades);
  LightweightCharts.createSeriesMarkers(series, markers);
  chart.timeScale().fitContent();
  container.dataset.ready = "true";
  container.dataset.markers = String(markers.length);
}

// Enough decimals for the cheapest price on the chart (a coin at 0.00012 needs 7, not the default 2).
function priceFormatFor(candles) {
  const lowest = candles.reduce((low, c) => (c.low > 0 && c.low < low ? c.low : low), Infinity);
  const precision = Number.isFinite(lowest) ? Math.min(10, Math.max(2, 3 - Math.floor(Math.log10(lowest)))) : 2;
  return { type: "price", precision, minMove: 10 ** -precision };
}

// An entry marker per trade and an exit marker per closed trade, by time (on a tie in trade order).
function tradeMarkers(trades) {
  const markers = [];
  trades.forEach((t, i) => {
    if (t.entry_time) {
      markers.push({ time: isoToEpoch(t.entry_time), position: "belowBar", color: COLORS.up, shape: "arrowUp",
        text: "Buy", order: 2 * i });
    }
    if (t.exit_time) {
      markers.push({ time: isoToEpoch(t.exit_time), position: "aboveBar", color: COLORS.down, shape: "arrowDown",
        text: t.exit_reason && t.exit_reason !== "signal" ? humanize(t.exit_reason) : "Sell", order: 2 * i + 1 });
    }
  });
  markers.sort((a, b) => a.time - b.time || a.order - b.order);
  return markers.map(({ order, ...marker }) => marker);
}

function drawEquityChart(points, interval) {
  const container = $("equity-chart");
  const chart = newChart(container, interval);
  const lines = [["equity", COLORS.strategy, "Strategy"], ["buy_and_hold", COLORS.hold, "Buy & hold"]];
  for (const [key, color, title] of lines) {
    const data = points.filter((p) => typeof p[key] === "number").map((p) => ({ time: p.time, value: p[key] }));
    if (data.length) chart.addSeries(LightweightCharts.LineSeries, { color, lineWidth: 2, title }).setData(ascending(data));
  }
  chart.timeScale().fitContent();
  container.dataset.ready = "true";
}

// The drawdown as an area below 0 (−drawdown %, the API's own curve: its deepest point is max_drawdown).
function drawDrawdownChart(points, interval) {
  const container = $("drawdown-chart");
  const chart = newChart(container, interval);
  const series = chart.addSeries(LightweightCharts.BaselineSeries, {
    baseValue: { type: "price", price: 0 }, lineWidth: 1,
    topLineColor: COLORS.down, topFillColor1: "rgba(198, 40, 40, 0)", topFillColor2: "rgba(198, 40, 40, 0)",
    bottomLineColor: COLORS.down, bottomFillColor1: "rgba(198, 40, 40, 0.15)", bottomFillColor2: "rgba(198, 40, 40, 0.45)",
    priceFormat: { type: "custom", formatter: (v) => `${v.toFixed(2)} %` },
  });
  chart.priceScale("right").applyOptions({ scaleMargins: { top: 0.08, bottom: 0.05 } });
  series.setData(ascending(points.filter((p) => typeof p.drawdown === "number")
    .map((p) => ({ time: p.time, value: -p.drawdown }))));
  chart.timeScale().fitContent();
  container.dataset.ready = "true";
}

/* ---------- past batches ---------- */

// "2026-12-02 03:40 · all · RSI buy/sell · 57 cryptos · avg +19.8 %"
function batchText(b) {
  const s = b.summary || {};
  const parts = [shortTime(b.created_at), b.kind, strategyName(b.strategy_id)];
  if (typeof b.cryptos === "number") parts.push(`${b.cryptos} ${b.cryptos === 1 ? "crypto" : "cryptos"}`);
  if (typeof s.average_return === "number") parts.push(`avg ${signedPercent(s.average_return, 1)}`);
  return parts.join(" · ");
}

// Only an "all" batch is a list of per-crypto rows; the others are listed, disabled, with a note.
function batchItem(b) {
  const openable = b.kind === "all";
  const noteId = `note-${b.batch_id}`;
  const button = el("button", { type: "button", className: "batch", "data-batch-id": b.batch_id, disabled: !openable,
    "aria-describedby": openable ? null : noteId, text: batchText(b) });
  const note = openable ? null : el("span", { id: noteId, className: "help note", text: `A ${b.kind} batch: not shown in the table.` });
  return el("li", {}, [button, note]);
}

// The first page (replacing the list) or the next one (appended), newest first.
async function loadBatches(more) {
  const cursor = more && state.batchesCursor ? `&cursor=${encodeURIComponent(state.batchesCursor)}` : "";
  $("batches-status").textContent = "Loading…";
  try {
    const page = await api("GET", `/api/crypto/backtest/batches?limit=20${cursor}`);
    const items = (page.batches || []).map(batchItem);
    if (more) $("batches").append(...items);
    else $("batches").replaceChildren(...items);
    state.batchesCursor = page.next_cursor || null;
    $("more-batches").hidden = !state.batchesCursor;
    $("batches-status").textContent = $("batches").children.length ? "" : "No batches stored yet.";
    markCurrentBatch();
  } catch (err) {
    $("batches-status").textContent = "Could not load the past batches.";
    showProblem(problemOf(err));
  }
}

async function openBatch(event) {
  const button = event.target.closest("button[data-batch-id]");
  if (!button || button.disabled) return;
  clearError();
  try {
    showBatch(await api("GET", `/api/crypto/backtest/batches/${encodeURIComponent(button.dataset.batchId)}`));
    $("results-heading").scrollIntoView({ block: "start" });
  } catch (err) {
    showProblem(problemOf(err));
  }
}

function markCurrentBatch() {
  const current = state.batch && state.batch.summary.batch_id;
  document.querySelectorAll("#batches button[data-batch-id]").forEach((b) =>
    b.setAttribute("aria-current", String(b.dataset.batchId === current)));
}

/* ---------- start ---------- */

async function init() {
  $("backtest-form").addEventListener("submit", submitJob);
  $("strategy").addEventListener("change", () => { clearError(); showStrategy(); });
  $("reset-parameters").addEventListener("click", resetParameters);
  $("symbols-clear").addEventListener("click", () => { $("symbols").selectedIndex = -1; });
  $("cancel").addEventListener("click", cancelJob);
  $("results").addEventListener("click", onResultsClick);
  $("detail-close").addEventListener("click", () => closeDetail(true));
  $("detail").addEventListener("keydown", (e) => { if (e.key === "Escape") closeDetail(true); });
  $("batches").addEventListener("click", openBatch);
  $("more-batches").addEventListener("click", () => loadBatches(true));
  const runBar = document.querySelector(".run-bar");  // its height keeps focused fields clear of it
  new ResizeObserver(() => document.documentElement.style.setProperty("--run-bar-height", `${runBar.offsetHeight}px`))
    .observe(runBar);

  $("run").disabled = true;
  try {
    const [strategies, cryptos] = await Promise.all([api("GET", "/api/strategies"), api("GET", "/api/crypto/cryptocurrencies")]);
    fillStrategies(strategies.strategies || []);
    fillCryptos(cryptos.cryptocurrencies || []);
    $("run").disabled = false;
  } catch (err) {
    showProblem(problemOf(err));
  }
  loadBatches(false);
}

document.addEventListener("DOMContentLoaded", init);
