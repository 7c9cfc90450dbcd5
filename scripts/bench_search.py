#!/usr/bin/env python3
"""Search latency over a large experiment (100k or 1M runs), on SQLite or PostgreSQL.

Creating a million runs through the API takes about half an hour here (create-run is about
500 runs/s), so the store is filled in two steps:

1. `--templates` runs are made through the API with the shape `tracking_load.py` gives its
   search phase (params `model` and `C`, metrics `rmse` and `accuracy` at step 0, the tag
   `mlflow.source.type`; create-run adds its own tags), so every row is one Sextant wrote;
2. the rest are cloned from those in SQL, each clone a copy of one template's run, params, tags,
   metrics and latest metrics under a new run id and an earlier start time. The value
   distributions (and so each filter's selectivity) are the templates'.

Then the statistics are refreshed (`ANALYZE`, as autovacuum or the store's own statistics thread
would after such growth), the server restarted, and the two queries of `tracking_load.py` timed
with the same client: a filter on a metric, a param and a tag, and an order by a metric, 100
results each, p50 of `--repeat` calls after two warm-up calls. Prints one JSON line.

Usage: bench_search.py SEXTANT_BIN LOADER --runs 1000000 [--backend-store-uri URI] [--data-dir DIR] [--seeded]
"""
import argparse, importlib.util, json, os, random, sqlite3, subprocess, sys, time, urllib.request

CHUNK = 100_000


