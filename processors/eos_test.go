package processors

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

// The crash test runs a processor in a child process (this test binary,
// re-executed) so that it can be SIGKILLed like a real one.
const helperEnv = "MONITORME_TEST_PROCESSOR_BROKERS"

func TestMain(m *testing.M) {
	if brokers := os.Getenv(helperEnv); brokers != "" {
		runHelper(brokers)
		return
	}
	os.Exit(m.Run())
}

// runHelper processes until its first transaction has produced its
// records, says so on stdout, and then hangs there until killed.
func runHelper(brokers string) {
	p := newTestProcessor(strings.Split(brokers, ","))
	if os.Getenv("MONITORME_TEST_HANDLER") == "clinical" {
		p = newClinicalProcessor(strings.Split(brokers, ","))
	}
	p.beforeEnd = func(int64) error {
		fmt.Println("TXN-OPEN")
		select {}
	}
	if err := p.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// startChildInTransaction starts this test binary as a processor child
// process (env adds settings such as the handler) and returns once the
// child has a transaction open with its records on the broker; the child
// then hangs until killed.
func startChildInTransaction(t *testing.T, seeds []string, env ...string) *exec.Cmd {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(append(os.Environ(), helperEnv+"="+strings.Join(seeds, ",")), env...)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	open := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "TXN-OPEN" {
				close(open)
			}
		}
	}()
	select {
	case <-open:
	case <-time.After(60 * time.Second):
		t.Fatal("child processor never opened a transaction")
	}
	return child
}

func testKafkaConfig(brokers []string) kafka.Config {
	kc := kafka.DefaultConfig()
	kc.Brokers = brokers
	return kc
}

func newTestProcessor(brokers []string) *Processor {
	kc := testKafkaConfig(brokers)
	cfg := DefaultConfig()
	cfg.TransactionTimeout = 3 * time.Second
	cfg.SessionTimeout = 1500 * time.Millisecond
	cfg.FetchMaxWait = 200 * time.Millisecond
	cfg.MaxPollRecords = 500
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cfg.Rules = "threshold"
	p, err := New(cfg, kc, log, telemetry.Nop())
	if err != nil {
		panic(err)
	}
	return p
}

func testCluster(t *testing.T) (*kfake.Cluster, kafka.Config) {
	return testkit.CreateCluster(t, 4)
}

// produceInput writes n readings for 20 patients; every fifth is a heart
// rate of 130 (one alert each), and poison records that no processor can
// read are mixed in. It returns the expected alert ids and poison count.
func produceInput(t *testing.T, c *kfake.Cluster, topic string, n int) (want map[string]bool, poison int) {
	t.Helper()
	cl := testkit.Client(t, c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	want = map[string]bool{}
	ts := time.Now().UTC().Add(-time.Hour)
	var recs []*kgo.Record
	for i := range n {
		r := schemas.Reading{PatientID: fmt.Sprintf("P%02d", i%20), DeviceID: fmt.Sprintf("D%02d", i%20), Kind: schemas.HeartRate,
			Value: 80, Unit: "/min", TS: ts.Add(time.Duration(i) * time.Millisecond), Seq: uint64(i)}
		if i%5 == 0 {
			r.Value = 130
			want[schemas.AlertID("heart_rate_high", &r)] = true
		}
		rec, err := schemas.ReadingRecord(topic, &r)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
		if i%400 == 7 {
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("P07"), Value: []byte(`{"patient_id":`)})
			poison++
		}
	}
	if err := cl.ProduceSync(testkit.Context(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return want, poison
}

// waitCaughtUp waits until the group has committed offsets up to the end
// of the vitals topic.
func waitCaughtUp(t *testing.T, c *kfake.Cluster, kc kafka.Config, timeout time.Duration) {
	t.Helper()
	adm := kadm.NewClient(testkit.Client(t, c))
	ctx := testkit.Context(t)
	testkit.Eventually(t, timeout, "processor group caught up with the vitals topic", func() bool {
		lag, err := kafka.GroupLag(ctx, adm, "alerting", kc.Topics.Vitals)
		return err == nil && lag == 0
	})
}

func alertIDs(t *testing.T, recs []*kgo.Record) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, r := range recs {
		a, err := schemas.DecodeAlert(r)
		if err != nil {
			t.Fatalf("alert at %d/%d: %v", r.Partition, r.Offset, err)
		}
		if string(r.Key) != a.PatientID {
			t.Fatalf("alert %s keyed %q, patient %q", a.AlertID, r.Key, a.PatientID)
		}
		got[a.AlertID]++
	}
	return got
}

func checkExactlyOnce(t *testing.T, want map[string]bool, got map[string]int) {
	t.Helper()
	var missing, dups, extra int
	for id := range want {
		switch got[id] {
		case 0:
			missing++
		case 1:
		default:
			dups++
		}
	}
	for id := range got {
		if !want[id] {
			extra++
		}
	}
	if missing+dups+extra > 0 {
		t.Fatalf("want %d alerts exactly once; missing %d, duplicated %d, unexpected %d", len(want), missing, dups, extra)
	}
}

