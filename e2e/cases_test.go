package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

// loadResult is what the devices were told.
type loadResult struct {
	mu       sync.Mutex
	acked    map[uint64]bool
	statuses map[int]int
}

func newLoadResult() *loadResult {
	return &loadResult{acked: map[uint64]bool{}, statuses: map[int]int{}}
}

// ackedCount is how many readings were acknowledged so far.
func (l *loadResult) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *loadResult) add(rs []schemas.Reading, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses[status]++
	if status == http.StatusAccepted {
		for _, r := range rs {
			l.acked[r.Seq] = true
		}
	}
}

// verifyAcked checks that every acknowledged reading is in the topic
// exactly once, and returns (found, duplicates).
func verifyAcked(t *testing.T, topic string, l *loadResult) (found, dups int) {
	t.Helper()
	got := countReadings(t, brokers, topic)
	missing := 0
	for seq := range l.acked {
		switch n := got[seq]; {
		case n == 0:
			missing++
		default:
			found++
			dups += n - 1
		}
	}
	for seq, n := range got {
		if !l.acked[seq] && n > 1 {
			dups += n - 1
		}
	}
	if missing > 0 || dups > 0 {
		t.Errorf("%s: %d acknowledged readings missing, %d duplicated (of %d acknowledged)", topic, missing, dups, len(l.acked))
		logDuplicates(t, brokers, topic, readingIdent)
	}
	return found, dups
}

// a. Durability: 200k readings through POST /v1/vitals while one broker is
// SIGKILLed mid-stream and later restarted.
func TestDurabilityWhileABrokerIsKilled(t *testing.T) {
	need(t)
	plaintextOnly(t)
	start := time.Now()
	topics, flags := topicFlags("e2e-a")
	addr := freeAddr(t)
	ing := startRole(t, "ingest", append(append([]string{"ingest", "--brokers", strings.Join(brokers, ","), "--http-addr", addr}, authFlags()...), flags...)...)
	waitReady(t, addr, 60*time.Second)

	const total, batch, workers = 200_000, 500, 4
	all := readings("a", 1, total)
	res := newLoadResult()
	var next, sent atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 60 * time.Second}
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(batch)) - batch
				if i >= total {
					return
				}
				b := all[i:min(i+batch, total)]
				status, err := post(client, addr, b)
				if err != nil {
					status = -1
				}
				// Devices here do not retry: a refused batch is counted as
				// not acknowledged, so an acknowledged reading can only
				// appear twice if the platform duplicated it.
				res.add(b, status)
				sent.Add(int64(len(b)))
			}
		})
	}
	testkit.Eventually(t, 5*time.Minute, "a quarter of the load sent", func() bool { return sent.Load() >= total/4 })
	killBroker(t, 2)
	kills := 1
	// The outage lasts until another quarter of the load went through
	// without broker 2: leaders moved, the ISR shrank, ingest went on.
	testkit.Eventually(t, 5*time.Minute, "a quarter of the load sent with broker 2 down", func() bool { return sent.Load() >= total/2 })
	startBroker(t, 2)
	wg.Wait()
	if code := ing.stop(t); code != 0 {
		t.Errorf("ingest exited %d on SIGTERM", code)
	}
	waitISR(t, topics.Vitals)
	found, dups := verifyAcked(t, topics.Vitals, res)
	t.Logf("statuses %v", res.statuses)
	if len(res.acked) < total/2 {
		t.Errorf("only %d of %d readings acknowledged: the outage of one broker of three should not stop ingest", len(res.acked), total)
	}
	record(row{name: "a. durability, 1 of 3 brokers SIGKILLed and restarted", sent: total, acked: len(res.acked), found: found, dups: dups,
		kills: fmt.Sprintf("%d broker", kills), elapsed: time.Since(start), result: result(t)})
}

