#!/usr/bin/env bash
# Serving benchmark (not a test): wrk, 2 threads, 8 connections, against Sextant's gateway
# (the release `serve_model` example of sextant-server) for a linear model, a 100-tree
# gradient-boosting regressor and a 100-tree random forest classifier, with 1-row and
# 100-row `{"inputs": ...}` bodies, and against a no-op axum handler that parses the same
# JSON. With --mlflow, also `mlflow models serve --env-manager local` of the same models.
#
#   bench/serving/run.sh [--mlflow] [--duration 10s]
#
# Needs wrk (apt-get install -y wrk) and the test venv (skl2onnx, mlflow).
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=10s
mlflow=0
while (($#)); do
    case "$1" in
        --mlflow) mlflow=1 ;;
        --duration) duration="$2"; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
unset RUST_BACKTRACE
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sextant/target}"
work="${BENCH_DIR:-/tmp/sextant-serving-bench}"
mkdir -p "$work"
python bench/serving/make_models.py "$work"
cargo build --release --quiet -p sextant-server --example serve_model
bin="$CARGO_TARGET_DIR/release/examples/serve_model"

pid=""
stop() { if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
trap stop EXIT

start_sextant() { # args for serve_model
    # Remove the last server's output first: the redirection below truncates it only once
    # the child runs, after this shell has already started polling.
    rm -f "$work/server.out"
    "$bin" --addr 127.0.0.1:0 "$@" > "$work/server.out" 2> "$work/server.err" &
    pid=$!
    # Wait for the whole first line (its newline), not just its start.
    until [[ -s "$work/server.out" && "$(wc -l < "$work/server.out")" -ge 1 ]]; do
        kill -0 "$pid" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
        sleep 0.05
    done
    url="$(awk '/^listening on /{print $3}' "$work/server.out")"
}

start_mlflow() { # model dir
    local port
    port="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    mlflow models serve -m "$1" -p "$port" -h 127.0.0.1 --env-manager local -w 1 \
        > "$work/mlflow.out" 2>&1 &
    pid=$!
    url="http://127.0.0.1:$port"
    until curl -fsS -o /dev/null "$url/ping" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { cat "$work/mlflow.out" >&2; exit 1; }
        sleep 0.2
    done
}

bench() { # label, body file
    # Warm up, then measure.
    BODY="$2" wrk -t2 -c8 -d2s -s bench/serving/post.lua "$url/invocations" > /dev/null
    local out
    out="$(BODY="$2" wrk -t2 -c8 -d"$duration" --latency -s bench/serving/post.lua "$url/invocations")"
    local rps p99 bad
    rps="$(awk '/^Requests\/sec:/{print $2}' <<< "$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<< "$out")"
    bad="$(awk '/Non-2xx/{print $5}' <<< "$out")"
    printf '%-34s %12s req/s   p99 %10s   non-200 %s\n' "$1" "$rps" "$p99" "${bad:-0}"
}

echo "wrk -t2 -c8 -d$duration --latency, bodies {\"inputs\": [[10 floats] x rows]}"
start_sextant --noop
for rows in 1 100; do bench "noop axum (parses JSON) ${rows} rows" "$work/rows$rows.json"; done
stop
for model in linear gbr rf; do
    start_sextant --model "$work/$model" --name "$model"
    for rows in 1 100; do bench "sextant $model ${rows} rows" "$work/rows$rows.json"; done
    stop
done
if ((mlflow)); then
    for model in linear gbr rf; do
        start_mlflow "$work/$model"
        for rows in 1 100; do bench "mlflow serve (onnx) $model ${rows} rows" "$work/rows$rows.json"; done
        stop
    done
fi
