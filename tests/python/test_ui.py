"""The web UI in a real browser: Debian's chromium driven by Playwright, against a server whose
store the quickstart filled (runs, versions with lineage, a pipeline, an endpoint with a rollout
history, monitor runs with violations). Every page must load with no console error and no failed
request, show the facts the API has, pass axe-core's accessibility rules, and its actions must
work end to end. Screenshots of every page go to $SEXTANT_UI_SCREENSHOTS (default
<target dir>/ui-screenshots); they are not committed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect, sync_playwright

from conftest import REPO_ROOT, sextant_bin, start_sextant

pytestmark = pytest.mark.sextant_only

CHROMIUM = os.environ.get("SEXTANT_TEST_CHROMIUM", "/usr/bin/chromium")
AXE = REPO_ROOT / "ui" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = Path(
    os.environ.get("SEXTANT_UI_SCREENSHOTS")
    or Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target") / "ui-screenshots"
)
MODEL = "quickstart-spend"
ENDPOINT = "quickstart"
MONITOR = "quickstart-drift"
PIPELINE = "quickstart-spend"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A server over the quickstart's data directory (the quickstart runs once per module)."""
    tmp = tmp_path_factory.mktemp("ui")
    done = subprocess.run(
        [sextant_bin(), "quickstart", "--data-dir", str(tmp / "data")],
        cwd=tmp, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    server = start_sextant(tmp)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: scripts/test installs Debian's chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


class Watch:
    """What went wrong in a page: console errors, failed requests and 4xx/5xx answers."""

    def __init__(self, page: Page, allowed: tuple[str, ...] = ()):
        self.problems: list[str] = []
        self.allowed = allowed
        page.on("console", lambda m: m.type == "error" and self._add(f"console: {m.text}"))
        page.on("pageerror", lambda e: self._add(f"page error: {e}"))
        page.on(
            "requestfailed",
            # A long-poll or a superseded load cancelled by navigation is not a failure.
            lambda r: (r.failure or "") != "net::ERR_ABORTED" and self._add(f"request failed: {r.url} {r.failure}"),
        )
        page.on("response", lambda r: r.status >= 400 and self._add(f"{r.status} {r.request.method} {r.url}"))

    def _add(self, problem: str):
        if not any(a in problem for a in self.allowed):
            self.problems.append(problem)


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.watch = Watch(pg)
    yield pg
    context.close()


def check(page: Page, name: str, idle: bool = True):
    """No problem so far, no accessibility violation, and a screenshot. `idle`: wait until no
    request is open first (not on a page that long-polls)."""
    if idle:
        page.wait_for_load_state("networkidle")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert AXE.exists(), f"{AXE} is missing: the cargo build installs ui/node_modules"
    # Evaluated through the debugging protocol: the page's CSP (rightly) refuses injected scripts.
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;undefined")
    result = page.evaluate(
        "async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'best-practice']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"
    )
    assert result == [], json.dumps(result, indent=1)
    assert page.watch.problems == [], page.watch.problems


def section(page: Page, heading):
    """The page's section under this heading."""
    return page.locator("section").filter(has=page.get_by_role("heading", name=heading, exact=isinstance(heading, str)))


def api(server, method: str, path: str, **kw):
    r = requests.request(method, f"{server.url}{path}", timeout=30, **kw)
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
    return r.json() if r.content else {}


def runs_of(server):
    experiments = api(server, "POST", "/api/2.0/mlflow/experiments/search", json={"max_results": 100})["experiments"]
    ids = [e["experiment_id"] for e in experiments]
    runs = api(server, "POST", "/api/2.0/mlflow/runs/search", json={"experiment_ids": ids, "max_results": 1000})["runs"]
    return experiments, runs


def test_the_shell_is_served_at_the_root_with_its_bundle_gzipped(seeded):
    r = requests.get(f"{seeded.url}/", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    script = re.search(r'src="(/static/ui/assets/[^"]+\.js)"', r.text).group(1)
    js = requests.get(f"{seeded.url}{script}", headers={"Accept-Encoding": "gzip"}, timeout=10, stream=True)
    assert js.headers["content-encoding"] == "gzip"
    assert "immutable" in js.headers["cache-control"]
    assert requests.get(f"{seeded.url}/static/ui/assets/nope.js", timeout=10).status_code == 404


def test_experiments_list_every_experiment(seeded, page):
    experiments, _ = runs_of(seeded)
    page.goto(f"{seeded.url}/")
    for e in experiments:
        expect(page.get_by_role("link", name=e["name"], exact=True)).to_be_visible()
    check(page, "experiments")
    # The name search ignores case, as MLflow's ILIKE does.
    page.get_by_label("Name contains").fill("QUICK")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="quickstart-spend", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Default", exact=True)).to_have_count(0)
    expect(page).to_have_url(re.compile("q=QUICK"))


def test_runs_table_filters_sorts_and_shows_a_grammar_error_in_place(seeded, page):
    experiments, runs = runs_of(seeded)
    with_metrics = [r for r in runs if r["data"].get("metrics")]
    run = with_metrics[0]
    exp = run["info"]["experiment_id"]
    key = run["data"]["metrics"][0]["key"]
    # The wrong filter's 400 is the answer under test; the browser logs it as an error too.
    page.watch.allowed = ("400 POST " + seeded.url + "/ajax-api/2.0/mlflow/runs/search", "status of 400")
    page.goto(f"{seeded.url}/#/experiments/{exp}")
    # The column chooser searches the experiment's keys on the server.
    page.get_by_role("button", name="Columns (0)").click()
    page.get_by_label("Find a key").fill(key)
    page.get_by_role("checkbox", name=f"metrics.{key}", exact=True).check()
    expect(page.get_by_role("columnheader", name=re.compile(re.escape(key)))).to_be_visible()
    expect(page).to_have_url(re.compile(f"cols=metrics.{re.escape(key)}"))
    page.get_by_role("button", name="Columns (1)").click()
    page.get_by_label("Filter").fill("metrics.rmse < 1 and params.model == 'x'")
    page.get_by_role("button", name="Search").click()
    alert = page.locator("#filter-error")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Invalid")
    # The server says where: the second clause's operator, marked under it.
    expect(alert).to_contain_text("at position 35 (==)")
    expect(alert.locator("pre.caret")).to_have_text(
        "metrics.rmse < 1 and params.model == 'x'\n" + " " * 34 + "^^"
    )
    # The rows stay away while the filter is wrong; a right one brings them back.
    expect(page.locator("table.runs")).to_have_count(0)
    name = run["info"]["run_name"]
    page.get_by_label("Filter").fill(f"attributes.run_name = '{name}'")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("table.runs tbody tr")).to_have_count(
        sum(1 for r in runs if r["info"]["experiment_id"] == exp and r["info"]["run_name"] == name)
    )
    check(page, "runs")
    # Sorting by the metric column orders the rows as the API does.
    page.get_by_label("Filter").fill("")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("columnheader", name=key).get_by_role("button").click()
    expect(page).to_have_url(re.compile("order=metrics"))
    expect(page.get_by_role("columnheader", name=key)).to_have_attribute("aria-sort", "descending")


def test_a_metric_column_shows_and_sorts_by_its_min(seeded, page):
    """A metric column switched to min shows each run's smallest value and sorts by it on the
    server (`min(metrics.…)`); the run page shows last, min and max from the server."""
    exp = api(seeded, "POST", "/api/2.0/mlflow/experiments/create", json={"name": "ui-min-max"})["experiment_id"]
    # Latest values order these runs spiky > flat > steady; their minimums the other way round.
    histories = {"steady": [0.5, 0.4, 0.3], "spiky": [0.9, 0.05, 0.8], "flat": [0.2, 0.25, 0.6]}
    ids = {}
    for name, values in histories.items():
        run = api(seeded, "POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": exp, "run_name": name, "start_time": 1})
        ids[name] = run["run"]["info"]["run_id"]
        metrics = [{"key": "loss", "value": v, "timestamp": 1, "step": i} for i, v in enumerate(values)]
        api(seeded, "POST", "/api/2.0/mlflow/runs/log-batch", json={"run_id": ids[name], "metrics": metrics})
    page.goto(f"{seeded.url}/#/experiments/{exp}?cols=metrics.loss")
    names = page.locator("table.runs tbody tr td:nth-child(2)")
    values = page.locator("table.runs tbody tr td:last-child")
    header = page.get_by_role("columnheader", name="loss")
    header.get_by_role("button").click()
    expect(names).to_have_text(["spiky", "flat", "steady"])
    expect(values).to_have_text(["0.8", "0.6", "0.3"])
    # Showing the min re-sorts by it, since the table is sorted by that column.
    header.get_by_label("value of loss").select_option("min")
    expect(page).to_have_url(re.compile(r"cols=metrics\.loss(%3A|:)min"))
    expect(page).to_have_url(re.compile(r"order=min"))
    expect(names).to_have_text(["steady", "flat", "spiky"])
    expect(values).to_have_text(["0.3", "0.2", "0.05"])
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(names).to_have_text(["spiky", "flat", "steady"])
    check(page, "runs-min")
    # A link reproduces the table.
    page.reload()
    expect(names).to_have_text(["spiky", "flat", "steady"])
    expect(page.get_by_label("value of loss")).to_have_value("min")
    page.get_by_role("link", name="spiky", exact=True).click()
    row = section(page, re.compile("^Metrics")).locator("table.grid").get_by_role("row", name=re.compile("loss"))
    expect(row.get_by_role("cell")).to_have_text(["", "loss", "0.8", "0.05", "0.9", "2"])