// b. With two of three brokers down, ingest answers 503, not 202, and
// nothing acknowledged is lost when they return.
func TestTwoBrokersDownAnswers503(t *testing.T) {
	need(t)
	plaintextOnly(t)
	start := time.Now()
	topics, flags := topicFlags("e2e-b")
	addr := freeAddr(t)
	ing := startRole(t, "ingest", append(append([]string{"ingest", "--brokers", strings.Join(brokers, ","), "--http-addr", addr,
		"--producer-delivery-timeout", "5s", "--ingest-ack-timeout", "10s"}, authFlags()...), flags...)...)
	waitReady(t, addr, 60*time.Second)
	client := &http.Client{Timeout: 60 * time.Second}
	res := newLoadResult()
	seq := uint64(1)
	send := func() int {
		b := readings("b", seq, 1000)
		seq += 1000
		status, err := post(client, addr, b)
		if err != nil {
			status = -1
		}
		res.add(b, status)
		return status
	}
	for range 5 {
		if s := send(); s != http.StatusAccepted {
			t.Fatalf("healthy cluster answered %d", s)
		}
	}
	killBroker(t, 2)
	killBroker(t, 3)
	refused := 0
	for range 3 {
		s := send()
		if s == http.StatusAccepted {
			t.Errorf("ingest answered 202 with two of three brokers down")
		}
		if s == http.StatusServiceUnavailable {
			refused++
		}
	}
	if refused == 0 {
		t.Errorf("no 503 with two brokers down: %v", res.statuses)
	}
	startBroker(t, 2)
	startBroker(t, 3)
	testkit.Eventually(t, 3*time.Minute, "ingest accepts again after the brokers return", func() bool { return send() == http.StatusAccepted })
	for range 5 {
		if s := send(); s != http.StatusAccepted {
			t.Errorf("recovered cluster answered %d", s)
		}
	}
	if code := ing.stop(t); code != 0 {
		t.Errorf("ingest exited %d on SIGTERM", code)
	}
	waitISR(t, topics.Vitals)
	found, dups := verifyAcked(t, topics.Vitals, res)
	t.Logf("statuses %v", res.statuses)
	record(row{name: "b. 2 of 3 brokers down: 503, then recovery", sent: int(seq - 1), acked: len(res.acked), found: found, dups: dups,
		kills: "2 brokers", elapsed: time.Since(start), result: result(t) + fmt.Sprintf(" (%d×503 while down)", refused)})
}

