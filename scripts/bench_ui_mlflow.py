"""MLflow's own web UI, timed as scripts/bench_ui.py times Sextant's, on the same data.

Seeding bench_ui.py's data through MLflow's REST API would take over an hour, so the rows go
straight into the SQLite store (schema made by `mlflow db upgrade`), with the values bench_ui.py's
seed functions log and the columns MLflow writes for those same requests: check_seeding() compares
every row of a sample inserted here with the same sample logged through the server's REST API.

Then, in headless Chromium, from the navigation to the moment the page shows the data (the
closest MLflow 3.17.2 pages to bench_ui.py's, same field names; NOTES in the output say how each differs):
  runs_table_ms        experiment page, table view: its first 100 runs, with an m0 column
  runs_next_page_ms    'Load more' (the next 100 appended), in start_time order
  run_wide_ms          the run with WIDE_KEYS metric keys: its Overview's metrics table
  run_wide_charts_ms   the same run's Model metrics tab, first chart drawn (no Sextant figure)
  compare_first_chart_ms / compare_first_screen_ms / compare_all_charts_ms
                       experiment page, chart view of the CHART_RUNS runs: first chart drawn / the
                       charts of the first screen / every chart, scrolling as a reader would
  chart_redraw_ms      the global x-axis switched to relative time (MLflow has no log-scale switch)
  runs_sort_metric_ms  re-sorting the runs table by m0 (header click), measured last
and which requests the UI made for each (mlflow_requests).

Usage: python scripts/bench_ui_mlflow.py URL DATA_DIR [--runs 100000] [--chart-runs 100]
       [--chart-keys 20] [--steps 10000] [--wide-keys 12000] [--timeout-s 300] [--no-auto-refresh]
       [--chromium /usr/bin/chromium]
URL is a running `mlflow server` over DATA_DIR/mlflow.db. Prints one JSON line; a figure that took
longer than --timeout-s reads "timeout>N". Screenshots go to DATA_DIR. Seeding is skipped for
parts already present (names carry the sizes).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
import uuid
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

# The runs bench_ui.py seeds, from the one definition both benches use.
from bench_ui import big_run, chart_run, wide_run  # noqa: E402


def insert_experiment(db, name):
    """A new experiment's id, its row as `experiments/create` writes it on this server."""
    exp = db.execute("SELECT COALESCE(MAX(experiment_id), -1) + 1 FROM experiments").fetchone()[0]
    now = int(time.time() * 1000)
    db.execute(
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage,"
        " creation_time, last_update_time, workspace) VALUES (?, ?, ?, 'active', ?, ?, 'default')",
        (exp, name, f"mlflow-artifacts:/{exp}", now, now),
    )
    return exp


def insert_runs(db, exp, runs):
    """Inserts `runs` as `runs/create` + `runs/log-batch` would (a start_time left out is stored
    as 0, as MLflow's REST handler does); returns their ids."""
    ids = []
    for name, start, params, metrics in runs:
        run = uuid.uuid4().hex
        ids.append(run)
        db.execute(
            "INSERT INTO runs VALUES (?, ?, 'UNKNOWN', '', '', '', 'RUNNING', ?, NULL, '', 'active', ?, ?, NULL)",
            (run, name, start or 0, f"mlflow-artifacts:/{exp}/{run}/artifacts", exp),
        )
        db.execute("INSERT INTO tags VALUES ('mlflow.runName', ?, ?)", (name, run))
        db.executemany("INSERT INTO params VALUES (?, ?, ?)", [(k, v, run) for k, v in params])
        db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, 0)", [(k, v, t, run, s) for k, v, t, s in metrics])
        latest = {}  # MLflow's latest value of a key: the greatest (step, timestamp, value)
        for k, v, t, s in metrics:
            if k not in latest or (s, t, v) > latest[k]:
                latest[k] = (s, t, v)
        db.executemany("INSERT INTO latest_metrics VALUES (?, ?, ?, ?, 0, ?)", [(k, v, t, s, run) for k, (s, t, v) in latest.items()])
    return ids


def seed(db, name, runs):
    """The experiment `name`'s id and run ids (oldest first), inserted in one transaction if absent."""
    row = db.execute("SELECT experiment_id FROM experiments WHERE name = ?", (name,)).fetchone()
    if row:
        ids = [r for (r,) in db.execute("SELECT run_uuid FROM runs WHERE experiment_id = ? ORDER BY rowid", row)]
        return row[0], ids
    t0 = time.time()
    with db:
        exp = insert_experiment(db, name)
        ids = insert_runs(db, exp, runs)
    print(f"seeded {name} in {time.time() - t0:.0f} s", file=sys.stderr)
    return exp, ids


