package roles

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/api"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/internal/warehouse"
	"github.com/monitorme/monitorme/schemas"
	chschema "github.com/monitorme/monitorme/schemas/clickhouse"
)

var brokerLine = regexp.MustCompile(`broker\s+(127\.0\.0\.1:\d+) \(embedded`)

// TestDevHistoryOnChDB runs `monitorme dev` with history against the
// ClickHouse engine: make test-sql serves chDB over ClickHouse's HTTP
// interface (schemas/clickhouse/sqltest/chdb_http.py) and names it in
// MONITORME_TEST_CHDB_HTTP. dev migrates through clickhouse-go, the sink
// inserts the simulated ward's readings and alerts with clickhouse-go's
// batch API, and the history endpoints answer from it. After a clean stop
// and a restart, ClickHouse holds every reading of the topic exactly once.
func TestDevHistoryOnChDB(t *testing.T) {
	addr := os.Getenv("MONITORME_TEST_CHDB_HTTP")
	if addr == "" {
		t.Skip("needs chDB over HTTP: make test-sql runs this")
	}
	dir := t.TempDir()
	// A database of its own: the chDB behind addr outlives a test run.
	db := fmt.Sprintf("devtest_%d", time.Now().UnixNano())
	ch := []string{"--clickhouse-addr", addr, "--clickhouse-protocol", "http", "--clickhouse-database", db}
	base, stop, out := startDevOut(t, append([]string{"--data-dir", dir, "--speed", "5", "--sink-flush-interval", "200ms"}, ch...)...)
	if !strings.Contains(out.String(), "history      "+base+"/v1/patients/{id}/vitals") {
		t.Fatalf("dev does not say where history is:\n%s", out.String())
	}
	from := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	var raw api.VitalsHistory
	testkit.Eventually(t, 30*time.Second, "P001's heart rate in history", func() bool {
		return getJSON(t, base+"/v1/patients/P001/vitals?kind=heart_rate&from="+from, &raw) == 200 && len(raw.Series) == 1 && len(raw.Series[0].Points) >= 5
	})
	if s := raw.Series[0]; s.Kind != "heart_rate" || s.Unit != "/min" || s.Points[0].DeviceID == "" || s.Points[0].TS.Before(time.Now().Add(-time.Hour)) {
		t.Fatalf("raw series %+v", s.Points[:1])
	}
	var steps api.VitalsHistory
	if code := getJSON(t, base+"/v1/patients/P001/vitals?step=1m&from="+from, &steps); code != 200 || len(steps.Series) < 5 || steps.Series[0].Buckets[0].Samples == 0 {
		t.Fatalf("per-minute history: %d %+v", code, steps)
	}
	var alerts api.AlertsHistory
	testkit.Eventually(t, 40*time.Second, "an alert of P001 in history", func() bool {
		return getJSON(t, base+"/v1/patients/P001/alerts?from="+from, &alerts) == 200 && len(alerts.Alerts) > 0
	})
	if a := alerts.Alerts[0]; a.PatientID != "P001" || a.AlertID == "" || a.Reading.Kind == "" {
		t.Fatalf("alert from history %+v", a)
	}
	// The audit trail: an acknowledgement under the token's subject.
	var open struct{ Alerts []schemas.Alert }
	testkit.Eventually(t, 20*time.Second, "a raised alert to acknowledge", func() bool {
		if getJSON(t, base+"/v1/alerts?limit=1000", &open) != 200 {
			return false
		}
		open.Alerts = slices.DeleteFunc(open.Alerts, func(a schemas.Alert) bool { return a.State != schemas.Raised })
		return len(open.Alerts) > 0
	})
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/alerts/"+open.Alerts[len(open.Alerts)-1].AlertID+"/ack", nil)
	if resp, err := authed(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("acknowledge: %v %v", resp, err)
	}
	if code := stop(); code != 0 {
		t.Fatalf("dev exited %d", code)
	}

	// A restart resumes from the sink's committed offsets: nothing is
	// written twice, nothing is missing.
	_, _, out = startDevOut(t, append([]string{"--data-dir", dir, "--no-simulator", "--sink-flush-interval", "200ms"}, ch...)...)
	m := brokerLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no broker address in:\n%s", out.String())
	}
	readings := len(testkit.ReadAllFrom(t, []string{m[1]}, "vitals.v1", kgo.ReadCommitted()))
	wc := warehouse.DefaultConfig()
	wc.Addr, wc.Protocol, wc.Database = []string{addr}, "http", db
	count := counter(t, wc)
	var rows, distinct uint64
	testkit.Eventually(t, 20*time.Second, fmt.Sprintf("%d readings in ClickHouse", readings), func() bool {
		rows, distinct = count("SELECT count() AS n FROM vitals"), count("SELECT count() AS n FROM vitals FINAL")
		return rows >= uint64(readings)
	})
	if rows != uint64(readings) || distinct != rows {
		t.Fatalf("topic %d readings; ClickHouse %d rows, %d distinct", readings, rows, distinct)
	}
	if samples := count("SELECT sum(samples) AS n FROM vitals_1m"); samples != rows {
		t.Fatalf("rollup counts %d samples of %d readings", samples, rows)
	}
	// Who acknowledged, and which rules each start loaded, are in the
	// audit table, and the acknowledgement in acknowledgements too.
	testkit.Eventually(t, 20*time.Second, "the audit trail in ClickHouse", func() bool {
		return count("SELECT count() AS n FROM audit WHERE action = 'acknowledge' AND subject = 'dev-admin' AND auth = 'token'") == 1 &&
			count("SELECT count() AS n FROM audit WHERE action = 'rules-loaded' AND subject = 'process' AND JSONExtractString(detail, 'source') = 'built-in'") == 2 &&
			count("SELECT count() AS n FROM acknowledgements WHERE acked_by = 'dev-admin'") == 1
	})
	t.Logf("%d readings, %d rows in ClickHouse, %d alert events, %d audit rows", readings, rows, count("SELECT count() AS n FROM alerts"), count("SELECT count() AS n FROM audit"))
}