// c. Exactly-once alerts while monitorme process members are SIGKILLed at
// random, and once a broker.
func TestExactlyOnceUnderProcessorAndBrokerKills(t *testing.T) {
	need(t)
	start := time.Now()
	topics, flags := topicFlags("e2e-c")
	// On the secured cluster each processor runs as User:process with
	// only the grants `monitorme acls --role process` lists.
	provisionAs(t, "process", topics, flags, "--group", "e2e-c")
	procArgs := func() []string {
		return append(append([]string{"process", "--brokers", strings.Join(brokers, ","), "--http-addr", freeAddr(t),
			"--group", "e2e-c", "--session-timeout", "6s", "--transaction-timeout", "5s"}, append(flags, thresholdRules...)...), kafkaFlags("process")...)
	}
	procs := make([]*proc, 3)
	for i := range procs {
		procs[i] = startRole(t, "process", procArgs()...)
	}
	// Input straight to the topic at a steady pace, so that processing,
	// kills and production overlap.
	kc := kafka.DefaultConfig()
	kc.Brokers = brokers
	kc.Topics = topics
	adm := kadm.NewClient(testkit.SeedClient(t, brokers, with()...))
	testkit.Eventually(t, 60*time.Second, "processors created the topics", func() bool {
		return kafka.ReadyCheck(adm, topics.Vitals, topics.Alerts)(context.Background()) == nil
	})
	prod := testkit.SeedClient(t, brokers, with(kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.RequiredAcks(kgo.AllISRAcks()))...)
	const total, perSecond = 200_000, 2500
	all := readings("c", 1, total)
	want := expectedAlerts(all)
	produced := make(chan error, 1)
	go func() {
		ctx := context.Background()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < total; i += perSecond / 10 {
			<-tick.C
			var recs []*kgo.Record
			for j := i; j < min(i+perSecond/10, total); j++ {
				rec, err := schemas.ReadingRecord(topics.Vitals, &all[j])
				if err != nil {
					produced <- err
					return
				}
				recs = append(recs, rec)
			}
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				produced <- err
				return
			}
		}
		produced <- nil
	}()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	processKills, brokerKilled := 0, false
	var brokerBack time.Time
	done := false
	for !done || processKills < 10 {
		select {
		case err := <-produced:
			if err != nil {
				t.Fatalf("producing input: %v", err)
			}
			done = true
		case <-time.After(time.Duration(2000+rng.IntN(3000)) * time.Millisecond):
		}
		i := rng.IntN(len(procs))
		procs[i].kill()
		processKills++
		t.Logf("SIGKILLed processor %d (kill %d)", i, processKills)
		procs[i] = startRole(t, "process", procArgs()...)
		switch {
		case processKills == 5 && !brokerKilled:
			killBroker(t, 3)
			brokerKilled = true
			brokerBack = time.Now().Add(15 * time.Second)
		case brokerKilled && !brokerBack.IsZero() && time.Now().After(brokerBack):
			startBroker(t, 3)
			brokerBack = time.Time{}
		}
	}
	if !brokerBack.IsZero() {
		startBroker(t, 3)
	}
	testkit.Eventually(t, 5*time.Minute, "processors caught up", func() bool {
		lag, err := kafka.GroupLag(context.Background(), adm, "e2e-c", topics.Vitals)
		return err == nil && lag == 0
	})
	for _, p := range procs {
		if code := p.stop(t); code != 0 {
			t.Errorf("processor exited %d on SIGTERM", code)
		}
	}
	waitISR(t, topics.Vitals, topics.Alerts)
	inputs := countReadings(t, brokers, topics.Vitals)
	inputDups := 0
	for _, n := range inputs {
		inputDups += n - 1
	}
	if len(inputs) != total || inputDups != 0 {
		t.Errorf("input: %d of %d readings in the topic, %d duplicated", len(inputs), total, inputDups)
		logDuplicates(t, brokers, topics.Vitals, readingIdent)
	}
	c := checkAlerts(want, countAlerts(t, brokers, topics.Alerts))
	if c.missing+c.dups+c.unexpected > 0 {
		t.Errorf("alerts: want %d exactly once; missing %d, duplicates %d, unexpected %d", c.want, c.missing, c.dups, c.unexpected)
		logDuplicates(t, brokers, topics.Alerts, alertIdent)
	}
	if dlq := testkit.ReadAllFrom(t, brokers, topics.VitalsDLQ, kgo.ReadCommitted(), with()...); len(dlq) != 0 {
		t.Errorf("%d dead letters from valid input", len(dlq))
	}
	record(row{name: "c. exactly-once alerts, processors and a broker SIGKILLed (input produced directly, acks=all)", sent: total, acked: total, found: len(inputs), dups: inputDups + c.dups,
		alertsWant: c.want, alertsFound: c.found, kills: fmt.Sprintf("%d processor, 1 broker", processKills), elapsed: time.Since(start), result: result(t)})
}