def snapshot(db, exp):
    """The experiment's rows in every table, sorted, with its ids replaced by placeholders."""
    runs = [r for (r,) in db.execute("SELECT run_uuid FROM runs WHERE experiment_id = ? ORDER BY rowid", (exp,))]

    def norm(v):
        if not isinstance(v, str):
            return v
        for i, r in enumerate(runs):
            v = v.replace(r, f"<run {i}>")
        return v.replace(f"mlflow-artifacts:/{exp}", "mlflow-artifacts:/<exp>")

    snap = {}
    for table in ("experiments", "experiment_tags", "runs", "tags", "params", "metrics", "latest_metrics"):
        where = "experiment_id = ?" if "experiment" in table else "run_uuid IN (SELECT run_uuid FROM runs WHERE experiment_id = ?)"
        cur = db.execute(f"SELECT * FROM {table} WHERE {where}", (exp,))
        skip = {"experiment_id", "name", "creation_time", "last_update_time"} if table == "experiments" else {"experiment_id"}
        cols = [d[0] for d in cur.description]
        snap[table] = sorted(repr([norm(v) for c, v in zip(cols, row) if c not in skip]) for row in cur)
    return snap


def check_seeding(url, db):
    """Fails unless the rows inserted for a sample equal those MLflow wrote for bench_ui.py's
    requests (sent once, through the server's REST API, into experiment bench-ui-check-rest)."""
    sample = [big_run(7), chart_run(3, 2, 3), wide_run(4)]
    row = db.execute("SELECT experiment_id FROM experiments WHERE name = 'bench-ui-check-rest'").fetchone()
    if row:
        rest = row[0]
    else:
        s = requests.Session()

        def call(rpc, body):
            r = s.post(f"{url}/api/2.0/mlflow/{rpc}", json=body, timeout=60)
            r.raise_for_status()
            return r.json()

        rest = int(call("experiments/create", {"name": "bench-ui-check-rest"})["experiment_id"])
        for name, start, params, metrics in sample:
            body = {"experiment_id": str(rest), "run_name": name} | ({"start_time": start} if start else {})
            run = call("runs/create", body)["run"]["info"]["run_id"]
            call("runs/log-batch", {
                "run_id": run,
                "params": [{"key": k, "value": v} for k, v in params],
                "metrics": [{"key": k, "value": v, "timestamp": t, "step": st} for k, v, t, st in metrics],
            })
    sql, _ = seed(db, "bench-ui-check-sql", sample)
    want, got = snapshot(db, rest), snapshot(db, sql)
    if want != got:
        raise SystemExit(f"seeded rows differ from MLflow's:\n{json.dumps(want, indent=1)}\n{json.dumps(got, indent=1)}")


# The experiment page's view state as MLflow 3.17.2 stores it in localStorage on a first visit;
# the bench changes the columns and the runs shown in charts (as bench_ui.py does with its URL).
VIEW_STATE = {
    "searchFilter": "", "orderByKey": "attributes.start_time", "orderByAsc": False, "startTime": "ALL",
    "lifecycleFilter": "Active", "datasetsFilter": [], "modelVersionFilter": "All Runs",
    "selectedColumns": ["attributes.`Source`", "attributes.`Models`", "attributes.`Dataset`"],
    "columnOrder": [], "columnWidths": {}, "runsExpanded": {}, "runsPinned": [], "runsHidden": [],
    "runsVisibilityMap": {}, "runsHiddenMode": "FIRST_10_RUNS", "viewMaximized": False, "runListHidden": False,
    "isAccordionReordered": False, "useGroupedValuesInCharts": True, "hideEmptyCharts": True, "groupBy": None,
    "groupsExpanded": {}, "autoRefreshEnabled": True,
    "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""},
}

