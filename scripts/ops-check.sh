#!/usr/bin/env bash
# Checks Dovie's operations files with the tools operators use, offline:
#   - helm lint of the chart, with its default values and the cluster values (ci/), and that
#     bad values are refused (values.schema.json, the chart's own checks);
#   - helm template for both, validated strictly against the Kubernetes schemas (kubeconform
#     -strict over the schemas kubernetes-validate ships, and kubernetes-validate --strict), the
#     ServiceMonitor and PrometheusRule against their CRD schemas kept in helm/dovie/ci/schemas;
#     a manifest with an unknown field must fail, so the validation is known to bite;
#   - promtool check rules on the rendered alerts;
#   - the rendered server config (dovie.toml) accepted by the real binary;
#   - hadolint on the Dockerfile.
# That every metric the alerts and the dashboard query is one a node exports is a cargo test
# (tests/ops.rs), which starts a node.
#
#   scripts/ops-check.sh [path/to/dovie]    (default: target/debug/dovie)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-target/debug/dovie}
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas.
K8S_VERSIONS=${DOVIE_K8S_VERSIONS:-"1.30.0 1.37.0"}
OUT=target/ops-check
CHART=helm/dovie

bash scripts/ops-tools.sh install
eval "$(bash scripts/ops-tools.sh env)"
rm -rf "$OUT"
mkdir -p "$OUT"

fail() { echo "ops-check: $*" >&2; exit 1; }

echo "== helm lint"
helm lint --strict "$CHART"
helm lint --strict "$CHART" -f "$CHART/ci/cluster-values.yaml"
for bad in "--set mode=bogus" "--set replicaCount=0" "--set secrets.jwtSecret=short" \
  "--set mode=cluster --set files.s3.endpoint=https://s3.example" \
  "--set mode=cluster --set secrets.jwtSecret=0123456789abcdef0123456789abcdef" \
  "--set apns.enabled=true --set apns.keyId=K --set apns.teamId=T --set apns.topic=app" \
  "--set apns.enabled=true --set secrets.apnsKey=pem"; do
  # shellcheck disable=SC2086
  if helm template t "$CHART" $bad > /dev/null 2>&1; then
    fail "helm template accepted bad values: $bad"
  fi
done

echo "== helm template | kubeconform -strict, kubernetes-validate --strict"
helm template dovie "$CHART" > "$OUT/default.yaml"
helm template dovie "$CHART" -f "$CHART/ci/cluster-values.yaml" > "$OUT/cluster.yaml"
# A copy with a field no Kubernetes object has: the validators must refuse it.
"$VIRTUAL_ENV_PYTHON" - "$OUT/cluster.yaml" "$OUT/broken.yaml" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "Deployment":
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    if d["kind"] == "ServiceMonitor":
        d["spec"]["endpoints"][0]["scrapeIntervall"] = "15s"
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
EOF
for v in $K8S_VERSIONS; do
  "$VIRTUAL_ENV_PYTHON" scripts/k8s-schemas.py "$DOVIE_K8S_SCHEMAS" "$v" "$OUT/schemas" \
    "$OUT/default.yaml" "$OUT/cluster.yaml" > /dev/null
  kubeconform_args=(-strict -summary -kubernetes-version "$v"
    -schema-location "$OUT/schemas/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
    -schema-location "$CHART/ci/schemas/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json")
  # Every object must find its schema: a skipped kind would be a hole in the check.
  kubeconform "${kubeconform_args[@]}" "$OUT/default.yaml" "$OUT/cluster.yaml" |
    tee "$OUT/kubeconform-$v.txt"
  grep -q "Errors: 0, Skipped: 0" "$OUT/kubeconform-$v.txt" || fail "kubeconform skipped or failed an object"
  if kubeconform "${kubeconform_args[@]}" "$OUT/broken.yaml" > "$OUT/broken-$v.txt" 2>&1; then
    fail "kubeconform accepted unknown fields"
  fi
  grep -q "imagePullPolcy" "$OUT/broken-$v.txt" || fail "kubeconform missed the Deployment's unknown field"
  grep -q "scrapeIntervall" "$OUT/broken-$v.txt" || fail "kubeconform missed the ServiceMonitor's unknown field"
  # kubernetes-validate knows the built-in kinds only.
  "$VIRTUAL_ENV_PYTHON" - "$OUT/default.yaml" "$OUT/cluster.yaml" "$OUT/builtin.yaml" <<'EOF'
import sys, yaml
docs = [d for p in sys.argv[1:-1] for d in yaml.safe_load_all(open(p)) if d]
yaml.safe_dump_all([d for d in docs if not d["apiVersion"].startswith("monitoring.coreos.com/")],
                   open(sys.argv[-1], "w"))
EOF
  kubernetes-validate --strict --quiet -k "$v" "$OUT/builtin.yaml"
done

echo "== promtool check rules"
"$VIRTUAL_ENV_PYTHON" - "$OUT/cluster.yaml" "$OUT/rules.yaml" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
rules = [d for d in docs if d["kind"] == "PrometheusRule"]
assert len(rules) == 1, "the cluster values render one PrometheusRule"
yaml.safe_dump(rules[0]["spec"], open(sys.argv[2], "w"))
EOF
promtool check rules "$OUT/rules.yaml"
# The alerts fire on what they are about, and stay quiet on what they are not (a drain is not
# "not ready"): promtool's unit tests of the rendered rules.
cp "$CHART/ci/alerts-test.yaml" "$OUT/alerts-test.yaml"
promtool test rules "$OUT/alerts-test.yaml"

echo "== the rendered dovie.toml is a config the server accepts"
for values in default cluster; do
  "$VIRTUAL_ENV_PYTHON" - "$OUT/$values.yaml" "$OUT/$values.toml" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
config = [d for d in docs if d["kind"] == "ConfigMap" and "dovie.toml" in d.get("data", {})]
assert len(config) == 1, "one ConfigMap holds dovie.toml"
open(sys.argv[2], "w").write(config[0]["data"]["dovie.toml"])
EOF
  # `migrate` reads the whole config (unknown keys are errors) and applies the embedded schema.
  DOVIE_JWT_SECRET= "$BIN" migrate --config "$OUT/$values.toml" --store embedded \
    --data-dir "$OUT/data-$values" > "$OUT/migrate-$values.log" 2>&1 ||
    { cat "$OUT/migrate-$values.log" >&2; fail "dovie refused the chart's $values config"; }
done

echo "== hadolint"
hadolint Dockerfile

echo "ops-check: ok"