def test_an_mlflow_run_link_opens_the_run_with_its_params_and_metrics(seeded, page):
    experiments, runs = runs_of(seeded)
    run = max(runs, key=lambda r: len(r["data"].get("metrics", [])) + len(r["data"].get("params", [])))
    info = run["info"]
    # The link the mlflow client prints after every run.
    page.goto(f"{seeded.url}/#/experiments/{info['experiment_id']}/runs/{info['run_id']}")
    expect(page.get_by_text(info["run_id"]).first).to_be_visible()
    name = next(e["name"] for e in experiments if e["experiment_id"] == info["experiment_id"])
    expect(page.get_by_role("heading").get_by_role("link", name=name, exact=True)).to_be_visible()
    for p in run["data"].get("params", [])[:5]:
        expect(page.get_by_role("rowheader", name=p["key"], exact=True)).to_be_visible()
    for m in run["data"].get("metrics", [])[:5]:
        expect(page.get_by_role("cell", name=m["key"], exact=True)).to_be_visible()
    if run["data"].get("metrics"):
        expect(page.locator(".chart canvas").first).to_be_visible()
    check(page, "run")


def test_compare_overlays_runs_and_lists_their_differences(seeded, page):
    _, runs = runs_of(seeded)
    picked = [r for r in runs if r["data"].get("metrics")][:3]
    ids = ",".join(r["info"]["run_id"] for r in picked)
    page.goto(f"{seeded.url}/#/compare?runs={ids}")
    expect(page.get_by_role("heading", name=f"Compare {len(picked)} runs")).to_be_visible()
    expect(page.locator("table.diff thead th")).to_have_count(len(picked) + 1)
    check(page, "compare")
    # Selecting rows of the runs table leads to the same page (runs found by one search).
    exp = picked[0]["info"]["experiment_id"]
    page.goto(f"{seeded.url}/#/experiments/{exp}")
    rows = page.locator("table.runs tbody tr")
    for i in range(2):
        rows.nth(i).get_by_role("checkbox").check()
    page.get_by_role("link", name="Compare 2 runs").click()
    expect(page.get_by_role("heading", name="Compare 2 runs")).to_be_visible()
    expect(page.locator("table.diff thead th")).to_have_count(3)


