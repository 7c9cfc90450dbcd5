# Sourced by scripts/test, scripts/bench and scripts/schemathesis.sh: ensure_venv creates (or reuses)
# a pinned Python venv outside the clone and puts it first on PATH. Sets $venv.
#   ensure_venv ROOT                   -> ${SEXTANT_VENV:-$HOME/.cache/sextant/venv-<hash of scripts/requirements-test.txt>}
#   ensure_venv ROOT REQUIREMENTS NAME -> $HOME/.cache/sextant/NAME-<hash of REQUIREMENTS>
# It installs only when the venv is missing or the requirements changed (marker file in the venv).
ensure_venv() {
    local root="$1"
    local req="${2:-$root/scripts/requirements-test.txt}"
    local name="${3:-}"
    local req_hash
    req_hash="$(sha256sum "$req" | cut -c1-16)"
    if [[ -n "$name" ]]; then
        venv="$HOME/.cache/sextant/$name-$req_hash"
    else
        venv="${SEXTANT_VENV:-$HOME/.cache/sextant/venv-$req_hash}"
    fi
    local marker="$venv/.sextant-requirements-sha256"
    if [[ ! -x "$venv/bin/python" || ! -f "$marker" || "$(cat "$marker")" != "$req_hash" ]]; then
        printf '==> installing %s into %s\n' "$req" "$venv" >&2
        mkdir -p "$(dirname "$venv")"
        [[ -x "$venv/bin/python" ]] || "${PYTHON:-python3}" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --upgrade pip
        "$venv/bin/python" -m pip install --quiet -r "$req"
        echo "$req_hash" >"$marker"
    else
        printf '==> reusing venv %s\n' "$venv" >&2
    fi
    export PATH="$venv/bin:$PATH"
}
