#!/usr/bin/env python3
"""Pipeline scheduling benchmark against a running `sextant server` (standard library only).

Usage: bench_pipelines.py URL [--chain N] [--fanout N[,N...]] [--poll-ms MS] [--true-samples N]

Applies and runs, through the native API,
  (a) a chain of N no-op steps (`run: "true"`, each `needs` the previous one), and
  (b) fan-out/fan-in: `start` -> N parallel no-op steps -> `join` (needs all N),
polls `GET /api/v1/pipeline-runs/{id}` until the run is terminal, then reads each step's
tracking run (start_time/end_time, set by the orchestrator when it opens the step's run and
when it records the outcome) to split the wall time into time inside steps and gaps between
them. The pure execution time of one step is estimated by spawning `sh -c true` (what the
local executor does for `run:`) from this process.

Prints a human-readable report on stderr and one JSON line per scenario on stdout.
"""

import argparse
import json
import os
import statistics
import sys
import time
import urllib.error
import urllib.request


def call(base, method, path, body=None, content_type="application/json"):
    data = None
    headers = {}
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers["Content-Type"] = content_type
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {path}: HTTP {e.code}: {e.read().decode(errors='replace')[:2000]}")


def true_exec_ms(samples):
    """Median wall time of spawning and reaping `sh -c true` (posix_spawn, no Python overhead)."""
    sh = "/bin/sh"
    out = []
    for _ in range(samples):
        t = time.perf_counter()
        pid = os.posix_spawn(sh, [sh, "-c", "true"], os.environ)
        os.waitpid(pid, 0)
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


def chain_yaml(name, n):
    lines = [f"name: {name}", "steps:"]
    for i in range(n):
        lines.append(f"  s{i:04d}:")
        lines.append('    run: "true"')
        if i:
            lines.append(f"    needs: [s{i - 1:04d}]")
    return "\n".join(lines) + "\n"


def fanout_yaml(name, n):
    lines = [f"name: {name}", "steps:", "  start:", '    run: "true"']
    for i in range(n):
        lines += [f"  p{i:04d}:", '    run: "true"', "    needs: [start]"]
    lines += ["  join:", '    run: "true"', "    needs: [" + ", ".join(f"p{i:04d}" for i in range(n)) + "]"]
    return "\n".join(lines) + "\n"


def run_pipeline(base, name, yaml, poll_ms):
    call(base, "PUT", f"/api/v1/pipelines/{name}", yaml, "application/yaml")
    t0 = time.time()
    run = call(base, "POST", f"/api/v1/pipelines/{name}/runs", {})
    polls = 0
    while True:
        d = call(base, "GET", f"/api/v1/pipeline-runs/{run['id']}")
        polls += 1
        if d["status"].upper() in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(poll_ms / 1000)
    wall_ms = (time.time() - t0) * 1000
    if d["status"].upper() != "SUCCEEDED":
        bad = [s for s in d["steps"] if s["status"] != "succeeded"][:5]
        raise SystemExit(f"pipeline {name} ended {d['status']}: {json.dumps(bad)}")
    # Per-step times from each step's tracking run.
    times = {}
    for s in d["steps"]:
        rid = s.get("tracking_run_id")
        if not rid:
            continue
        info = call(base, "GET", f"/api/2.0/mlflow/runs/get?run_id={rid}")["run"]["info"]
        times[s["name"]] = (int(info["start_time"]), int(info["end_time"]))
    server_ms = d["updated_time"] - d["created_time"]
    return d, wall_ms, server_ms, times, polls


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def bench_chain(base, n, poll_ms, t_true):
    d, wall, server, times, polls = run_pipeline(base, f"bench-chain-{n}", chain_yaml(f"bench-chain-{n}", n), poll_ms)
    names = [f"s{i:04d}" for i in range(n)]
    inside = [times[s][1] - times[s][0] for s in names]
    gaps = [times[names[i + 1]][0] - times[names[i]][1] for i in range(n - 1)]
    edges = n - 1
    pure = n * t_true
    r = {
        "scenario": "chain",
        "steps": n,
        "edges_on_critical_path": edges,
        "wall_ms": round(wall, 1),
        "server_run_ms": server,
        "true_exec_ms": round(t_true, 3),
        "critical_path_exec_ms": round(pure, 1),
        "per_step_ms": round(wall / n, 2),
        # Server-side span (run created -> run ended): free of the client's poll interval.
        "per_edge_overhead_ms": round((server - pure) / edges, 2),
        "per_edge_overhead_client_ms": round((wall - pure) / edges, 2),
        "step_inside_ms_p50": statistics.median(inside),
        "step_inside_ms_p95": pct(inside, 95),
        "edge_gap_ms_p50": statistics.median(gaps),
        "edge_gap_ms_p95": pct(gaps, 95),
        "edge_gap_ms_max": max(gaps),
        "first_step_start_latency_ms": times[names[0]][0] - d["created_time"],
        "run_end_after_last_step_ms": d["updated_time"] - times[names[-1]][1],
    }
    return r


