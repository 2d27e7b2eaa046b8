#!/usr/bin/env bash
# `make bench`: install what the benchmarks need (wrk, nginx, the backing servers), then run
# them on throwaway servers and services on free ports (python -m bench starts and stops
# everything itself). Arguments go to `python -m bench` (--help lists them); one part alone:
# --only http|data|pipeline|mixed|argon2 (mixed: Locust's mixed workload and login storm,
# from the venv's `bench` dependency group; argon2: `python -m bench.argon2_cost`).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
if ((${#missing[@]})); then
    echo "bench: installing ${missing[*]}" >&2
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The engine (PostgreSQL with DocumentDB, FerretDB in front), Jaeger, RabbitMQ and Redis, the venv.
env PYTHONPATH="$PWD/infra/local/src" python3 -m taskmesh_local install

# The benchmark's own servers: never the ones a `make up` stack or a test run uses.
unset TASKMESH_MONGO_URL TASKMESH_AMQP_URL TASKMESH_REDIS_URL OTEL_EXPORTER_OTLP_ENDPOINT
exec uv run --frozen python -m bench "$@"
