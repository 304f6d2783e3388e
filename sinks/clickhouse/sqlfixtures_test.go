package clickhouse

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	blockproto "github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/warehouse"
	"github.com/monitorme/monitorme/schemas"
	chschema "github.com/monitorme/monitorme/schemas/clickhouse"
)

// TestSQLFixtures writes the scenario `make test-sql` plays on the
// ClickHouse engine (chDB): the schema as `monitorme migrate` renders it,
// batches of rows exactly as the sink builds them, encoded by
// clickhouse-go's own column encoders into the Native blocks its batch
// API sends, and every query the API and the migrations issue, with
// parameters and the rows they must return, computed here from the
// readings. Without MONITORME_SQL_FIXTURES it still builds all of it, so
// a Go value no ClickHouse column accepts fails here too.
func TestSQLFixtures(t *testing.T) {
	dir := os.Getenv("MONITORME_SQL_FIXTURES")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sc := newScenario(t, dir)
	sc.build()
	b, err := json.MarshalIndent(map[string]any{"steps": sc.steps}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scenario.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d steps, %d readings, %d alert events in %s", len(sc.steps), len(sc.readings), len(sc.alerts), dir)
}

// step is one action of the scenario; run_sql_tests.py knows each Do.
type step struct {
	Do     string            `json:"do"` // exec, insert, check, contains, describe, runs
	Name   string            `json:"name,omitempty"`
	SQL    string            `json:"sql,omitempty"`
	Params map[string]string `json:"params,omitempty"`
	// check: the rows, as ClickHouse's JSONCompact writes them (floats
	// compared with a tolerance); contains: a substring of the one value.
	Expect any    `json:"expect,omitempty"`
	Table  string `json:"table,omitempty"`
	File   string `json:"file,omitempty"`
	// insert: the settings of the sink's inserts, token included.
	Settings map[string]any `json:"settings,omitempty"`
	Columns  [][2]string    `json:"columns,omitempty"`
}

type scenario struct {
	t     *testing.T
	dir   string
	steps []step
	files int

	tables   map[string]*Table
	day      time.Time // the day of the live readings
	base     time.Time // the first live reading
	old      time.Time // readings past the vitals TTL, within the rollup's
	ancient  time.Time // an alert past the alerts TTL
	readings []schemas.Reading
	alerts   []schemas.Alert
	acks     []schemas.Ack
	silence  schemas.Silence
	rules    schemas.RulesLoaded
	// records by table and partition, offsets their indexes
	records map[string][2][]*kgo.Record
}

var fixtureTopics = kafka.DefaultConfig().Topics

func newScenario(t *testing.T, dir string) *scenario {
	// Times are relative to today: the TTLs count from the server's
	// clock. Yesterday holds every live reading in one day partition.
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	sc := &scenario{t: t, dir: dir, tables: map[string]*Table{}, day: day, base: day.Add(10 * time.Hour),
		records: map[string][2][]*kgo.Record{}}
	sc.old, sc.ancient = sc.base.AddDate(0, 0, -40), sc.base.AddDate(0, 0, -400)
	for _, tb := range Tables(fixtureTopics) {
		sc.tables[tb.Name] = &tb
	}
	return sc
}

func (sc *scenario) add(s step) { sc.steps = append(sc.steps, s) }

func (sc *scenario) check(name, sql string, params map[string]string, rows [][]any) {
	if rows == nil {
		rows = [][]any{}
	}
	sc.add(step{Do: "check", Name: name, SQL: sql, Params: params, Expect: rows})
}

func (sc *scenario) build() {
	sc.migrate()
	sc.data()
	// Background merges would collapse duplicates and apply the TTLs
	// whenever they ran; stopped, every count below is exact until the
	// OPTIMIZE that runs them on purpose.
	sc.add(step{Do: "exec", SQL: "SYSTEM STOP MERGES"})
	for _, tb := range []string{"vitals", "alerts", "audit"} {
		sc.insertAll(tb, 500, time.Time{})
	}
	sc.liveChecks("inserted")
	sc.docExamples("../../docs/analysts.md")
	// A sink that retried a batch, or was succeeded after inserting and
	// before committing, sends the same batch with the same token.
	for _, tb := range []string{"vitals", "alerts", "audit"} {
		sc.insertAll(tb, 500, time.Time{})
	}
	sc.liveChecks("the same batches again")

	// A replay of P1's partition from the start of the day (offsets
	// reset to a timestamp) whose batches are cut elsewhere: the tokens
	// differ, so ClickHouse takes every row again.
	replayed := sc.insertAll("vitals", 300, sc.day)
	n := len(sc.readings)
	sc.check("a replay with other boundaries writes the readings again", "SELECT count() FROM vitals", nil, [][]any{{n + replayed}})
	sc.check("FINAL counts each reading once", "SELECT count() FROM vitals FINAL", nil, [][]any{{n}})
	sc.check("the rollup counts the replayed readings twice", "SELECT sum(samples) FROM vitals_1m", nil, [][]any{{n + replayed}})
	sc.rawChecks("after the replay")
	sc.add(step{Do: "exec", SQL: "SYSTEM START MERGES"})

	// A merge collapses the duplicates and applies the TTL: raw vitals
	// 40 days old go, their rollup stays; an alert 400 days old goes.
	for _, tb := range []string{"vitals", "alerts", "audit", "acknowledgements", "vitals_1m"} {
		sc.add(step{Do: "exec", SQL: "OPTIMIZE TABLE " + tb + " FINAL"})
	}
	oldReadings := sc.countReadings(func(r *schemas.Reading) bool { return r.TS.Before(sc.day) })
	sc.check("after OPTIMIZE FINAL: one row per reading, none past the vitals TTL", "SELECT count() FROM vitals", nil, [][]any{{n - oldReadings}})
	sc.check("after OPTIMIZE FINAL: alerts past their TTL are gone", "SELECT count() FROM alerts WHERE ts < {at:DateTime64(3, 'UTC')}",
		map[string]string{"at": chschema.DateTime64(sc.old.AddDate(0, 0, -1))}, [][]any{{0}})
	sc.check("the rollup of readings past the vitals TTL stays", "SELECT sum(samples) FROM vitals_1m WHERE minute < {day:Date}",
		map[string]string{"day": sc.day.Format(time.DateOnly)}, [][]any{{oldReadings}})
	sc.rawChecks("after OPTIMIZE FINAL")

	// Rebuilding the replayed day of the rollup (docs/analysts.md).
	sc.add(step{Do: "exec", SQL: "ALTER TABLE vitals_1m DROP PARTITION '" + sc.day.Format(time.DateOnly) + "'"})
	sc.add(step{Do: "exec", SQL: chschema.RebuildRollupDaySQL, Params: map[string]string{"day": sc.day.Format(time.DateOnly)}})
	sc.check("the rebuilt rollup counts each reading once", "SELECT sum(samples) FROM vitals_1m", nil, [][]any{{n}})
	sc.bucketChecks("after rebuilding the day")
}

// migrate is what `monitorme migrate` runs, twice: the second run must
// change nothing.
func (sc *scenario) migrate() {
	ms, err := chschema.Migrations(chschema.DefaultSettings())
	if err != nil {
		sc.t.Fatal(err)
	}
	sc.add(step{Do: "exec", SQL: warehouse.MigrationsTableSQL})
	sc.check("schema version of an empty database", warehouse.SchemaVersionSQL, nil, [][]any{{0}})
	for range 2 {
		for _, m := range ms {
			for _, st := range m.Statements {
				sc.add(step{Do: "exec", SQL: st})
			}
		}
	}
	sc.add(step{Do: "exec", SQL: warehouse.RecordVersionSQL, Params: map[string]string{"version": strconv.Itoa(ms[len(ms)-1].Version), "name": ms[len(ms)-1].Name}})
	sc.check("schema version after migrating", warehouse.SchemaVersionSQL, nil, [][]any{{chschema.Latest()}})
	sc.add(step{Do: "check", Name: "the server is new enough", SQL: warehouse.ServerVersionSQL, Expect: "min:" + fmt.Sprintf("%d.%d", chschema.MinServer[0], chschema.MinServer[1])})
	for name, days := range map[string]int{"vitals": 30, "alerts": 365, "acknowledgements": 365, "vitals_1m": 365} {
		sc.add(step{Do: "contains", Name: name + " TTL", SQL: "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {table:String}",
			Params: map[string]string{"table": name}, Expect: fmt.Sprintf("toIntervalDay(%d)", days)})
	}
	for _, tb := range sc.tables {
		cols := make([][2]string, len(tb.Columns))
		for i, c := range tb.Columns {
			cols[i] = [2]string{c.Name, c.Type}
		}
		sc.add(step{Do: "describe", Name: "the sink's columns are the table's", Table: tb.Name, Columns: cols})
	}
}

// data makes two patients' hour of readings, a few readings 40 days
// older, alert events and an acknowledgement, as records of the topics.
func (sc *scenario) data() {
	rnd := rand.New(rand.NewPCG(7, 11))
	for _, p := range []string{"P1", "P2"} {
		seq := uint64(0)
		emit := func(kind schemas.Kind, at time.Time, v float64) {
			seq++
			spec, _ := schemas.SpecFor(kind)
			sc.readings = append(sc.readings, schemas.Reading{PatientID: p, DeviceID: "mon-" + p, Kind: kind, Value: v, Unit: spec.Unit, TS: at, Seq: seq})
		}
		for i := range 2 {
			emit(schemas.HeartRate, sc.old.Add(time.Duration(i)*time.Second), 60+float64(i))
		}
		for s := 0; s < 3600; s += 10 {
			at := sc.base.Add(time.Duration(s)*time.Second + 250*time.Millisecond)
			emit(schemas.HeartRate, at, float64(60+rnd.IntN(60)))
			emit(schemas.SpO2, at.Add(time.Second), 88+float64(rnd.IntN(24))/2)
			if s%60 == 0 {
				emit(schemas.BPSystolic, at.Add(2*time.Second), float64(100+rnd.IntN(60)))
			}
		}
	}
	at := func(r *schemas.Reading) *kgo.Record {
		rec, err := schemas.ReadingRecord(fixtureTopics.Vitals, r)
		if err != nil {
			sc.t.Fatal(err)
		}
		rec.Timestamp = r.TS.Add(40 * time.Millisecond)
		return rec
	}
	for i := range sc.readings {
		sc.put("vitals", sc.readings[i].PatientID, at(&sc.readings[i]))
	}

	trigger := func(patient string, kind schemas.Kind, ts time.Time) schemas.Reading {
		for _, r := range sc.readings {
			if r.PatientID == patient && r.Kind == kind && !r.TS.Before(ts) {
				return r
			}
		}
		sc.t.Fatalf("no %s reading of %s after %v", kind, patient, ts)
		return schemas.Reading{}
	}
	score := 7
	event := func(patient, condition string, prio schemas.Priority, state schemas.State, r schemas.Reading, ts time.Time) schemas.Alert {
		return schemas.Alert{AlertID: schemas.AlertID(condition, &r), PatientID: patient, Condition: condition, Priority: prio, State: state,
			TS: ts, Limit: 90, Message: condition + " " + string(state), Reading: r}
	}
	low := trigger("P1", schemas.SpO2, sc.base.Add(10*time.Minute))
	raised := event("P1", "spo2_low", schemas.High, schemas.Raised, low, low.TS)
	acked := raised
	acked.State, acked.TS, acked.AckedBy = schemas.Acknowledged, low.TS.Add(70*time.Second), "nurse-7"
	acked.EscalationLevel, acked.Notify = 1, "nurse-in-charge" // escalated at 60 s, then acknowledged
	resolved := raised
	resolved.State, resolved.TS, resolved.AckedBy, resolved.Reading = schemas.Resolved, low.TS.Add(10*time.Minute), "nurse-7", trigger("P1", schemas.SpO2, low.TS.Add(10*time.Minute))
	news := event("P1", "news2", schemas.Medium, schemas.Raised, trigger("P1", schemas.HeartRate, sc.base.Add(30*time.Minute)), sc.base.Add(30*time.Minute+250*time.Millisecond))
	news.Score, news.Components, news.Limit = &score, map[string]int{"spo2": 3, "resp_rate": 2, "pulse": 2}, 7
	news.Updated, news.Silenced = true, true // an in-place update during a silence
	hr := event("P2", "heart_rate_high", schemas.Low, schemas.Raised, trigger("P2", schemas.HeartRate, sc.base.Add(5*time.Minute)), sc.base.Add(5*time.Minute+250*time.Millisecond))
	past := event("P1", "spo2_low", schemas.High, schemas.Raised, sc.readings[0], sc.old)
	gone := event("P1", "spo2_low", schemas.High, schemas.Raised, sc.readings[1], sc.ancient)
	for _, a := range []*schemas.Alert{&raised, &acked, &resolved, &news} {
		a.Ward, a.Bed = "icu", "3"
	}
	sc.alerts = []schemas.Alert{gone, past, raised, hr, acked, resolved, news}
	for i := range sc.alerts {
		rec, err := schemas.AlertRecord(fixtureTopics.Alerts, &sc.alerts[i])
		if err != nil {
			sc.t.Fatal(err)
		}
		rec.Timestamp = sc.alerts[i].TS.Add(5 * time.Millisecond)
		sc.put("alerts", sc.alerts[i].PatientID, rec)
	}
	sc.acks = []schemas.Ack{{AlertID: raised.AlertID, PatientID: "P1", By: "nurse-7@icu", Auth: "oidc", TS: acked.TS.Add(-time.Second)}}
	for i := range sc.acks {
		rec, err := schemas.AckRecord(fixtureTopics.Acks, &sc.acks[i])
		if err != nil {
			sc.t.Fatal(err)
		}
		rec.Timestamp = sc.acks[i].TS
		sc.put("audit", sc.acks[i].PatientID, rec)
	}
	// The other actions of the acks topic: a silence, and the rules a
	// processor loaded (key "rules": partition 1 here).
	sc.silence = schemas.Silence{PatientID: "P2", By: "station-2", Auth: "token", Seconds: 120, TS: acked.TS.Add(time.Second)}
	rec, err := schemas.SilenceRecord(fixtureTopics.Acks, &sc.silence)
	if err != nil {
		sc.t.Fatal(err)
	}
	rec.Timestamp = sc.silence.TS
	sc.put("audit", "P2", rec)
	sc.rules = schemas.RulesLoaded{By: "process", Auth: "sasl", Source: "/etc/monitorme/rules.yaml", SHA256: strings.Repeat("ab", 32), Rules: "clinical", Host: "process-0", TS: acked.TS.Add(2 * time.Second)}
	if rec, err = schemas.RulesLoadedRecord(fixtureTopics.Acks, &sc.rules); err != nil {
		sc.t.Fatal(err)
	}
	rec.Timestamp = sc.rules.TS
	sc.put("audit", schemas.RulesKey, rec)
}

// put appends rec to its patient's partition (P1: 0, P2: 1).
func (sc *scenario) put(table, patient string, rec *kgo.Record) {
	ps := sc.records[table]
	n := 0
	if patient != "P1" {
		n = 1
	}
	rec.Partition, rec.Offset = int32(n), int64(len(ps[n]))
	ps[n] = append(ps[n], rec)
	sc.records[table] = ps
}

// insertAll cuts the table's partitions into batches of size, builds
// their rows as the sink does and adds an insert per batch, with the
// sink's token. A replay (non-zero from) reads partition 0 only, from its
// first record at or after from. It returns the rows inserted.
func (sc *scenario) insertAll(table string, size int, from time.Time) int {
	tb := sc.tables[table]
	total := 0
	for n, recs := range sc.records[table] {
		start := 0
		if !from.IsZero() {
			if n != 0 {
				continue
			}
			start = slices.IndexFunc(recs, func(r *kgo.Record) bool { return !r.Timestamp.Before(from) })
		}
		for first := start; first < len(recs); first += size {
			last := min(first+size, len(recs)) - 1
			rows := tb.NewRows()
			for _, r := range recs[first : last+1] {
				if err := rows.Add(r); err != nil {
					sc.t.Fatalf("%s offset %d: %v", table, r.Offset, err)
				}
			}
			sc.files++
			file := fmt.Sprintf("%s-%03d.native", table, sc.files)
			sc.writeNative(tb, rows, file)
			token := Token(tb.Topic, int32(n), int64(first), int64(last))
			sc.add(step{Do: "insert", Table: table, File: file, SQL: "INSERT INTO " + table + " (" + tb.ColumnNames() + ")", Settings: InsertSettings(token)})
			total += rows.Len()
		}
	}
	return total
}

// nativeBlock is the block clickhouse-go's batch builds from rows:
// columns of the table's types, each appended whole as Native.Insert
// appends it (batch.Column(i).Append is this Append).
func nativeBlock(tb *Table, rows Rows) (*blockproto.Block, error) {
	block, err := emptyBlock(tb)
	if err != nil {
		return nil, err
	}
	for i, col := range rows.Columns() {
		if _, err := block.Columns[i].Append(col); err != nil {
			return nil, fmt.Errorf("%s.%s: clickhouse-go refuses the sink's %T: %w", tb.Name, tb.Columns[i].Name, col, err)
		}
	}
	return block, nil
}

// emptyBlock is the block a server's answer to an INSERT sets up: the
// table's columns, no rows.
func emptyBlock(tb *Table) (*blockproto.Block, error) {
	block := blockproto.NewBlock()
	block.ServerContext.Timezone = time.UTC
	for _, c := range tb.Columns {
		if err := block.AddColumn(c.Name, column.Type(c.Type)); err != nil {
			return nil, fmt.Errorf("%s.%s %s: %w", tb.Name, c.Name, c.Type, err)
		}
	}
	return block, nil
}

// writeNative writes rows as clickhouse-go encodes them, without the
// native protocol's block header: the Native format.
func (sc *scenario) writeNative(tb *Table, rows Rows, file string) {
	block, err := nativeBlock(tb, rows)
	if err != nil {
		sc.t.Fatal(err)
	}
	var buf chproto.Buffer
	if err := block.Encode(&buf, 0); err != nil {
		sc.t.Fatal(err)
	}
	if block.Rows() != rows.Len() {
		sc.t.Fatalf("%s: block of %d rows from %d", tb.Name, block.Rows(), rows.Len())
	}
	if err := os.WriteFile(filepath.Join(sc.dir, file), buf.Buf, 0o644); err != nil {
		sc.t.Fatal(err)
	}
}

func (sc *scenario) countReadings(keep func(*schemas.Reading) bool) int {
	n := 0
	for i := range sc.readings {
		if keep(&sc.readings[i]) {
			n++
		}
	}
	return n
}

func (sc *scenario) liveChecks(stage string) {
	n := len(sc.readings)
	sc.check(stage+": one row per reading", "SELECT count() FROM vitals", nil, [][]any{{n}})
	sc.check(stage+": the rollup counts each reading once", "SELECT sum(samples) FROM vitals_1m", nil, [][]any{{n}})
	sc.check(stage+": one row per alert event", "SELECT count() FROM alerts", nil, [][]any{{len(sc.alerts)}})
	sc.check(stage+": one row per acknowledgement (through the audit trail)", "SELECT patient_id, alert_id, acked_by FROM acknowledgements", nil,
		[][]any{{sc.acks[0].PatientID, sc.acks[0].AlertID, sc.acks[0].By}})
	sc.check(stage+": the audit trail has every action once, with who and how", "SELECT action, subject, auth, patient_id, alert_id, seconds, JSONExtractString(detail, 'sha256') FROM audit ORDER BY ts", nil,
		[][]any{
			{"acknowledge", sc.acks[0].By, "oidc", "P1", sc.acks[0].AlertID, 0, ""},
			{"silence", "station-2", "token", "P2", "", 120, ""},
			{"rules-loaded", "process", "sasl", "", "", 0, sc.rules.SHA256},
		})
	sc.rawChecks(stage)
	sc.bucketChecks(stage)
	sc.alertChecks(stage)
}

// docExamples runs the analysts' guide's sql blocks; its rebuild block
// must be the statement the rebuild check below runs.
func (sc *scenario) docExamples(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		sc.t.Fatal(err)
	}
	blocks := map[string][]string{}
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimSpace(lines[i])
		if fence != "```sql" && fence != "```sql-rebuild" {
			continue
		}
		indent := lines[i][:strings.Index(lines[i], "```")]
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		blocks[fence] = append(blocks[fence], strings.Join(body, "\n"))
	}
	if len(blocks["```sql"]) < 5 {
		sc.t.Fatalf("%s: %d sql examples, want at least 5", path, len(blocks["```sql"]))
	}
	if r := blocks["```sql-rebuild"]; len(r) != 1 || r[0] != chschema.RebuildRollupDaySQL {
		sc.t.Fatalf("%s: the rollup rebuild is not chschema.RebuildRollupDaySQL, which make test-sql runs:\n%q", path, r)
	}
	for i, sql := range blocks["```sql"] {
		sc.add(step{Do: "runs", Name: fmt.Sprintf("docs/analysts.md example %d", i+1), SQL: sql, Params: map[string]string{"patient": "P1"}})
	}
}