def bench_fanout(base, n, poll_ms, t_true, concurrency):
    name = f"bench-fanout-{n}"
    d, wall, server, times, polls = run_pipeline(base, name, fanout_yaml(name, n), poll_ms)
    mids = [f"p{i:04d}" for i in range(n)]
    mid_start = min(times[m][0] for m in mids)
    mid_end = max(times[m][1] for m in mids)
    inside = [times[m][1] - times[m][0] for m in mids]
    total_steps = n + 2
    # Critical path start -> p -> join: 3 steps, 2 edges; with `concurrency` slots the
    # N parallel steps need at least ceil(N / concurrency) rounds of pure execution.
    rounds = -(-n // concurrency)
    pure = (2 + rounds) * t_true
    r = {
        "scenario": "fan-out/fan-in",
        "parallel_steps": n,
        "total_steps": total_steps,
        "edges": 2 * n,
        "concurrency": concurrency,
        "wall_ms": round(wall, 1),
        "server_run_ms": server,
        "per_step_ms": round(wall / total_steps, 2),
        "throughput_steps_per_s": round(total_steps / (wall / 1000), 1),
        "fanout_phase_ms": mid_end - mid_start,
        "fanout_phase_steps_per_s": round(n / max(mid_end - mid_start, 1) * 1000, 1),
        "pure_exec_ms_at_concurrency": round(pure, 1),
        "per_edge_overhead_amortized_ms": round((wall - pure) / (2 * n), 2),
        "step_inside_ms_p50": statistics.median(inside),
        "step_inside_ms_p95": pct(inside, 95),
        "fanout_edge_ms": mid_start - times["start"][1],  # start ends -> first parallel step starts
        "fanin_edge_ms": times["join"][0] - mid_end,  # last parallel step ends -> join starts
        "first_step_start_latency_ms": times["start"][0] - d["created_time"],
    }
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--chain", type=int, default=100)
    ap.add_argument("--fanout", default="1000", help="comma-separated sizes of the parallel layer")
    ap.add_argument("--poll-ms", type=float, default=50,
                    help="client poll interval; each poll re-plans the run on the server")
    ap.add_argument("--true-samples", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=os.cpu_count() or 4,
                    help="the server's step slots (sextant server uses available_parallelism)")
    a = ap.parse_args()
    base = a.url.rstrip("/")

    t_true = true_exec_ms(a.true_samples)
    print(f"`sh -c true` takes {t_true:.2f} ms (median of {a.true_samples})", file=sys.stderr)

    results = []
    if a.chain:
        print(f"chain of {a.chain} no-op steps ...", file=sys.stderr)
        r = bench_chain(base, a.chain, a.poll_ms, t_true)
        results.append(r)
        print(
            f"  chain {r['steps']}: wall {r['wall_ms']:.0f} ms (server {r['server_run_ms']} ms), {r['per_step_ms']:.1f} ms/step, "
            f"per-edge overhead {r['per_edge_overhead_ms']:.1f} ms "
            f"(edge gap p50 {r['edge_gap_ms_p50']} ms / p95 {r['edge_gap_ms_p95']} ms; "
            f"inside a step p50 {r['step_inside_ms_p50']} ms)",
            file=sys.stderr,
        )
        print(json.dumps(r), flush=True)
    for n in [int(x) for x in a.fanout.split(",") if x.strip()]:
        print(f"fan-out/fan-in 1 -> {n} -> 1 ...", file=sys.stderr)
        r = bench_fanout(base, n, a.poll_ms, t_true, a.concurrency)
        results.append(r)
        print(
            f"  fan-out {n}: wall {r['wall_ms']:.0f} ms (server {r['server_run_ms']} ms), {r['throughput_steps_per_s']:.0f} steps/s "
            f"({r['per_step_ms']:.1f} ms/step), parallel phase {r['fanout_phase_ms']} ms "
            f"= {r['fanout_phase_steps_per_s']:.0f} steps/s; fan-out edge {r['fanout_edge_ms']} ms, "
            f"fan-in edge {r['fanin_edge_ms']} ms",
            file=sys.stderr,
        )
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
