#!/usr/bin/env bash
# Installs the tools that render and check infra/: kustomize (built from its Go module) and
# compose-check (infra/compose/check, Docker Compose's own loader), into a per-machine cache
# outside the checkout. Idempotent: a second run only checks.
#
#   bash infra/k8s/install-tools.sh        prints the path of the kustomize binary
#
# TASKMESH_TOOLS_DIR overrides the cache (default: $XDG_CACHE_HOME/taskmesh/bin).
set -euo pipefail

# v5.8.3 and later need Go >= 1.27; v5.8.2 builds with the Go this project's machines have.
KUSTOMIZE_VERSION=v5.8.2

bin_dir="${TASKMESH_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/taskmesh/bin}"
kustomize="$bin_dir/kustomize"

check_src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../compose/check" && pwd)"
compose_check="$bin_dir/compose-check"
# Rebuilt whenever its sources change.
check_stamp="$(cat "$check_src/go.mod" "$check_src/go.sum" "$check_src"/*.go | sha256sum | cut -d' ' -f1)"

need_go() {
    if ! command -v go >/dev/null 2>&1; then
        echo "install-tools: 'go' is not on PATH; it is needed to build $1" >&2
        exit 1
    fi
}

mkdir -p "$bin_dir"
export GOTOOLCHAIN=local GOWORK=off

if ! { [[ -x "$kustomize" ]] && [[ "$("$kustomize" version 2>/dev/null)" == "$KUSTOMIZE_VERSION" ]]; }; then
    need_go "kustomize $KUSTOMIZE_VERSION"
    echo "install-tools: building kustomize $KUSTOMIZE_VERSION into $bin_dir" >&2
    # From outside any module, so no go.mod of the checkout is involved.
    (cd "$bin_dir" && GOBIN="$bin_dir" GOFLAGS=-mod=mod \
        go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION")
    actual="$("$kustomize" version)"
    if [[ "$actual" != "$KUSTOMIZE_VERSION" ]]; then
        echo "install-tools: built kustomize reports '$actual', expected $KUSTOMIZE_VERSION" >&2
        exit 1
    fi
fi

if ! { [[ -x "$compose_check" ]] && [[ "$(cat "$compose_check.stamp" 2>/dev/null)" == "$check_stamp" ]]; }; then
    need_go "compose-check"
    echo "install-tools: building compose-check into $bin_dir" >&2
    (cd "$check_src" && go build -mod=readonly -trimpath -o "$compose_check" .)
    echo "$check_stamp" > "$compose_check.stamp"
fi

echo "$kustomize"