def test_models_and_an_mlflow_version_link(seeded, page):
    model = api(seeded, "GET", f"/api/v1/models/{MODEL}")
    page.goto(f"{seeded.url}/#/models/{MODEL}")
    for v in model["versions"]:
        expect(page.get_by_role("link", name=f"Version {v['version']}", exact=True)).to_be_visible()
    check(page, "model")
    # A version's run opens from its page, though the link names no experiment.
    v = model["versions"][0]
    page.get_by_role("link", name=f"Version {v['version']}", exact=True).click()
    page.get_by_role("link", name=v["run_id"], exact=True).click()
    expect(page).to_have_url(re.compile(f"#/runs/{v['run_id']}$"))
    expect(page.get_by_text(v["run_id"]).first).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("Parameters"))).to_be_visible()
    page.goto(f"{seeded.url}/#/models")
    expect(page.get_by_role("link", name=MODEL, exact=True)).to_be_visible()
    check(page, "models")


def test_approving_a_version_with_a_comment(seeded, page):
    # A model of its own: the quickstart's endpoint follows approved versions of its model.
    source = api(seeded, "GET", f"/api/v1/models/{MODEL}")["versions"][-1]
    name = "ui-approval"
    api(seeded, "POST", "/api/2.0/mlflow/registered-models/create", json={"name": name})
    version = api(
        seeded, "POST", "/api/2.0/mlflow/model-versions/create",
        json={"name": name, "source": source["source"], "run_id": source["run_id"]},
    )["model_version"]["version"]
    page.on("dialog", lambda d: d.accept())
    page.goto(f"{seeded.url}/#/models/{name}/versions/{version}")
    page.get_by_label("Comment").fill("checked by the UI test")
    page.get_by_role("button", name="Reject").click()
    expect(page.get_by_text("checked by the UI test")).to_be_visible()
    after = api(seeded, "GET", f"/api/v1/models/{name}/versions/{version}")
    assert after["approval"]["status"] == "rejected"
    assert after["approval"]["comment"] == "checked by the UI test"
    page.get_by_label("Comment").fill("approved again")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("approved again")).to_be_visible()
    assert api(seeded, "GET", f"/api/v1/models/{name}/versions/{version}")["approval"]["status"] == "approved"
    check(page, "version")