ROWS = "document.querySelectorAll('.ag-center-cols-container .ag-row:not([row-id^=load_more])').length"
# The first row shows a run of the big experiment (the chart runs have no m0) and no search is pending.
BIG_ROWS = (
    f"{ROWS} === 100 && !document.querySelector('.ag-overlay:not(.ag-hidden)')"
    " && document.querySelector('.ag-center-cols-container .ag-row[row-index=\"0\"] [col-id=\"metrics.`m0`\"]')?.textContent.trim() > ''"
)
# The grid keeps only the rows near the screen in the DOM once there are more than 100.
LOADED = "[...document.querySelectorAll('strong')].map(e => e.parentElement.textContent).find(t => t.endsWith(' matching runs'))"
FIRST_ROW = "[...document.querySelectorAll('.ag-row[row-index=\"0\"]')].map(e => e.textContent).join('|')"
AREA = "document.querySelector('[data-testid=experiment-view-compare-runs-chart-area]')"
CARDS = "document.querySelectorAll('[data-testid=experiment-view-compare-runs-card]')"
# Chart cards are mounted only near the screen, so the titles of those seen drawn are kept.
DRAWN = f"""(() => {{ for (const c of {CARDS})
  if (c.querySelector('.js-plotly-plot .trace')) window.__drawn.add(c.querySelector('h4').title);
  return window.__drawn.size; }})()"""
# Scrolls the chart area by 600 px (back to the top at its bottom) once the charts on screen are drawn
# and it has stayed 300 ms, so that newly shown cards are mounted and start loading.
SCROLL_WHEN_DRAWN = f"""(() => {{ const area = {AREA}, box = area.getBoundingClientRect(), now = performance.now();
  const shown = [...{CARDS}].filter(c => {{ const r = c.getBoundingClientRect(); return r.bottom > box.top && r.top < box.bottom; }});
  if (!(now - window.__scrolled < 300) && shown.every(c => c.querySelector('.js-plotly-plot .trace'))) {{
    window.__scrolled = now;
    area.scrollTop = area.scrollTop + area.clientHeight >= area.scrollHeight - 1 ? 0 : area.scrollTop + 600;
  }}
  return {DRAWN}; }})()"""
X_TITLES = f"[...{CARDS}].flatMap(c => [...c.querySelectorAll('.g-xtitle')].map(e => e.textContent))"

NOTES = {
    "runs_table_ms": "experiment page, table view, m0 column selected in the stored view state; "
    "MLflow shows the first 100 runs (runs/search max_results 100, start_time order), no total count",
    "runs_next_page_ms": "'Load more' appends the next 100 (200 rows shown), in start_time order: "
    "measured before the sort, see runs_sort_metric_ms",
    "runs_sort_metric_ms": "click on the m0 header (runs/search ordered by metrics.`m0` DESC); measured last, "
    "because on SQLite the query keeps a server worker busy long after a timeout",
    "run_wide_ms": "run page, Overview tab: 'Metrics (N)' table with all N rows in the DOM",
    "run_wide_charts_ms": "run page, Model metrics tab: first of its N charts drawn (no Sextant equivalent)",
    "compare": "experiment page, chart view of the chart runs with all of them shown (runsHiddenMode SHOW_ALL): "
    "one chart per metric key, each fetched with get-history-bulk-interval once it is on screen; "
    "MLflow mounts only the charts near the screen, so the chart area is scrolled 600 px once the "
    "charts on screen are drawn (bench_ui.py scrolls without waiting), until every chart has been seen drawn",
    "chart_redraw_ms": "MLflow has no log-scale switch for all charts (only per chart, in its dialog): "
    "measured the global x-axis set to relative time, which redraws the charts on screen "
    "(chart_redraw_charts of them)",
    "auto_refresh": "MLflow's auto-refresh (on by default; off with --no-auto-refresh) fetches "
    "runs/search and the histories of the charts on screen again about 30 s after each answer",
    "compare_charts_drawn": "charts seen drawn when compare_all_charts_ms ended (all, or those drawn by its timeout)",
}


def timed(page, navigate, ready_js: str, timeout_ms: int):
    """Milliseconds (Performance API) from `navigate` to `ready_js` being true, or "timeout>N"."""
    page.evaluate("window.__t0 = performance.now()")
    navigate()
    try:
        page.wait_for_function(ready_js, timeout=timeout_ms, polling="raf")
    except PlaywrightTimeout:
        return f"timeout>{timeout_ms}"
    return round(page.evaluate("performance.now() - window.__t0"), 1)


def then(before, page, navigate, ready_js, timeout_ms):
    """`before` plus one more timed step; a timeout at either is reported as one."""
    if isinstance(before, str):
        return before
    step = timed(page, navigate, ready_js, timeout_ms)
    return f"timeout>{before + timeout_ms}" if isinstance(step, str) else round(before + step, 1)


