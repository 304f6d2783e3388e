#!/usr/bin/env bash
# make chart-check: lints, validates and installs charts/monitorme.
#  0. make image, whose binary's version is the chart's appVersion
#  1. tools (charts/scripts/tools.sh, cached in .cache/chart-tools)
#  2. values.schema.json is what values.yaml gives, every value documented
#  3. helm lint --strict and ct lint on every ci/*-values.yaml
#  4. helm template of each, for Kubernetes 1.29 and 1.37, through
#     kubeconform -strict against offline schemas (kubernetes-validate)
#  5. values the schema must refuse are refused; no secret material rendered;
#     the helm test Pod's command run against monitorme dev
#  6. (not with CHART_CHECK_SERVER=0) a kube-apiserver on Debian's etcd, started here and stopped by PID:
#     CRDs of ServiceMonitor and PrometheusRule, helm install
#     --dry-run=server of each values file, then a real install and upgrade
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CHART=charts/monitorme
TOOLS=charts/scripts/tools.sh
WORK=$ROOT/.cache/chart-check
VERSIONS="1.29.0 1.37.0"
step() { printf '\n== %s\n' "$*"; }
die() { echo "chart-check: $*" >&2; exit 1; }
t0=$(date +%s)
took() { echo "   ($(( $(date +%s) - t0 )) s so far)"; }

step "tools"
if [ "${CHART_CHECK_SERVER:-1}" = 0 ]; then $TOOLS kubeconform; $TOOLS venv; $TOOLS helm; $TOOLS ct; else $TOOLS all; fi
eval "$($TOOLS paths)"
export PATH=$VENV/bin:$(dirname "$HELM"):$PATH
took

step "the image the chart deploys (make image: OCI layout, no container runtime)"
make -s image
grep -q "^appVersion: \"$(.cache/image-bin/monitorme version | awk '{print $2}')\"" $CHART/Chart.yaml || die "the chart's appVersion is not the binary's version"

step "values.schema.json and the documentation of every value"
"$VENV/bin/python" charts/scripts/schema.py --check
echo ok