// rawChecks are the API's raw-vitals queries.
func (sc *scenario) rawChecks(stage string) {
	hour := sc.base.Add(time.Hour)
	for _, q := range []struct {
		name string
		q    chschema.VitalsQuery
	}{
		{"P1 heart rate, the whole hour", chschema.VitalsQuery{Patient: "P1", Kind: "heart_rate", From: sc.base, To: hour, Limit: 10_001}},
		{"P2 every vital, one minute, bounds to the millisecond", chschema.VitalsQuery{Patient: "P2", From: sc.base.Add(5*time.Minute + 250*time.Millisecond), To: sc.base.Add(6*time.Minute + 250*time.Millisecond), Limit: 1000}},
		{"P1 every vital, limited to 5 rows", chschema.VitalsQuery{Patient: "P1", From: sc.base, To: hour, Limit: 5}},
		{"a patient id that tries SQL injection matches nothing", chschema.VitalsQuery{Patient: "P1' OR '1'='1", From: sc.base, To: hour, Limit: 100}},
	} {
		sql, params := q.q.SQL()
		var rows [][]any
		for _, r := range sc.sorted(q.q) {
			rows = append(rows, []any{string(r.Kind), chschema.DateTime64(r.TS), r.Value, r.Unit, r.DeviceID, r.Seq})
		}
		sc.check(stage+": raw vitals: "+q.name, sql, params, rows)
	}
}

