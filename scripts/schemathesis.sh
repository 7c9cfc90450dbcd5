#!/usr/bin/env bash
# Property-based check of the native API against its own OpenAPI document:
#
#   scripts/schemathesis.sh [BINARY]     # default $CARGO_TARGET_DIR/debug/sextant
#
# Installs schemathesis (scripts/requirements-schemathesis.txt) into its own venv
# ($HOME/.cache/sextant/venv-schemathesis-<hash>), starts `sextant server` on a free loopback
# port with a fresh temp --data-dir, runs schemathesis over /api/v1/openapi.json with a bounded,
# derandomized (--generation-deterministic) number of examples per operation, and stops the server. Fails on any 5xx, any
# response that does not match the document, or any status the document does not list.
# SEXTANT_SCHEMATHESIS_EXAMPLES overrides the examples per operation (default 25).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=lib/venv.sh
source "$root/scripts/lib/venv.sh"
ensure_venv "$root" "$root/scripts/requirements-schemathesis.txt" venv-schemathesis

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sextant/target}"
binary="${1:-$CARGO_TARGET_DIR/debug/sextant}"
[[ -x "$binary" ]] || { echo "no sextant binary at $binary (cargo build --bin sextant)" >&2; exit 1; }

data_dir="$(mktemp -d -t sextant-schemathesis.XXXXXX)"
port="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$binary" server --host 127.0.0.1 --port "$port" --data-dir "$data_dir" >"$data_dir/server.log" 2>&1 &
server_pid=$!
cleanup() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    rm -rf "$data_dir"
}
trap cleanup EXIT

base="http://127.0.0.1:$port"
deadline=$((SECONDS + 60))
until curl -fsS -o /dev/null "$base/api/v1/openapi.json" 2>/dev/null; do
    if ! kill -0 "$server_pid" 2>/dev/null || ((SECONDS >= deadline)); then
        echo "sextant server did not come up on $base:" >&2
        cat "$data_dir/server.log" >&2
        exit 1
    fi
    sleep 0.1
done

status=0
# From the temp dir: schemathesis keeps a crash cache (.schemathesis/) in its working directory.
cd "$data_dir"
schemathesis --config-file "$root/scripts/schemathesis.toml" run "$base/api/v1/openapi.json" \
    --url "$base" \
    --checks "${SEXTANT_SCHEMATHESIS_CHECKS:-not_a_server_error,response_schema_conformance,status_code_conformance}" \
    --max-examples "${SEXTANT_SCHEMATHESIS_EXAMPLES:-25}" \
    --generation-deterministic \
    --no-color \
    || status=$?
if ((status)); then
    echo "--- server log" >&2
    tail -n 50 "$data_dir/server.log" >&2
fi
exit "$status"