def test_lineage_leads_from_the_endpoint_to_the_monitor_run_behind_its_model(seeded, page):
    endpoint = api(seeded, "GET", f"/api/v1/endpoints/{ENDPOINT}")
    served = endpoint["spec"]["variants"][0]["model"]
    page.goto(f"{seeded.url}/#/endpoints/{ENDPOINT}")
    page.get_by_role("link", name=served).first.click()
    expect(page).to_have_url(re.compile(r"#/models/.+/versions/\d+"))
    version = page.url.rsplit("/", 1)[1]
    lineage = api(seeded, "GET", f"/api/v1/models/{MODEL}/versions/{version}/lineage")
    assert lineage["monitor_run"], lineage
    assert [e["name"] for e in lineage["endpoints"]] == [ENDPOINT]
    page.get_by_role("link", name=re.compile(f"^{MONITOR}, ")).click()
    expect(page).to_have_url(re.compile(f"#/monitor-runs/{lineage['monitor_run']['id']}"))
    expect(page.get_by_role("heading", name="Violations")).to_be_visible()
    # The monitor's own report.html, embedded in a sandboxed frame. A full-page screenshot
    # leaves a frame below the viewport unpainted: the viewport takes the whole page for it.
    report = page.frame_locator("iframe.report-frame")
    expect(report.get_by_role("heading", name=f"Monitor {MONITOR}")).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": page.evaluate("document.documentElement.scrollHeight")})
    check(page, "monitor-run")