// sorted are the readings q selects, in the query's order and limit.
func (sc *scenario) sorted(q chschema.VitalsQuery) []schemas.Reading {
	var out []schemas.Reading
	for _, r := range sc.readings {
		if r.PatientID == q.Patient && (q.Kind == "" || string(r.Kind) == q.Kind) && !r.TS.Before(q.From) && r.TS.Before(q.To) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b schemas.Reading) int {
		return cmp.Or(strings.Compare(string(a.Kind), string(b.Kind)), a.TS.Compare(b.TS), strings.Compare(a.DeviceID, b.DeviceID), cmp.Compare(a.Seq, b.Seq))
	})
	return out[:min(len(out), q.Limit)]
}

// bucketChecks are the API's per-step queries on the rollup.
func (sc *scenario) bucketChecks(stage string) {
	for _, q := range []struct {
		name string
		q    chschema.VitalsQuery
	}{
		{"P1 every vital per 5 minutes", chschema.VitalsQuery{Patient: "P1", From: sc.base, To: sc.base.Add(time.Hour), Step: 5 * time.Minute, Limit: 1000}},
		{"P2 SpO2 per 15 minutes from an unaligned start", chschema.VitalsQuery{Patient: "P2", Kind: "spo2", From: sc.base.Add(-7 * time.Minute), To: sc.base.Add(50 * time.Minute), Step: 15 * time.Minute, Limit: 1000}},
		{"P1 heart rate per day, over the old readings too", chschema.VitalsQuery{Patient: "P1", Kind: "heart_rate", From: sc.old.Add(-time.Hour), To: sc.base.Add(time.Hour), Step: 24 * time.Hour, Limit: 1000}},
	} {
		sql, params := q.q.SQL()
		sc.check(stage+": buckets: "+q.name, sql, params, sc.buckets(q.q))
	}
}

