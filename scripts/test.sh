#!/usr/bin/env bash
# `make test`: install the backing servers, start a throwaway set for this run, run
# every test against them, stop them. Any skipped test fails the run (TASKMESH_FORBID_SKIPS),
# and a run that collects no test fails too (pytest's exit code 5 passes through).
set -euo pipefail
cd "$(dirname "$0")/.."

LOCAL=(env PYTHONPATH="$PWD/infra/local/src" python3 -m taskmesh_local)
"${LOCAL[@]}" install

# The browser tests (the web console, Jaeger's UI) drive Debian's headless Chromium.
if ! command -v chromium >/dev/null 2>&1; then
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends chromium
fi

if [[ -z "${TASKMESH_MONGO_URL:-}" || -z "${TASKMESH_AMQP_URL:-}" || -z "${TASKMESH_REDIS_URL:-}" ]]; then
    run_dir="$(mktemp -d "${TMPDIR:-/tmp}/taskmesh-test.XXXXXX")"
    trap '"${LOCAL[@]}" test-servers stop --dir "$run_dir" || true; rm -rf "$run_dir"' EXIT
    "${LOCAL[@]}" test-servers start --jaeger --dir "$run_dir"
    set -a
    # shellcheck disable=SC1091
    source "$run_dir/env"
    set +a
fi

export TASKMESH_FORBID_SKIPS=1
uv run --frozen pytest "$@"
