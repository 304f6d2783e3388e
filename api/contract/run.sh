#!/usr/bin/env bash
# make test-contract: the API against its own OpenAPI document. Starts
# `monitorme dev` (embedded broker, simulated ward) with an admin token
# from a static token file, then runs schemathesis (PyPI, pinned, in
# .cache/contract-venv) over every operation of /v1/openapi.json with all
# its checks and phases: a request the document allows must not be
# refused, one it forbids must not be accepted, a response must match the
# document, and no 5xx but the documented 501s. Stops what it started.
#
#   CONTRACT_SEED     the run's seed (default: random; printed either way)
#   CONTRACT_EXAMPLES examples per operation and phase (default 20)
#   CONTRACT_MAX_TIME time budget of the run in seconds (default 300)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=api/contract
venv=${MONITORME_CONTRACT_VENV:-.cache/contract-venv}
if [ ! -x "$venv/bin/python" ]; then
	python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
${GO:-go} build -o bin/monitorme ./cmd/monitorme

work=$(mktemp -d)
dev=
trap '[ -n "$dev" ] && kill "$dev" 2>/dev/null && wait "$dev" 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port)
broker=$(free_port)
# The token goes from the command's stdout to schemathesis' environment,
# never onto a command line.
token=$(bin/monitorme token create --file "$work/tokens.yaml" --subject contract-suite --role admin)
bin/monitorme dev --data-dir "$work/data" --http-addr "127.0.0.1:$http" --broker-addr "127.0.0.1:$broker" \
	--auth-token-file "$work/tokens.yaml" >"$work/dev.log" 2>&1 &
dev=$!
base="http://127.0.0.1:$http"
for _ in $(seq 1 300); do
	curl -fs "$base/readyz" >/dev/null 2>&1 && break
	kill -0 "$dev" 2>/dev/null || { cat "$work/dev.log"; exit 1; }
	sleep 0.2
done
curl -fs "$base/readyz" >/dev/null || { echo "monitorme dev did not become ready"; cat "$work/dev.log"; exit 1; }

seed=${CONTRACT_SEED:-$RANDOM$RANDOM}
report=${CONTRACT_REPORT_DIR:-.cache/contract-report}
mkdir -p "$report"
echo "test-contract: schemathesis $("$venv/bin/schemathesis" --version | awk '{print $NF}') on $base, seed $seed (CONTRACT_SEED=$seed to run it again), report in $report"
# The document as the server serves it (it asks for a token too); the
# header is read from a file, not given on curl's command line.
printf 'Authorization: Bearer %s\n' "$token" >"$work/auth.header"
curl -fsS -H @"$work/auth.header" "$base/v1/openapi.json" >"$work/openapi.json"
# The settings, and for each operation whose document says 501 (history
# without ClickHouse, as here) that 501 is no server error; every other
# 5xx is one.
cp "$here/schemathesis.toml" "$work/schemathesis.toml"
python3 - "$work/openapi.json" >>"$work/schemathesis.toml" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for path, ops in sorted(doc["paths"].items()):
    for method, op in sorted(ops.items()):
        if "501" in op.get("responses", {}):
            print(f'\n[[operations]]\ninclude-path = "{path}"\ninclude-method = "{method.upper()}"')
            print('checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "501"]')
PY
status=0
SCHEMATHESIS_TOKEN=$token "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$work/openapi.json" --url "$base" \
	--checks all --phases examples,coverage,fuzzing,stateful --seed "$seed" \
	--max-examples "${CONTRACT_EXAMPLES:-20}" --max-time "${CONTRACT_MAX_TIME:-300}" \
	--generation-database none --report junit,ndjson --report-dir "$report" --no-color --output-truncate true || status=$?
if [ "$status" != 0 ]; then
	echo "--- monitorme dev's log (last 40 lines)"
	tail -40 "$work/dev.log"
fi
exit "$status"