// buckets computes what VitalBucketsSQL returns: whole minutes of the
// range's readings (the rollup's grain), grouped into steps since the
// epoch.
func (sc *scenario) buckets(q chschema.VitalsQuery) [][]any {
	type key struct {
		kind   string
		bucket int64
	}
	type agg struct {
		min, max, sum float64
		n             int
	}
	first := q.From.Truncate(q.Step)
	aggs := map[key]*agg{}
	var keys []key
	for _, r := range sc.readings {
		minute := r.TS.Truncate(time.Minute)
		if r.PatientID != q.Patient || (q.Kind != "" && string(r.Kind) != q.Kind) || minute.Before(first) || !minute.Before(q.To) {
			continue
		}
		k := key{string(r.Kind), r.TS.Truncate(q.Step).Unix()}
		a := aggs[k]
		if a == nil {
			a = &agg{min: math.Inf(1), max: math.Inf(-1)}
			aggs[k] = a
			keys = append(keys, k)
		}
		a.min, a.max, a.sum, a.n = min(a.min, r.Value), max(a.max, r.Value), a.sum+r.Value, a.n+1
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(strings.Compare(a.kind, b.kind), cmp.Compare(a.bucket, b.bucket)) })
	var rows [][]any
	for _, k := range keys {
		a := aggs[k]
		rows = append(rows, []any{k.kind, time.Unix(k.bucket, 0).UTC().Format(time.DateTime), a.min, a.sum / float64(a.n), a.max, a.n})
	}
	return rows
}