def summarize(reqs):
    """What the UI asked the server, by endpoint, with the parameters that size the work."""
    out = Counter()
    bulk = {"max_results": set(), "run_ids_per_request": set(), "metric_keys": set(), "seconds": []}
    for r in reqs:
        u = urlsplit(r.url)
        if u.path.endswith("/graphql"):
            out["graphql " + json.loads(r.post_data or "{}").get("operationName", "?")] += 1
            continue
        name = u.path.split("/mlflow/", 1)[-1]
        if name == "runs/search":
            body = json.loads(r.post_data or "{}")
            name += f" max_results={body.get('max_results')} order_by={','.join(body.get('order_by', []))}"
            name += " (next page)" if body.get("page_token") else ""
        if name == "metrics/get-history-bulk-interval":
            q = parse_qs(u.query)
            bulk["max_results"].update(q.get("max_results", []))
            bulk["run_ids_per_request"].add(len(q.get("run_ids", [])))
            bulk["metric_keys"].update(q.get("metric_key", []))
            if r.timing["responseEnd"] > 0:
                bulk["seconds"].append(r.timing["responseEnd"] / 1000)
        out[name] += 1
    if bulk["metric_keys"]:
        out["bulk-interval: max_results, run_ids per request, metric keys"] = (
            f"{sorted(bulk['max_results'])}, {sorted(bulk['run_ids_per_request'])}, {len(bulk['metric_keys'])}"
        )
        t = sorted(bulk["seconds"])
        if t:
            out["bulk-interval answered: n, min/median/max s"] = f"{len(t)}, {t[0]:.1f}/{t[len(t) // 2]:.1f}/{t[-1]:.1f}"
    return dict(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("data")
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--chart-runs", type=int, default=100)
    ap.add_argument("--chart-keys", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--wide-keys", type=int, default=12_000)
    ap.add_argument("--timeout-s", type=int, default=300, help="per figure")
    ap.add_argument("--no-auto-refresh", action="store_true", help="turn off the UI's auto-refresh (on by default)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    url = a.url.rstrip("/")
    wait = a.timeout_s * 1000

    db = sqlite3.connect(f"{a.data}/mlflow.db", timeout=60)
    db.execute("PRAGMA cache_size = -1000000")  # 1 GB: the metrics table's indexes take random inserts
    check_seeding(url, db)
    big, _ = seed(db, f"bench-ui-{a.runs}-runs", (big_run(i) for i in range(a.runs)))
    chart_exp, _ = seed(
        db, f"bench-ui-charts-{a.chart_runs}x{a.chart_keys}x{a.steps}",
        (chart_run(i, a.chart_keys, a.steps) for i in range(a.chart_runs)),
    )
    wide_exp, (wide_run_id,) = seed(db, f"bench-ui-wide-{a.wide_keys}", [wide_run(a.wide_keys)])
    db.close()
    view = VIEW_STATE | {"autoRefreshEnabled": not a.no_auto_refresh}
    out = {"auto_refresh": not a.no_auto_refresh, "runs": a.runs, "chart_runs": a.chart_runs, "chart_keys": a.chart_keys, "steps": a.steps, "wide_keys": a.wide_keys}
    requested = {}

    storage = {
        "mlflow.assistant.panelOpen_v1": "false",  # the assistant panel would take 350 px of the width
        "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
        f'MLflowLocalStorage-1.1-ExperimentPage-["{big}"]-ReactComponentState':
            json.dumps(view | {"selectedColumns": view["selectedColumns"] + ["metrics.`m0`"]}),
        f'MLflowLocalStorage-1.1-ExperimentPage-["{chart_exp}"]-ReactComponentState':
            json.dumps(view | {"runsHiddenMode": "SHOW_ALL"}),
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium)
        context = browser.new_context(viewport={"width": 1600, "height": 1000}, bypass_csp=True)
        context.add_init_script(f"for (const [k, v] of Object.entries({json.dumps(storage)})) localStorage.setItem(k, v)")
        page = context.new_page()
        seen = []
        page.on("request", lambda r: seen.append(r) if "/ajax-api/" in r.url or "/graphql" in r.url else None)

        def go(hash_):
            page.evaluate(f"location.hash = {json.dumps(hash_)}")

        def shot(name):
            try:
                page.screenshot(path=f"{a.data}/{name}.png", timeout=30_000)
            except PlaywrightTimeout:  # a page too busy to paint
                pass

        def figure(name, navigate, ready_js):
            start = len(seen)
            out[name] = timed(page, navigate, ready_js, wait)
            requested[name] = summarize(seen[start:])
            print(f"{name}: {out[name]}", file=sys.stderr)
            shot(name)
            return out[name]

        page.goto(f"{url}/")
        page.get_by_role("heading", name="Welcome to MLflow").wait_for()
        figure("runs_table_ms", lambda: go(f"#/experiments/{big}/runs"), BIG_ROWS)
        more = f"{LOADED} === '200 matching runs' && document.querySelector('.ag-row[row-index=\"100\"]') !== null"
        figure("runs_next_page_ms", lambda: page.get_by_role("button", name="Load more").click(), more)
        figure(
            "run_wide_ms",
            lambda: go(f"#/experiments/{wide_exp}/runs/{wide_run_id}"),
            f"[...document.querySelectorAll('h4')].some(e => e.textContent === 'Metrics ({a.wide_keys})')"
            f" && document.querySelectorAll('[role=row] a[href$=\"/model-metrics\"]').length === {a.wide_keys}",
        )
        figure(
            "run_wide_charts_ms",
            lambda: go(f"#/experiments/{wide_exp}/runs/{wide_run_id}/model-metrics"),
            "document.querySelector('.js-plotly-plot .trace') !== null",
        )

        start = len(seen)
        page.evaluate("window.__drawn = new Set()")
        first = figure("compare_first_chart_ms", lambda: go(f"#/experiments/{chart_exp}/runs?compareRunsMode=CHART"), f"{DRAWN} >= 1")
        # The charts of the first screen (each loads once it has been on screen for a while).
        screen = [] if isinstance(first, str) else page.evaluate(f"""(() => {{
            const bottom = Math.min(innerHeight, {AREA}.getBoundingClientRect().bottom);
            return [...{CARDS}].filter(c => c.getBoundingClientRect().top < bottom).map(c => c.querySelector('h4').title); }})()""")
        out["compare_first_screen_charts"] = len(screen)
        print(f"first screen: {screen}", file=sys.stderr)
        out["compare_first_screen_ms"] = then(
            first, page, lambda: None, f"{DRAWN} >= 0 && {json.dumps(screen)}.every(t => window.__drawn.has(t))", wait
        )
        # Then every chart, scrolling as a reader would.
        out["compare_all_charts_ms"] = then(
            out["compare_first_screen_ms"], page, lambda: None, f"{SCROLL_WHEN_DRAWN} >= {a.chart_keys}", wait
        )
        out["compare_charts_drawn"] = page.evaluate("window.__drawn.size")
        requested["compare"] = summarize(seen[start:])
        print(f"compare: {out['compare_first_screen_ms']}, {out['compare_all_charts_ms']}", file=sys.stderr)
        del requested["compare_first_chart_ms"]
        shot("compare_all_charts_ms")

        if isinstance(out["compare_all_charts_ms"], float):
            page.evaluate(f"{AREA}.scrollTop = 0")
            page.wait_for_function(f"{json.dumps(screen)}.every(t => [...{CARDS}].some(c => c.querySelector('h4').title === t && c.querySelector('.js-plotly-plot .trace')))", timeout=wait)
            page.get_by_role("button", name="Configure charts").click()
            figure("chart_redraw_ms", lambda: page.get_by_text("Time (relative)", exact=True).click(),
                   f"{X_TITLES}.length > 0 && {X_TITLES}.every(t => t !== 'Step')")
            out["chart_redraw_charts"] = page.evaluate(f"[...{CARDS}].filter(c => c.querySelector('.js-plotly-plot .trace')).length")
        out["js_heap_mb"] = round(page.evaluate("performance.memory ? performance.memory.usedJSHeapSize / 1048576 : -1"), 1)

        go(f"#/experiments/{big}/runs")
        page.wait_for_function(BIG_ROWS, timeout=wait)
        first_row = page.evaluate(FIRST_ROW)
        sort = figure("runs_sort_metric_ms", lambda: page.get_by_test_id("sort-header-m0").click(),
                      f"{BIG_ROWS} && {FIRST_ROW} !== {json.dumps(first_row)}")
        if not isinstance(sort, str):
            figure("runs_next_page_sorted_ms", lambda: page.get_by_role("button", name="Load more").click(), more)
        browser.close()
    out["notes"] = NOTES
    out["mlflow_requests"] = requested
    print(json.dumps(out))


if __name__ == "__main__":
    main()