step "helm lint --strict"
for f in $CHART/ci/*-values.yaml; do
	"$HELM" lint --strict "$CHART" -f "$f" | grep -v 'icon is recommended' | tail -1
done

step "ct lint"
"$CT" lint --charts "$CHART" --chart-dirs charts --validate-maintainers=false --check-version-increment=false \
	--helm-extra-args "--timeout 60s" --lint-conf charts/scripts/lintconf.yaml --chart-yaml-schema charts/scripts/chart_schema.yaml 2>&1 | tail -4
took

step "helm template | kubeconform -strict, Kubernetes $VERSIONS"
rm -rf "$WORK"; mkdir -p "$WORK/schemas"
"$VENV/bin/python" charts/scripts/schemas.py "$WORK/schemas" $VERSIONS
for v in $VERSIONS; do
	for f in $CHART/ci/*-values.yaml; do
		printf '%-8s %-32s ' "$v" "$(basename "$f")"
		"$HELM" template mm "$CHART" -f "$f" --kube-version "$v" \
			--api-versions monitoring.coreos.com/v1/ServiceMonitor --api-versions monitoring.coreos.com/v1/PrometheusRule |
			"$KUBECONFORM" -strict -summary -kubernetes-version "$v" \
				-schema-location "$WORK/schemas/{{ .NormalizedKubernetesVersion }}-strict/{{ .ResourceKind }}{{ .KindSuffix }}.json"
	done
done

# The validator itself must be able to fail: a misspelt field is refused.
if "$HELM" template mm "$CHART" -f $CHART/ci/minimal-values.yaml --kube-version 1.37.0 | sed 's/containerPort:/containerPortt:/' |
	"$KUBECONFORM" -strict -kubernetes-version 1.37.0 -schema-location "$WORK/schemas/{{ .NormalizedKubernetesVersion }}-strict/{{ .ResourceKind }}{{ .KindSuffix }}.json" >/dev/null 2>&1; then
	die "kubeconform accepted a misspelt field: the schemas are not checking"
fi
# ... and in the monitoring kinds, held to prometheus-operator's own CRDs
# (before, they were skipped, and the API server's stand-in CRDs took any
# spec).
if "$HELM" template mm "$CHART" -f $CHART/ci/monitoring-values.yaml --kube-version 1.37.0 \
	--api-versions monitoring.coreos.com/v1/ServiceMonitor --api-versions monitoring.coreos.com/v1/PrometheusRule | sed 's/^  endpoints:/  endpointz:/' |
	"$KUBECONFORM" -strict -kubernetes-version 1.37.0 -schema-location "$WORK/schemas/{{ .NormalizedKubernetesVersion }}-strict/{{ .ResourceKind }}{{ .KindSuffix }}.json" >/dev/null 2>&1; then
	die "kubeconform accepted a misspelt ServiceMonitor field: the monitoring schemas are not checking"
fi
echo "a misspelt field (containerPortt) is refused: the validator checks"

step "values the schema refuses"
refuse() { # name, then --set arguments; the chart must refuse them
	local name=$1; shift
	if out=$("$HELM" template mm "$CHART" --kube-version 1.37.0 -f $CHART/ci/minimal-values.yaml "$@" 2>&1); then
		die "accepted $name: $*"
	fi
	printf 'refused %-40s %s\n' "$name" "$(echo "$out" | grep -m1 -oE "(at '|execute error|fail).{0,120}" || echo "$out" | head -1 | cut -c1-120)"
}
refuse "a string for replicas" --set process.replicas=three
refuse "an unknown key" --set ingest.replica=2
refuse "a bad enum (auth.mode)" --set auth.mode=open
refuse "a bad enum (sasl mechanism)" --set kafka.sasl.mechanism=GSSAPI
refuse "a broker without a port" --set 'kafka.brokers[0]=redpanda'
refuse "a CORS wildcard" --set 'auth.corsOrigins[0]=*'
refuse "more processors than partitions" --set process.replicas=13
refuse "SASL without the password Secret" --set kafka.sasl.mechanism=SCRAM-SHA-256
refuse "tokens without the token Secret" --set auth.tokens.existingSecret=

step "monitors only where the cluster serves their API"
n=$("$HELM" template mm "$CHART" --kube-version 1.37.0 -f $CHART/ci/monitoring-values.yaml | grep -cE '^kind: (ServiceMonitor|PrometheusRule)' || true)
[ "$n" = 0 ] || die "ServiceMonitor or PrometheusRule rendered for a cluster without monitoring.coreos.com/v1"
echo "ok: none without monitoring.coreos.com/v1, both with it (the install below)"

step "no secret material rendered"
"$HELM" template mm "$CHART" --kube-version 1.37.0 -f $CHART/ci/sasl-tls-values.yaml > "$WORK/sasl-tls.yaml"
if grep -nE 'kind: Secret|BEGIN [A-Z ]*PRIVATE KEY|password:|mm_[A-Za-z0-9_-]{20,}' "$WORK/sasl-tls.yaml"; then
	die "the SASL+TLS rendering holds secret material (above)"
fi
echo "ok: $(grep -c 'secretKeyRef:' "$WORK/sasl-tls.yaml") secretKeyRefs, $(grep -c 'secretName:' "$WORK/sasl-tls.yaml") secret volumes, no Secret and no secret value"
took

step "helm test: the test Pod's own command, run against monitorme dev"
# The API server here has no nodes, so the Pod cannot run there; its
# command runs here instead, on the chart's rendering, against a real API
# (before, the test Pod was never even dry-run).
go build -o bin/monitorme ./cmd/monitorme
testpod() { "$HELM" template mm "$CHART" -f $CHART/ci/minimal-values.yaml --kube-version 1.37.0 --show-only templates/tests/test-api.yaml "$@" |
	"$VENV/bin/python" -c 'import sys, yaml; print(yaml.safe_load(sys.stdin)["spec"]["containers"][0]["args"][0])'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TEST_TOKEN=$(bin/monitorme token create --file "$WORK/tokens.yaml" --subject helm-test --role clinician 2>/dev/null)
port=$(free_port)
bin/monitorme dev --no-simulator --data-dir "$WORK/dev" --http-addr "127.0.0.1:$port" --broker-addr "127.0.0.1:$(free_port)" \
	--auth-token-file "$WORK/tokens.yaml" >"$WORK/dev.log" 2>&1 &
devpid=$!
for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
testpod --set tests.tokenSecret=api-token >"$WORK/test-tokens.sh"
testpod --set auth.mode=insecure >"$WORK/test-insecure.sh"
ok=0
BASE=http://127.0.0.1:$port TOKEN=$TEST_TOKEN sh -ec "$(cat "$WORK/test-tokens.sh")" >/dev/null && ok=1
# The same test for an insecure release must fail on this authenticated
# API: it expects patients without a token.
BASE=http://127.0.0.1:$port sh -ec "$(cat "$WORK/test-insecure.sh")" >/dev/null 2>&1 && ok=2
kill "$devpid"; wait "$devpid" 2>/dev/null || true
[ $ok = 1 ] || { cat "$WORK/test-tokens.sh"; tail -20 "$WORK/dev.log"; die "the helm test's command failed against monitorme dev (or the insecure variant passed)"; }
echo "ok: it passes against monitorme dev with a token, and the insecure release's test fails there, as it must"

if [ "${CHART_CHECK_SERVER:-1}" = 0 ]; then
	step "CHART_CHECK_SERVER=0: the API server part is skipped; chart-check is NOT complete"
	exit 0
fi
step "a real API server: kube-apiserver $("$APISERVER" --version 2>/dev/null | awk '{print $2}') on etcd $(etcd --version | awk 'NR==1{print $3}')"
charts/scripts/apiserver.sh start "$WORK/apiserver"
trap 'charts/scripts/apiserver.sh stop "$WORK/apiserver"' EXIT
export KUBECONFIG=$WORK/apiserver/kubeconfig
"$HELM" version --short >/dev/null
kube() { "$VENV/bin/python" charts/scripts/kube.py "$@"; }
kube apply charts/scripts/crds/servicemonitors.yaml charts/scripts/crds/prometheusrules.yaml
kube namespace monitorme
for f in $CHART/ci/*-values.yaml; do
	printf 'dry-run=server %-28s ' "$(basename "$f")"
	"$HELM" install "dry-$(basename "$f" -values.yaml)" "$CHART" -n monitorme -f "$f" --dry-run=server >"$WORK/dry.out" 2>&1 ||
		{ cat "$WORK/dry.out"; die "dry run of $f"; }
	echo "ok ($(grep -c '^kind:' "$WORK/dry.out") objects)"
done
# No nodes and no controllers run: pods stay Pending and hook Jobs never
# finish, so the real install skips the hooks (their manifests passed the
# server-side dry runs above) and does not wait.
"$HELM" install mm "$CHART" -n monitorme -f $CHART/ci/monitoring-values.yaml --no-hooks >/dev/null
kube has monitorme servicemonitors prometheusrules deployments services ||
	die "the monitoring values installed without the ServiceMonitor and PrometheusRule they gate on"
echo "installed (monitoring values): the gated ServiceMonitor and PrometheusRule are there"
kube get monitorme
"$HELM" upgrade mm "$CHART" -n monitorme -f $CHART/ci/scaled-values.yaml --no-hooks >/dev/null
echo "upgraded (scaled values: history on, autoscaling, 12 processors, rules ConfigMap)"
kube get monitorme
"$HELM" history mm -n monitorme
"$HELM" uninstall mm -n monitorme
took
step "chart-check passed in $(( $(date +%s) - t0 )) s"