// alertChecks is the API's alerts query.
func (sc *scenario) alertChecks(stage string) {
	q := chschema.AlertsQuery{Patient: "P1", From: sc.day, To: sc.day.Add(24 * time.Hour), Limit: 100}
	var want []schemas.Alert
	for _, a := range sc.alerts {
		if a.PatientID == q.Patient && !a.TS.Before(q.From) && a.TS.Before(q.To) {
			want = append(want, a)
		}
	}
	slices.SortFunc(want, func(a, b schemas.Alert) int {
		return cmp.Or(a.TS.Compare(b.TS), strings.Compare(a.AlertID, b.AlertID), strings.Compare(string(a.State), string(b.State)))
	})
	var rows [][]any
	for _, a := range want {
		var score any
		if a.Score != nil {
			score = *a.Score
		}
		comps := map[string]int{}
		for k, v := range a.Components {
			comps[k] = v
		}
		r := a.Reading
		rows = append(rows, []any{a.AlertID, a.PatientID, a.Condition, string(a.Priority), string(a.State), chschema.DateTime64(a.TS), a.Limit, a.Message,
			score, comps, a.AckedBy, a.Ward, string(r.Kind), r.Value, r.Unit, chschema.DateTime64(r.TS), r.DeviceID, r.Seq,
			a.Updated, a.EscalationLevel, a.Notify, a.Silenced, a.Bed})
	}
	if len(rows) != 4 {
		sc.t.Fatalf("the scenario has %d alert events of P1 in the day, want 4", len(rows))
	}
	sql, params := q.SQL()
	sc.check(stage+": P1's alert events of the day", sql, params, rows)
}