func runProcessor(t *testing.T, p *Processor) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { stopAndWait(t, cancel, done) }) }
	t.Cleanup(stop)
	return stop
}

func stopAndWait(t *testing.T, cancel func(), done chan error) {
	{
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("processor Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("processor did not stop within 30s")
		}
	}
}

func TestProcessorExactlyOnceWhenAMemberIsKilledMidTransaction(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	c, kc := testCluster(t)
	want, poison := produceInput(t, c, kc.Topics.Vitals, 4000)

	// Member B: a real process that opens a transaction, produces its
	// alerts and is SIGKILLed before ending it.
	child := startChildInTransaction(t, c.ListenAddrs())

	// Member A joins while B's transaction is open; then B dies.
	stopA := runProcessor(t, newTestProcessor(c.ListenAddrs()))
	if _, err := c.WaitGroupStable(testkit.Context(t), "alerting", 2); err != nil {
		t.Fatalf("group never had two members: %v", err)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	waitCaughtUp(t, c, kc, 60*time.Second)
	stopA()

	committed := testkit.ReadAll(t, c, kc.Topics.Alerts, kgo.ReadCommitted())
	checkExactlyOnce(t, want, alertIDs(t, committed))

	// The killed member's alerts are in the log, aborted: proof that it
	// died after producing and before committing.
	all := testkit.ReadAll(t, c, kc.Topics.Alerts, kgo.ReadUncommitted())
	if len(all) <= len(committed) {
		t.Fatalf("read_uncommitted sees %d alerts, read_committed %d: the child died before producing anything", len(all), len(committed))
	}
	if dlq := testkit.ReadAll(t, c, kc.Topics.VitalsDLQ, kgo.ReadCommitted()); len(dlq) != poison {
		t.Fatalf("dead letters: got %d, want %d", len(dlq), poison)
	}
	t.Logf("alerts: %d committed exactly once, %d aborted copies from the killed member; %d dead letters", len(committed), len(all)-len(committed), poison)
}

func TestProcessorDeadLettersPoisonWithReason(t *testing.T) {
	c, kc := testCluster(t)
	want, poison := produceInput(t, c, kc.Topics.Vitals, 500)
	cl := testkit.Client(t, c)
	// A valid reading keyed by the wrong patient would be processed by
	// the wrong owner; it is poison too.
	r := schemas.Reading{PatientID: "P01", DeviceID: "D1", Kind: schemas.HeartRate, Value: 150, Unit: "/min", TS: time.Now().UTC(), Seq: 1}
	rec, _ := schemas.ReadingRecord(kc.Topics.Vitals, &r)
	rec.Key = []byte("P02")
	if err := cl.ProduceSync(testkit.Context(t), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	stop := runProcessor(t, newTestProcessor(c.ListenAddrs()))
	waitCaughtUp(t, c, kc, 30*time.Second)
	stop()
	checkExactlyOnce(t, want, alertIDs(t, testkit.ReadAll(t, c, kc.Topics.Alerts, kgo.ReadCommitted())))
	dlq := testkit.ReadAll(t, c, kc.Topics.VitalsDLQ, kgo.ReadCommitted())
	if len(dlq) != poison+1 {
		t.Fatalf("dead letters: got %d, want %d", len(dlq), poison+1)
	}
	var sawKey bool
	for _, d := range dlq {
		reason, src := schemas.Header(d, schemas.HeaderError), schemas.Header(d, schemas.HeaderSource)
		if reason == "" || !strings.HasPrefix(src, kc.Topics.Vitals+"/") {
			t.Fatalf("dead letter without reason or source: %q %q", reason, src)
		}
		if strings.Contains(reason, "is not the reading's patient_id") {
			sawKey = true
			var back schemas.Reading
			if err := json.Unmarshal(d.Value, &back); err != nil || back != r {
				t.Fatalf("dead letter value changed: %s", d.Value)
			}
		}
	}
	if !sawKey {
		t.Fatal("the mis-keyed reading was not dead-lettered")
	}
}

// The alert continues the trace of the reading that raised it, so ingest,
// processing and alert are one trace.
func TestAlertContinuesTheReadingsTrace(t *testing.T) {
	c, kc := testCluster(t)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := schemas.Reading{PatientID: "P01", DeviceID: "D1", Kind: schemas.SpO2, Value: 85, Unit: "%", TS: time.Now().UTC(), Seq: 1}
	rec, _ := schemas.ReadingRecord(kc.Topics.Vitals, &r)
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "traceparent", Value: []byte("00-" + traceID + "-00f067aa0ba902b7-01")})
	if err := testkit.Client(t, c).ProduceSync(testkit.Context(t), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	stop := runProcessor(t, newTestProcessor(c.ListenAddrs()))
	waitCaughtUp(t, c, kc, 30*time.Second)
	stop()
	alerts := testkit.ReadAll(t, c, kc.Topics.Alerts, kgo.ReadCommitted())
	if len(alerts) != 1 {
		t.Fatalf("%d alerts", len(alerts))
	}
	if tp := schemas.Header(alerts[0], "traceparent"); !strings.Contains(tp, traceID) {
		t.Fatalf("alert traceparent %q does not continue trace %s", tp, traceID)
	}
}