def test_pipeline_run_page_draws_the_graph_and_its_steps(seeded, page):
    runs = api(seeded, "GET", "/api/v1/pipeline-runs", params={"pipeline": PIPELINE})["runs"]
    run = api(seeded, "GET", f"/api/v1/pipeline-runs/{runs[0]['id']}")
    page.goto(f"{seeded.url}/#/pipeline-runs/{run['id']}")
    for s in run["steps"]:
        expect(page.get_by_role("button", name=re.compile(f"^step {re.escape(s['name'])}: {s['status']}"))).to_be_visible()
    check(page, "pipeline-run")
    page.goto(f"{seeded.url}/#/pipelines")
    expect(page.get_by_role("link", name=PIPELINE, exact=True)).to_be_visible()
    # What starts it, as the server read it from the spec.
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=PIPELINE, exact=True))
    expect(row).to_contain_text("on monitor.violation")
    check(page, "pipelines")


def test_endpoints_and_monitors_pages(seeded, page):
    endpoint = api(seeded, "GET", f"/api/v1/endpoints/{ENDPOINT}")
    page.goto(f"{seeded.url}/#/endpoints")
    expect(page.get_by_role("link", name=ENDPOINT, exact=True)).to_be_visible()
    check(page, "endpoints")
    page.goto(f"{seeded.url}/#/endpoints/{ENDPOINT}")
    expect(page.get_by_role("heading", name=re.compile("Split history"))).to_be_visible()
    expect(section(page, re.compile("^Split history")).locator("tbody tr")).to_have_count(len(endpoint["traffic"]))
    # Traffic over time comes from the server's samples, whose interval the page states.
    traffic = api(seeded, "GET", f"/api/v1/endpoints/{ENDPOINT}/traffic")
    assert traffic["since"] is not None, traffic
    expect(section(page, re.compile("^Traffic per variant"))).to_contain_text(f"every {traffic['sample_every_ms'] // 1000} s")
    check(page, "endpoint")
    page.goto(f"{seeded.url}/#/monitors/{MONITOR}")
    runs = api(seeded, "GET", f"/api/v1/monitors/{MONITOR}/runs")["runs"]
    expect(section(page, "Runs").locator("table.grid tbody tr")).to_have_count(len(runs))
    check(page, "monitor")


def test_the_events_feed_shows_new_events_without_reloading(seeded, page):
    page.goto(f"{seeded.url}/#/events")
    expect(page.get_by_role("status")).to_contain_text("live")
    version = api(seeded, "GET", f"/api/v1/models/{MODEL}")["versions"][0]["version"]
    api(seeded, "PUT", f"/api/v1/models/{MODEL}/aliases/ui-test", json={"version": version})
    expect(page.get_by_role("cell", name=re.compile("alias")).first).to_be_visible()
    check(page, "events", idle=False)


def test_retrying_a_failed_pipeline_run_finishes_it(seeded, page, tmp_path):
    flag = tmp_path / "flag"
    spec = {
        "name": "ui-retry",
        "params": {"flag": {"type": "string", "default": str(flag)}},
        "steps": {
            "check": {"run": ["test", "-f", "${params.flag}"]},
            "after": {"run": ["true"], "needs": ["check"]},
        },
    }
    api(seeded, "PUT", "/api/v1/pipelines/ui-retry", json=spec)
    run = api(seeded, "POST", "/api/v1/pipelines/ui-retry/runs", json={})
    page.goto(f"{seeded.url}/#/pipeline-runs/{run['id']}")
    # The page follows the run live until it fails (the flag file is missing)…
    expect(page.get_by_role("button", name=re.compile("^step check: failed"))).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name=re.compile("^step after: waiting"))).to_be_visible()
    flag.write_text("")
    # …and Retry resumes the same run, which now succeeds.
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("button", name=re.compile("^step after: succeeded"))).to_be_visible(timeout=60_000)
    assert api(seeded, "GET", f"/api/v1/pipeline-runs/{run['id']}")["status"] == "SUCCEEDED"
    check(page, "pipeline-run-retried")


