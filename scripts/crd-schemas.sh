#!/usr/bin/env bash
# Regenerates the CRD schemas kept in helm/dovie/ci/schemas (run by hand when the
# prometheus-operator version changes; the test suite only reads them). The CRDs are generated
# by controller-gen from the operator's API types, as upstream does, both from the Go module
# proxy at pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."

OPERATOR_VERSION=v0.95.2
CONTROLLER_TOOLS_VERSION=v0.19.0
MODULE=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dir=$(GOFLAGS=-mod=mod go mod download -json "$MODULE@$OPERATOR_VERSION" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
cp -r "$dir" "$work/src"
chmod -R u+w "$work/src"
(cd "$work/src" && GOFLAGS=-mod=mod go run \
  "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION" \
  crd:crdVersions=v1 paths=./v1/... output:crd:dir="$work/crds")
eval "$(bash scripts/ops-tools.sh env)"
python3 scripts/crd-schemas.py helm/dovie/ci/schemas \
  "$work/crds/monitoring.coreos.com_servicemonitors.yaml" \
  "$work/crds/monitoring.coreos.com_prometheusrules.yaml"
