#!/usr/bin/env bash
# make test-sql: the schema, the sink's rows and the API's queries on the
# real ClickHouse engine (chDB, from PyPI, in a project-local virtualenv).
# A Go test writes the scenario (sinks/clickhouse TestSQLFixtures); the
# Python runner plays it and compares every answer with what Go expects.
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
trap 'rm -rf "$work"' EXIT
MONITORME_SQL_FIXTURES="$work/fixtures" ${GO:-go} test -count=1 -run '^TestSQLFixtures$' ./sinks/clickhouse
"$venv/bin/python" "$here/run_sql_tests.py" "$work/fixtures" "$work/db"