def test_promoting_and_rolling_back_a_canary(seeded, page):
    page.on("dialog", lambda d: d.accept())
    # An endpoint of its own, with a bake long enough that only the buttons move it.
    def put(version: int):
        return api(seeded, "PUT", "/api/v1/endpoints/ui-canary", json={
            "variants": [{"name": "primary", "model": f"models:/{MODEL}/{version}"}],
            "rollout": {"strategy": "canary", "percent": 20, "bake": "1h"},
        })
    put(1)
    put(2)
    page.goto(f"{seeded.url}/#/endpoints/ui-canary")
    rollout = section(page, "Rollout")
    expect(rollout).to_contain_text(f"models:/{MODEL}/2")
    expect(rollout).to_contain_text("20%")
    page.get_by_role("button", name="Promote").click()
    expect(rollout).to_contain_text("No rollout in progress")
    deployed = api(seeded, "GET", "/api/v1/endpoints/ui-canary")["deployed"]["primary"]
    assert deployed["version"] == 2, deployed
    put(1)
    page.reload()
    expect(rollout).to_contain_text(f"models:/{MODEL}/1")
    page.get_by_role("button", name="Roll back").click()
    expect(rollout).to_contain_text("No rollout in progress")
    after = api(seeded, "GET", "/api/v1/endpoints/ui-canary")
    assert after["deployed"]["primary"]["version"] == 2, after["deployed"]
    # Rolled back by hand: `aborted` (an alarm's rollback would be `rolled_back`).
    assert [r["status"] for r in after["past_rollouts"]][-2:] == ["succeeded", "aborted"], after["past_rollouts"]
    expect(section(page, re.compile("^Past rollouts")).locator("tbody tr")).to_have_count(2)
    check(page, "endpoint-rolled-back")