// replay --to-clickhouse rebuilds a range of history effectively once:
// run over half the range, then over the whole of it (batches cut
// elsewhere, so ClickHouse takes the overlap again), ClickHouse holds each
// reading once under FINAL and the rollup counts each once.
func TestRebuildHistoryOnChDB(t *testing.T) {
	addr := os.Getenv("MONITORME_TEST_CHDB_HTTP")
	if addr == "" {
		t.Skip("needs chDB over HTTP: make test-sql runs this")
	}
	c, kc := testkit.CreateCluster(t, 4)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	recs := testkit.WardInput("H", start, 4)
	for _, r := range recs {
		r.Topic = kc.Topics.Vitals
	}
	if err := testkit.Client(t, c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil))).ProduceSync(testkit.Context(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	db := fmt.Sprintf("rebuild_%d", time.Now().UnixNano())
	wc := warehouse.DefaultConfig()
	wc.Addr, wc.Protocol, wc.Database = []string{addr}, "http", db
	if _, _, err := warehouse.Migrate(context.Background(), wc, chschema.DefaultSettings(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	rebuild := func(from, to time.Time) string {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), []string{"replay", "--to-clickhouse", "--brokers", strings.Join(c.ListenAddrs(), ","),
			"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339),
			"--clickhouse-addr", addr, "--clickhouse-protocol", "http", "--clickhouse-database", db}, &out, &errOut)
		if code != 0 {
			t.Fatalf("replay --to-clickhouse: exit %d: %s %s", code, out.String(), errOut.String())
		}
		return out.String()
	}
	inserted := func(out string) int {
		m := regexp.MustCompile(`(?m)^vitals\s+(\d+) rows`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no vitals line in:\n%s", out)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	first := inserted(rebuild(start, start.Add(10*time.Minute)))
	out := rebuild(start.Add(-time.Minute), start.Add(time.Hour))
	t.Log(out)
	second := inserted(out)
	count := counter(t, wc)
	final, samples := count("SELECT count() AS n FROM vitals FINAL"), count("SELECT toUInt64(sum(samples)) AS n FROM vitals_1m")
	t.Logf("%d readings on the topic; inserted %d then %d; ClickHouse: %d under FINAL, rollup %d samples", len(recs), first, second, final, samples)
	// The same range read back with tail from the history tables.
	var tout, terr bytes.Buffer
	if code := Run(context.Background(), []string{"tail", "vitals", "--source", "clickhouse", "--patient", "H01", "--format", "jsonl",
		"-o", "@" + start.Format(time.RFC3339) + ":" + start.Add(5*time.Minute).Format(time.RFC3339),
		"--clickhouse-addr", addr, "--clickhouse-protocol", "http", "--clickhouse-database", db}, &tout, &terr); code != 0 {
		t.Fatalf("tail --source clickhouse: exit %d %s", code, terr.String())
	}
	want := 0
	for _, r := range recs {
		if string(r.Key) == "H01" && !r.Timestamp.Before(start) && r.Timestamp.Before(start.Add(5*time.Minute)) {
			want++
		}
	}
	if got := strings.Count(tout.String(), `"type":"reading"`); got != want || want == 0 {
		t.Errorf("tail --source clickhouse: %d readings of H01 in 5 min, the topic has %d", got, want)
	}
	if first == 0 || second != len(recs) || final != uint64(len(recs)) || samples != uint64(len(recs)) {
		t.Fatalf("rebuilt twice over an overlap (%d then %d rows inserted): %d under FINAL, rollup %d samples; want %d in both",
			first, second, final, samples, len(recs))
	}
}

// counter returns a function that runs a "SELECT … AS n" on wc's
// ClickHouse and returns n.
func counter(t *testing.T, wc warehouse.Config) func(sql string) uint64 {
	conn, err := warehouse.Open(context.Background(), wc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return func(sql string) uint64 {
		var n []struct {
			N uint64 `ch:"n"`
		}
		if err := conn.Select(context.Background(), &n, sql); err != nil {
			t.Fatal(err)
		}
		return n[0].N
	}
}