def load_loader(path):
    spec = importlib.util.spec_from_file_location("tracking_load", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def template_body(rnd):
    """The run tracking_load.py's search phase makes (its `mk`)."""
    return {
        "params": [{"key": "model", "value": rnd.choice(["tree", "linear", "svm"])},
                   {"key": "C", "value": str(rnd.random())}],
        "metrics": [{"key": "rmse", "value": rnd.random() * 2, "timestamp": 0, "step": 0},
                    {"key": "accuracy", "value": rnd.random(), "timestamp": 0, "step": 0}],
        "tags": [{"key": "mlflow.source.type", "value": rnd.choice(["LOCAL", "JOB"])}],
    }


class Server:
    def __init__(self, binary, args, log):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([binary, "server", "--host", "127.0.0.1", "--port", str(self.port), *args],
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(self.url + "/health", timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server did not become healthy (exit {self.proc.poll()})")
                time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


# The clone, in SQL both backends read. `{series}` is a row source of g in [lo, hi].
CLONE = [
    "CREATE TEMP TABLE clone AS SELECT s.g AS g, t.rid AS trid, {uuid} AS uuid "
    "FROM {series} JOIN tmpl t ON t.idx = s.g % {templates}",
    "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, "
    "artifact_uri, lifecycle_stage, deleted_time) "
    "SELECT c.uuid, t.experiment_id, t.name, t.user_id, t.status, t.start_time - c.g, t.end_time, "
    "replace(t.artifact_uri, t.run_uuid, c.uuid), t.lifecycle_stage, t.deleted_time "
    "FROM clone c JOIN runs t ON t.rid = c.trid ORDER BY c.g",
    "CREATE TEMP TABLE cmap AS SELECT r.rid AS rid, c.trid AS trid, c.g AS g FROM clone c JOIN runs r ON r.run_uuid = c.uuid",
    "INSERT INTO params (rid, key, value) SELECT m.rid, p.key, p.value FROM cmap m JOIN params p ON p.rid = m.trid",
    "INSERT INTO run_tags (rid, key, value) SELECT m.rid, t.key, t.value FROM cmap m JOIN run_tags t ON t.rid = m.trid",
    "INSERT INTO metrics (rid, key, timestamp, step, value, is_nan, model_id, dataset_name, dataset_digest) "
    "SELECT m.rid, x.key, x.timestamp, x.step, x.value + m.g * 1e-9, x.is_nan, x.model_id, x.dataset_name, x.dataset_digest "
    "FROM cmap m JOIN metrics x ON x.rid = m.trid",
    "INSERT INTO latest_metrics (rid, experiment_id, key, timestamp, step, value, is_nan) "
    "SELECT m.rid, x.experiment_id, x.key, x.timestamp, x.step, x.value + m.g * 1e-9, x.is_nan "
    "FROM cmap m JOIN latest_metrics x ON x.rid = m.trid",
    "DROP TABLE cmap",
    "DROP TABLE clone",
]


def clone(db, pg, experiment_id, templates, total):
    cur = db.cursor()
    cur.execute("CREATE TEMP TABLE tmpl AS SELECT rid, row_number() OVER (ORDER BY rid) - 1 AS idx "
                f"FROM runs WHERE experiment_id = {int(experiment_id)}")
    for lo in range(templates, total, CHUNK):
        hi = min(total, lo + CHUNK) - 1
        if pg:
            series, uuid = f"generate_series({lo}, {hi}) AS s(g)", "md5(random()::text || s.g::text)"
        else:
            series = (f"(WITH RECURSIVE q(g) AS (SELECT {lo} UNION ALL SELECT g + 1 FROM q WHERE g < {hi}) "
                      "SELECT g FROM q) AS s")
            uuid = "lower(hex(randomblob(16)))"
        for stmt in CLONE:
            cur.execute(stmt.format(series=series, uuid=uuid, templates=templates))
        db.commit()
        print(f"  {hi + 1} runs", file=sys.stderr)
    cur.execute("ANALYZE")
    db.commit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("loader", help="path of ../shared/bench/tracking_load.py (its client is used)")
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--templates", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--backend-store-uri")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--log", default=os.devnull)
    ap.add_argument("--seeded", action="store_true",
                    help="the store already holds the experiment search-RUNS (a kept store, to compare "
                         "binaries on the same data): time the searches only")
    a = ap.parse_args()
    tl = load_loader(a.loader)
    store = ["--data-dir", a.data_dir] + (["--backend-store-uri", a.backend_store_uri] if a.backend_store_uri else [])
    log = open(a.log, "ab")
    out = {"runs": a.runs, "backend": "postgresql" if a.backend_store_uri else "sqlite"}

    if a.seeded:
        server = Server(a.binary, store, log)
        exp, _ = tl.Client(server.url).call("GET", f"{tl.API}/experiments/get-by-name?experiment_name=search-{a.runs}")
        time_searches(a, tl, server, exp["experiment"]["experiment_id"], out)
        return

    server = Server(a.binary, store, log)
    c = tl.Client(server.url)
    exp, _ = c.call("POST", f"{tl.API}/experiments/create", {"name": f"search-{a.runs}"})
    exp_id = exp["experiment_id"]
    rnd = random.Random(1)
    t0 = time.perf_counter()
    for _ in range(min(a.templates, a.runs)):
        body = template_body(rnd)
        run, _ = c.call("POST", f"{tl.API}/runs/create", {"experiment_id": exp_id, "start_time": int(time.time() * 1000)})
        body["run_id"] = run["run"]["info"]["run_id"]
        c.call("POST", f"{tl.API}/runs/log-batch", body)
    out["templates_per_s"] = round(min(a.templates, a.runs) / (time.perf_counter() - t0))
    server.stop()

    t0 = time.perf_counter()
    if a.backend_store_uri:
        import psycopg
        db = psycopg.connect(a.backend_store_uri)
    else:
        db = sqlite3.connect(os.path.join(a.data_dir, "sextant.db"))
    clone(db, bool(a.backend_store_uri), exp_id, min(a.templates, a.runs), a.runs)
    db.close()
    out["seed_s"] = round(time.perf_counter() - t0, 1)

    time_searches(a, tl, Server(a.binary, store, log), exp_id, out)


def time_searches(a, tl, server, exp_id, out):
    """Times the four searches against `server`, stops it, prints `out` with the figures."""
    c = tl.Client(server.url)
    queries = {
        "filter": ("metrics.rmse < 1 and params.model = 'tree' and tags.`mlflow.source.type` = 'LOCAL'", None),
        "order": ("", ["metrics.accuracy DESC"]),
        "filter_order": ("metrics.rmse < 1 and params.model = 'tree'", ["metrics.accuracy DESC"]),
        "page2": ("params.model = 'tree'", None),
    }
    for name, (flt, order) in queries.items():
        body = {"experiment_ids": [exp_id], "filter": flt, "max_results": 100}
        if order:
            body["order_by"] = order
        if name == "page2":
            res, _ = c.call("POST", f"{tl.API}/runs/search", body)
            body["page_token"] = res["next_page_token"]
        ls = []
        for i in range(a.repeat + 2):
            res, dt = c.call("POST", f"{tl.API}/runs/search", body)
            if i >= 2:
                ls.append(dt)
        out[f"search_{name}_p50_ms"] = round(tl.pct(ls, .5) * 1000, 2)
        out[f"search_{name}_p90_ms"] = round(tl.pct(ls, .9) * 1000, 2)
        out[f"search_{name}_hits"] = len(res.get("runs", []))
    server.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
