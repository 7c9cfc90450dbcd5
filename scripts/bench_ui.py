"""The web UI's speed, measured in headless Chromium with the Performance API.

Seeds a server (through its HTTP API, as any client would) with:
  - one experiment of RUNS runs (5 params, 5 metrics each);
  - one experiment of CHART_RUNS runs with CHART_KEYS metrics of STEPS steps each;
  - one run with WIDE_KEYS metric keys;
then times, in the browser, from the navigation to the moment the page shows the data:
  runs_table_ms        the runs table of the big experiment (first page)
  runs_sort_metric_ms  re-sorting it by a metric (click on the column header)
  runs_next_page_ms    the next page
  run_wide_ms          the run with WIDE_KEYS metric keys (its metrics table)
  compare_first_chart_ms / compare_all_charts_ms
                       the compare page of CHART_RUNS runs: first chart drawn / every chart drawn
  chart_redraw_ms      toggling the log scale on every drawn chart (interactivity)

Usage: python scripts/bench_ui.py URL [--runs 100000] [--chart-runs 100] [--chart-keys 20]
       [--steps 10000] [--wide-keys 12000] [--chromium /usr/bin/chromium]
Prints one JSON line. Seeding is skipped for parts already present (names carry the sizes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from playwright.sync_api import sync_playwright

S = requests.Session()


def call(url, rpc, body):
    r = S.post(f"{url}/api/2.0/mlflow/{rpc}", json=body, timeout=300)
    if r.status_code != 200:
        raise SystemExit(f"{rpc}: {r.status_code} {r.text[:300]}")
    return r.json()


T0 = 1_700_000_000_000  # every seeded timestamp counts from here


# One seeded run (scripts/bench_ui_mlflow.py inserts the same into MLflow's store): (run_name, start_time or None, params, metrics) with metrics
# as (key, value, timestamp, step).
def big_run(i):
    return (
        f"run-{i}",
        T0 + i,
        [(f"p{k}", str((i * (k + 3)) % 97)) for k in range(5)],
        [(f"m{k}", ((i * 7919 + k * 104729) % 100_003) / 1000.0, T0 + i, 0) for k in range(5)],
    )


def chart_run(i, keys, steps):
    metrics = [
        (f"loss{k}", (1.0 + k) / (1 + step * (0.001 + i / 10000.0)), T0 + step, step)
        for k in range(keys)
        for step in range(steps)
    ]
    return f"chart-{i}", None, [], metrics


def wide_run(keys):
    return "wide", None, [], [(f"feature_{k:05d}_importance", k / keys, T0, 0) for k in range(keys)]


def experiment(url, name):
    r = S.get(f"{url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name}, timeout=60)
    if r.status_code == 200:
        return r.json()["experiment"]["experiment_id"], True
    return call(url, "experiments/create", {"name": name})["experiment_id"], False


def seed_runs(url, n):
    exp, existed = experiment(url, f"bench-ui-{n}-runs")
    if existed:
        return exp
    t0 = time.time()

    def one(i):
        s = requests.Session()
        name, start, params, metrics = big_run(i)
        run = s.post(f"{url}/api/2.0/mlflow/runs/create", json={"experiment_id": exp, "run_name": name, "start_time": start}, timeout=60).json()["run"]["info"]["run_id"]
        s.post(f"{url}/api/2.0/mlflow/runs/log-batch", timeout=60, json={
            "run_id": run,
            "params": [{"key": k, "value": v} for k, v in params],
            "metrics": [{"key": k, "value": v, "timestamp": t, "step": st} for k, v, t, st in metrics],
        }).raise_for_status()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(n)))
    print(f"seeded {n} runs in {time.time() - t0:.0f} s", file=sys.stderr)
    return exp


def seed_charts(url, runs, keys, steps):
    """The runs' ids and their experiment's."""
    exp, existed = experiment(url, f"bench-ui-charts-{runs}x{keys}x{steps}")
    if existed:
        ids = [r["info"]["run_id"] for r in call(url, "runs/search", {"experiment_ids": [exp], "max_results": runs})["runs"]]
        return exp, ids
    t0 = time.time()

    def one(i):
        s = requests.Session()
        name, _, _, metrics = chart_run(i, keys, steps)
        run = s.post(f"{url}/api/2.0/mlflow/runs/create", json={"experiment_id": exp, "run_name": name}, timeout=60).json()["run"]["info"]["run_id"]
        for start in range(0, len(metrics), 1000):
            batch = [{"key": k, "value": v, "timestamp": t, "step": st} for k, v, t, st in metrics[start:start + 1000]]
            s.post(f"{url}/api/2.0/mlflow/runs/log-batch", json={"run_id": run, "metrics": batch}, timeout=300).raise_for_status()
        return run

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(one, range(runs)))
    print(f"seeded {runs} runs x {keys} metrics x {steps} steps in {time.time() - t0:.0f} s", file=sys.stderr)
    return exp, ids


def seed_wide(url, keys):
    exp, existed = experiment(url, f"bench-ui-wide-{keys}")
    if existed:
        return exp, call(url, "runs/search", {"experiment_ids": [exp], "max_results": 1})["runs"][0]["info"]["run_id"]
    name, _, _, metrics = wide_run(keys)
    run = call(url, "runs/create", {"experiment_id": exp, "run_name": name})["run"]["info"]["run_id"]
    for start in range(0, len(metrics), 1000):
        call(url, "runs/log-batch", {"run_id": run, "metrics": [
            {"key": k, "value": v, "timestamp": t, "step": st} for k, v, t, st in metrics[start:start + 1000]
        ]})
    return exp, run


def timed(page, navigate, ready_js: str, timeout_ms: int = 120_000) -> float:
    """Milliseconds (Performance API) from `navigate` to `ready_js` being true in the page."""
    page.evaluate("window.__t0 = performance.now()")
    navigate()
    page.wait_for_function(ready_js, timeout=timeout_ms, polling="raf")
    return round(page.evaluate("performance.now() - window.__t0"), 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--chart-runs", type=int, default=100)
    ap.add_argument("--chart-keys", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--wide-keys", type=int, default=12_000)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    url = a.url.rstrip("/")

    big = seed_runs(url, a.runs)
    chart_exp, chart_ids = seed_charts(url, a.chart_runs, a.chart_keys, a.steps)
    wide_exp, wide_run = seed_wide(url, a.wide_keys)
    out = {"runs": a.runs, "chart_runs": a.chart_runs, "chart_keys": a.chart_keys, "steps": a.steps, "wide_keys": a.wide_keys}

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium)
        # The bench's probes are evaluated strings, which the UI's CSP (rightly) refuses to pages.
        page = browser.new_context(viewport={"width": 1600, "height": 1000}, bypass_csp=True).new_page()
        page.goto(f"{url}/")
        page.wait_for_selector("h1")
        rows = "document.querySelectorAll('table.runs tbody tr').length"
        out["runs_table_ms"] = timed(
            page,
            lambda: page.evaluate(f"location.hash = '#/experiments/{big}?cols=metrics.m0'"),
            f"{rows} === 100",
        )
        first = page.evaluate("document.querySelector('table.runs tbody tr td:nth-child(2)').textContent")
        out["runs_sort_metric_ms"] = timed(
            page,
            lambda: page.get_by_role("columnheader", name="m0").get_by_role("button").click(),
            f"{rows} === 100 && document.querySelector('table.runs tbody tr td:nth-child(2)').textContent !== {json.dumps(first)}",
        )
        first = page.evaluate("document.querySelector('table.runs tbody tr td:nth-child(2)').textContent")
        out["runs_next_page_ms"] = timed(
            page,
            lambda: page.get_by_role("button", name="Next →").click(),
            f"{rows} === 100 && document.querySelector('table.runs tbody tr td:nth-child(2)').textContent !== {json.dumps(first)}",
        )
        out["run_wide_ms"] = timed(
            page,
            lambda: page.evaluate(f"location.hash = '#/experiments/{wide_exp}/runs/{wide_run}'"),
            f"[...document.querySelectorAll('[role=status]')].some(e => e.textContent.includes('of {a.wide_keys}'))",
        )
        ids = ",".join(chart_ids)
        page.evaluate("location.hash = '#/'")
        page.wait_for_selector("h1")
        charts = "document.querySelectorAll('.chart canvas').length"
        out["compare_first_chart_ms"] = timed(
            page,
            lambda: page.evaluate(f"location.hash = '#/compare?runs={ids}&experiment={chart_exp}&charts=all'"),
            f"{charts} >= 1",
        )
        # The charts of the first screen (each loads as it nears the screen).
        on_screen = page.evaluate(
            "[...document.querySelectorAll('.chart-box')].filter(e => e.getBoundingClientRect().top < innerHeight).length"
        )
        out["compare_first_screen_charts"] = on_screen
        out["compare_first_screen_ms"] = out["compare_first_chart_ms"] + timed(page, lambda: None, f"{charts} >= {on_screen}")
        # Then every chart, scrolling down as a reader would.
        out["compare_all_charts_ms"] = out["compare_first_screen_ms"] + timed(
            page, lambda: None, f"(window.scrollBy(0, 600), {charts} >= {a.chart_keys})"
        )
        page.evaluate("window.scrollTo(0, 0)")
        out["chart_redraw_ms"] = timed(
            page,
            lambda: page.get_by_label("log scale").check(),
            f"{charts} >= {a.chart_keys}",
        )
        out["js_heap_mb"] = round(page.evaluate("performance.memory ? performance.memory.usedJSHeapSize / 1048576 : -1"), 1)
        browser.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
