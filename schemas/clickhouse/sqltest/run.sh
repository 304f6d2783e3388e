#!/usr/bin/env bash
# make test-sql: the schema, the sink's rows and the API's queries on the
# real ClickHouse engine (chDB, from PyPI, in a project-local virtualenv).
# A Go test writes the scenario (sinks/clickhouse TestSQLFixtures); the
# Python runner plays it and compares every answer with what Go expects.
# Then chDB is served over ClickHouse's HTTP interface and `monitorme dev`
# runs against it through clickhouse-go (roles TestDevHistoryOnChDB).
set -euo pipefail
cd "$(dirname "$0")/../../.."
here=schemas/clickhouse/sqltest
venv=${MONITORME_SQL_VENV:-.cache/sqltest-venv}
if [ ! -x "$venv/bin/python" ]; then
	python3 -m venv "$venv"
fi
# Quick when the pinned version is already there; installs it otherwise.
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
work=$(mktemp -d)
shim=
trap '[ -n "$shim" ] && kill "$shim" 2>/dev/null; rm -rf "$work"' EXIT
MONITORME_SQL_FIXTURES="$work/fixtures" ${GO:-go} test -count=1 -run '^TestSQLFixtures$' ./sinks/clickhouse
"$venv/bin/python" "$here/run_sql_tests.py" "$work/fixtures" "$work/db"

"$venv/bin/python" "$here/chdb_http.py" "$work/httpdb" "$work/port" 2>"$work/shim.log" &
shim=$!
for _ in $(seq 1 100); do
	[ -s "$work/port" ] && break
	kill -0 "$shim" 2>/dev/null || { cat "$work/shim.log"; exit 1; }
	sleep 0.1
done
[ -s "$work/port" ] || { echo "chdb_http.py did not start"; cat "$work/shim.log"; exit 1; }
MONITORME_TEST_CHDB_HTTP="127.0.0.1:$(cat "$work/port")" ${GO:-go} test -count=1 -v -run '^(TestDevHistoryOnChDB|TestRebuildHistoryOnChDB)$' ./roles
