"""Plays the scenario TestSQLFixtures wrote on chDB, the ClickHouse engine.

Every step is SQL the platform sends: the migrations, the sink's inserts
(the Native blocks clickhouse-go encodes, with the sink's settings and
deduplication tokens) and the API's queries with their parameters bound.
The expected answers are computed in Go from the readings; this script
only runs and compares. Exit 0 when every check passed.

usage: run_sql_tests.py FIXTURE_DIR DB_DIR
"""

import json
import math
import os
import sys

from chdb import session


def same(got, want):
    """Equal, floats within a relative 1e-9 (ClickHouse and Go sum in
    different orders)."""
    if isinstance(want, bool) or isinstance(got, bool):
        return got == want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want))
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    return got == want


def version_at_least(v, minimum):
    have = [int(x) for x in v.split(".")[:2]]
    need = [int(x) for x in minimum.split(".")[:2]]
    return have >= need


class Runner:
    def __init__(self, fixtures, db):
        self.fixtures = fixtures
        self.s = session.Session(db)
        self.s.query("CREATE DATABASE IF NOT EXISTS monitorme")
        self.s.query("USE monitorme")
        self.checks = 0
        self.failures = []

    def rows(self, sql, params=None):
        res = self.s.query(sql, "JSONCompact", params=params or {})
        text = res.bytes().decode() if hasattr(res, "bytes") else str(res)
        return json.loads(text)["data"] if text.strip() else []

    def exec(self, sql, params=None):
        self.s.query(sql, "CSV", params=params or {})

    def describe(self, what):
        return [[r[0], r[1]] for r in self.rows("DESCRIBE " + what)]

    def fail(self, name, got, want):
        self.failures.append(name)
        print(f"FAIL {name}\n  got  {json.dumps(got)[:2000]}\n  want {json.dumps(want)[:2000]}")

    def ok(self, name):
        self.checks += 1
        print(f"ok   {name}")

    def step(self, st):
        do = st["do"]
        if do == "exec":
            self.exec(st["sql"], st.get("params"))
        elif do == "insert":
            path = os.path.join(self.fixtures, st["file"])
            # The block's own column types must be the table's: an insert
            # through SELECT would otherwise cast a wrong type silently.
            got, want = self.describe(f"file('{path}', Native)"), self.describe("TABLE " + st["table"])
            if got != want:
                self.fail(f"{st['file']} has the columns of {st['table']}", got, want)
            settings = ", ".join(f"{k} = {json.dumps(v) if not isinstance(v, str) else repr(v)}" for k, v in st["settings"].items())
            self.exec(f"{st['sql']} SETTINGS {settings} SELECT * FROM file('{path}', Native)")
        elif do == "describe":
            got, want = self.describe("TABLE " + st["table"]), st["columns"]
            (self.ok if got == want else lambda n: self.fail(n, got, want))(f"{st['name']}: {st['table']}")
        elif do == "runs":
            got = self.rows(st["sql"], st.get("params"))
            self.ok(f"{st['name']} ({len(got)} rows)")
        elif do == "contains":
            got = self.rows(st["sql"], st.get("params"))
            hit = len(got) == 1 and st["expect"] in str(got[0][0])
            (self.ok if hit else lambda n: self.fail(n, got, st["expect"]))(st["name"])
        elif do == "check":
            got, want = self.rows(st["sql"], st.get("params")), st["expect"]
            if isinstance(want, str) and want.startswith("min:"):
                good = version_at_least(got[0][0], want[4:])
                print(f"     ClickHouse engine {got[0][0]}")
            else:
                good = same(got, want)
            (self.ok if good else lambda n: self.fail(n, got, want))(st["name"])
        else:
            raise SystemExit(f"unknown step {do!r}")


def main():
    fixtures, db = sys.argv[1], sys.argv[2]
    with open(os.path.join(fixtures, "scenario.json")) as f:
        steps = json.load(f)["steps"]
    r = Runner(fixtures, db)
    r.exec("SET output_format_json_quote_64bit_integers = 0")
    for st in steps:
        try:
            r.step(st)
        except Exception as e:  # a statement the engine refused
            r.fail(st.get("name") or st.get("sql", "")[:80] or st["do"], str(e)[:2000], "no error")
    print(f"\n{r.checks} checks passed, {len(r.failures)} failed, {len(steps)} steps")
    sys.exit(1 if r.failures else 0)


if __name__ == "__main__":
    main()
