#!/usr/bin/env bash
# Renders one overlay to stdout, e.g.:
#   infra/k8s/render.sh dev | kubectl apply --dry-run=server -f -
#   infra/k8s/render.sh prod          (needs overlays/prod/secrets/*.env, see infra/README.md)
# Uses the kustomize that install-tools.sh builds (building it on first use).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
overlay="${1:?usage: render.sh dev|prod|<overlay dir>}"
[[ -d "$overlay" ]] || overlay="$here/overlays/$overlay"
kustomize="$(bash "$here/install-tools.sh")"
exec "$kustomize" build "$overlay"