// d. kcat (librdkafka) reads our topics with read_committed, and a reading
// it produces in our schema is processed and alerted on.
func TestKcatInterop(t *testing.T) {
	need(t)
	start := time.Now()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat not installed (make e2e runs e2e/install-kcat.sh)")
	}
	topics, flags := topicFlags("e2e-d")
	provisionAs(t, "process", topics, flags, "--group", "e2e-d")
	addr := freeAddr(t)
	p := startRole(t, "process", append(append([]string{"process", "--brokers", strings.Join(brokers, ","), "--http-addr", addr, "--group", "e2e-d"}, append(flags, thresholdRules...)...), kafkaFlags("process")...)...)
	// On the secured cluster kcat speaks SASL_SSL, its password in a
	// config file (never on its command line).
	var kcatConf []string
	if secure {
		pw, _ := os.ReadFile(password("admin"))
		conf := filepath.Join(t.TempDir(), "kcat.conf")
		body := "security.protocol=SASL_SSL\nsasl.mechanisms=SCRAM-SHA-256\nsasl.username=admin\nsasl.password=" + strings.TrimSpace(string(pw)) +
			"\nssl.ca.location=" + filepath.Join(runDir, "tls", "ca.pem") + "\n"
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		kcatConf = []string{"-F", conf}
	}
	waitReady(t, addr, 60*time.Second)

	// A device gateway on librdkafka: murmur2 partitioning like ours, no
	// schema header (read as v1).
	r := schemas.Reading{PatientID: "kcat-P1", DeviceID: "kcat-D1", Kind: schemas.SpO2, Value: 84, Unit: "%", TS: time.Now().UTC().Truncate(time.Millisecond), Seq: 1}
	rec, _ := schemas.ReadingRecord(topics.Vitals, &r)
	kp := exec.Command("kcat", append(append([]string{}, kcatConf...), "-P", "-b", strings.Join(brokers, ","), "-t", topics.Vitals, "-K", "\t", "-X", "partitioner=murmur2_random", "-X", "acks=all")...)
	kp.Stdin = strings.NewReader(r.PatientID + "\t" + string(rec.Value) + "\n")
	if out, err := kp.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v %s", err, out)
	}
	wantID := schemas.AlertID("spo2_low", &r)
	adm := kadm.NewClient(testkit.SeedClient(t, brokers, with()...))
	testkit.Eventually(t, 2*time.Minute, "the kcat reading was processed", func() bool {
		lag, err := kafka.GroupLag(context.Background(), adm, "e2e-d", topics.Vitals)
		return err == nil && lag == 0
	})
	if code := p.stop(t); code != 0 {
		t.Errorf("processor exited %d", code)
	}
	alerts := countAlerts(t, brokers, topics.Alerts)
	if alerts[wantID] != 1 {
		t.Fatalf("alert %s for the kcat reading: found %d times (alerts %v)", wantID, alerts[wantID], alerts)
	}
	// The reading landed on the partition our producer would choose for
	// the patient, so one processor owns each patient whoever produced.
	vitals := testkit.ReadAllFrom(t, brokers, topics.Vitals, kgo.ReadCommitted(), with()...)
	if len(vitals) != 1 {
		t.Fatalf("%d records in %s", len(vitals), topics.Vitals)
	}
	ours := kgo.StickyKeyPartitioner(nil).ForTopic(topics.Vitals).Partition(&kgo.Record{Key: []byte(r.PatientID)}, 12)
	if vitals[0].Partition != int32(ours) {
		t.Fatalf("kcat put patient %s on partition %d, our producer would use %d", r.PatientID, vitals[0].Partition, ours)
	}

	// kcat reads the alerts with read_committed and sees the same alert.
	kc := exec.Command("kcat", append(append([]string{}, kcatConf...), "-C", "-b", strings.Join(brokers, ","), "-t", topics.Alerts, "-X", "isolation.level=read_committed",
		"-o", "beginning", "-e", "-q", "-f", "%k\t%s\n")...)
	out, err := kc.Output()
	if err != nil {
		t.Fatalf("kcat consume: %v", err)
	}
	var kcatAlerts int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(line, "\t"); ok && v != "" {
			a, err := schemas.DecodeAlert(&kgo.Record{Value: []byte(v)})
			if err != nil || k != a.PatientID {
				t.Fatalf("kcat read an alert we cannot decode or with the wrong key: %q", line)
			}
			if a.AlertID == wantID {
				kcatAlerts++
			}
		}
	}
	if kcatAlerts != 1 {
		t.Fatalf("kcat saw the alert %d times:\n%s", kcatAlerts, out)
	}
	record(row{name: "d. kcat interop (produce a reading, read alerts read_committed)", sent: 1, acked: 1, found: 1,
		alertsWant: 1, alertsFound: kcatAlerts, kills: "-", elapsed: time.Since(start), result: result(t)})
}