def test_a_refused_approval_says_why_and_the_model_page_turns_four_eyes_off(tmp_path, browser):
    """With --auth, the creator's Approve is refused (four-eyes) and the page shows the server's
    reason; turned off on the model's page, the same click approves."""
    password = "ui-admin-password-1"
    server = start_sextant(tmp_path, "--auth", env={"SEXTANT_ADMIN_PASSWORD": password})
    try:
        auth = ("admin", password)
        run = api(server, "POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}, auth=auth)
        root = run["run"]["info"]["artifact_uri"]
        api(server, "POST", "/api/2.0/mlflow/registered-models/create", json={"name": "four-eyes"}, auth=auth)
        api(server, "POST", "/api/2.0/mlflow/model-versions/create",
            json={"name": "four-eyes", "source": f"{root}/model"}, auth=auth)
        approval = f"{server.url}/api/v1/models/four-eyes/versions/1/approval"
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.watch = Watch(page, allowed=(
            "401 GET " + server.url + "/api/v1/session", "403 POST " + approval, "status of 401", "status of 403",
        ))
        page.goto(f"{server.url}/")
        page.get_by_label("User name").fill("admin")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Experiments")).to_be_visible()
        page.goto(f"{server.url}/#/models/four-eyes/versions/1")
        page.get_by_role("button", name="Approve").click()
        expect(page.get_by_role("alert")).to_contain_text("four-eyes: admin may not approve version 1")
        expect(page.get_by_role("alert")).to_contain_text("require_distinct_approver")
        assert api(server, "GET", "/api/v1/models/four-eyes/versions/1", auth=auth)["approval"]["status"] == "pending"
        check(page, "approval-refused")
        page.goto(f"{server.url}/#/models/four-eyes")
        rules = section(page, "Approval rules")
        rules.get_by_role("button", name="Turn off").first.click()
        expect(rules.get_by_role("button", name="Turn on")).to_have_count(1)
        settings = api(server, "GET", "/api/v1/models/four-eyes", auth=auth)["approval_settings"]
        assert settings == {"require_distinct_approver": False, "allow_pipeline_approval": True}, settings
        check(page, "model-approval-rules")
        page.goto(f"{server.url}/#/models/four-eyes/versions/1")
        page.get_by_role("button", name="Approve").click()
        expect(section(page, "Approval")).to_contain_text("approved")
        after = api(server, "GET", "/api/v1/models/four-eyes/versions/1", auth=auth)["approval"]
        assert (after["status"], after["actor"]) == ("approved", "admin"), after
        context.close()
    finally:
        server.stop()


def test_a_lineage_says_which_links_the_user_may_not_see(tmp_path, browser):
    """With --auth and nothing readable by default, a user granted READ on a model alone sees
    its version's lineage with the run (in an experiment they may not read) marked as recorded
    but not visible, where the admin sees the run itself."""
    password = "ui-admin-password-1"
    server = start_sextant(
        tmp_path, "--auth", "--default-permission", "NO_PERMISSIONS", env={"SEXTANT_ADMIN_PASSWORD": password},
    )
    try:
        admin = ("admin", password)
        api(server, "POST", "/api/2.0/mlflow/users/create", json={"username": "dana", "password": "dana-password-1"},
            auth=admin)
        experiment = api(server, "POST", "/api/2.0/mlflow/experiments/create", json={"name": "hidden"},
                         auth=admin)["experiment_id"]
        run = api(server, "POST", "/api/2.0/mlflow/runs/create",
                  json={"experiment_id": experiment, "run_name": "secret-training"}, auth=admin)["run"]["info"]
        api(server, "POST", "/api/2.0/mlflow/registered-models/create", json={"name": "open-model"}, auth=admin)
        api(server, "POST", "/api/2.0/mlflow/model-versions/create",
            json={"name": "open-model", "source": f"{run['artifact_uri']}/model", "run_id": run["run_id"]}, auth=admin)
        api(server, "POST", "/api/3.0/mlflow/users/permissions/grant", auth=admin, json={
            "username": "dana", "resource_type": "registered_model", "resource_id": "open-model", "permission": "READ",
        })
        lineage = "/api/v1/models/open-model/versions/1/lineage"
        assert api(server, "GET", lineage, auth=admin)["run"]["run_id"] == run["run_id"]
        seen = api(server, "GET", lineage, auth=("dana", "dana-password-1"))
        assert seen["run"] is None and "run" in seen["withheld"], seen

        def sign_in(user: str, secret: str) -> Page:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.watch = Watch(page, allowed=("401 GET " + server.url + "/api/v1/session", "status of 401"))
            page.goto(f"{server.url}/")
            page.get_by_label("User name").fill(user)
            page.get_by_label("Password").fill(secret)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Experiments")).to_be_visible()
            page.goto(f"{server.url}/#/models/open-model/versions/1")
            return page

        page = sign_in("admin", password)
        run_item = page.get_by_role("listitem").filter(has_text=re.compile("^Run:"))
        expect(run_item).to_contain_text("secret-training")
        check(page, "lineage-admin")
        page.context.close()
        page = sign_in("dana", "dana-password-1")
        run_item = page.get_by_role("listitem").filter(has_text=re.compile("^Run:"))
        expect(run_item).to_contain_text("recorded, but not visible to you")
        expect(run_item.get_by_role("link")).to_have_count(0)
        expect(page.get_by_text("secret-training")).to_have_count(0)
        check(page, "lineage-withheld")
        page.context.close()
    finally:
        server.stop()


def test_signing_in_managing_users_and_signing_out(tmp_path, browser):
    server = start_sextant(tmp_path, "--auth", env={"SEXTANT_ADMIN_PASSWORD": "ui-admin-password-1"})
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        # Before signing in, the page's first question is answered 401: that is how it knows; and
        # the wrong password below is answered 401 too.
        page.watch = Watch(page, allowed=(
            "401 GET " + server.url + "/api/v1/session", "401 POST " + server.url + "/api/v1/session", "status of 401",
        ))
        page.goto(f"{server.url}/")
        expect(page.get_by_role("heading", name="Sign in to Sextant")).to_be_visible()
        page.get_by_label("User name").fill("admin")
        page.get_by_label("Password").fill("wrong-password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("wrong user name or password")
        page.get_by_label("Password").fill("ui-admin-password-1")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Experiments")).to_be_visible()
        cookie = next(c for c in context.cookies() if c["name"] == "sextant_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        check(page, "signed-in")
        # A change from the session (it needs the CSRF token): create a user.
        page.get_by_role("link", name="Admin").click()
        section(page, "New user").get_by_label("User name").fill("carol")
        section(page, "New user").get_by_label("Password").fill("carol-password-1")
        section(page, "New user").get_by_role("button", name="Create").click()
        expect(page.get_by_role("cell", name="carol", exact=True)).to_be_visible()
        users = requests.get(
            f"{server.url}/api/2.0/mlflow/users/get", params={"username": "carol"},
            auth=("admin", "ui-admin-password-1"), timeout=10,
        )
        assert users.status_code == 200, users.text
        check(page, "admin-users")
        # Roles: create one, grant it READ on every experiment, give it to carol.
        page.get_by_role("link", name="Roles").click()
        page.get_by_label("Role name").fill("readers")
        page.get_by_role("button", name="Create role").click()
        role = page.get_by_role("region", name="role readers")
        role.get_by_role("button", name="Add permission").click()
        expect(role.get_by_role("cell", name="experiment", exact=True)).to_be_visible()
        role.get_by_label("Assign to user").fill("carol")
        role.get_by_role("button", name="Assign").click()
        expect(role).to_contain_text("Members: carol")
        roles = requests.get(
            f"{server.url}/api/3.0/mlflow/roles/list", auth=("admin", "ui-admin-password-1"), timeout=10,
        ).json()["roles"]
        readers = next(r for r in roles if r["name"] == "readers")
        assert [(p["resource_type"], p["resource_pattern"], p["permission"]) for p in readers["permissions"]] == [
            ("experiment", "*", "READ")
        ]
        check(page, "admin-roles")
        # Tokens: created on their page, which says when each was last used.
        page.goto(f"{server.url}/#/admin/tokens")
        section(page, "New token").get_by_label("Name").fill("ci")
        section(page, "New token").get_by_role("button", name="Create").click()
        secret = page.get_by_role("status").locator("code").inner_text()
        tokens = section(page, "Your API tokens")
        expect(tokens.get_by_role("columnheader", name="Last used")).to_be_visible()
        expect(tokens.get_by_role("row", name=re.compile(r"^ci "))).to_contain_text("never")
        used = requests.get(
            f"{server.url}/api/2.0/mlflow/experiments/search", params={"max_results": 1},
            headers={"Authorization": f"Bearer {secret}"}, timeout=10,
        )
        assert used.status_code == 200, used.text
        page.reload()
        expect(tokens.get_by_role("row", name=re.compile(r"^ci "))).not_to_contain_text("never")
        check(page, "admin-tokens")
        page.goto(f"{server.url}/#/admin/audit")
        expect(page.get_by_role("status")).to_contain_text("Intact")
        check(page, "admin-audit")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in to Sextant")).to_be_visible()
        # The cookie no longer signs anything in, even if a copy of it was kept.
        kept = requests.get(f"{server.url}/api/v1/session", cookies={"sextant_session": cookie["value"]}, timeout=10)
        assert kept.status_code == 401, kept.text
        # carol is no admin: the page offers her no admin pages, and says so at their address.
        page.get_by_label("User name").fill("carol")
        page.get_by_label("Password").fill("carol-password-1")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("The admin pages are for admins")).to_be_visible()
        expect(page.get_by_text("carol", exact=True)).to_be_visible()
        expect(page.get_by_role("link", name="Admin")).to_have_count(0)
        page.get_by_role("link", name="Experiments").click()
        expect(page.get_by_role("heading", name="Experiments")).to_be_visible()
        context.close()
    finally:
        server.stop()
