package processors

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

// loop runs recs through h as the processor's loop does, in transactions
// of batch records, each ending with Tick by the newest arrival consumed
// (the partition's stream time); it returns each patient's alert events.
func loop(t *testing.T, h *Clinical, recs []*kgo.Record, batch int) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var stream time.Time
	for i := 0; i < len(recs); i += batch {
		h.Begin()
		var got []*kgo.Record
		for _, r := range recs[i:min(i+batch, len(recs))] {
			if r.Timestamp.After(stream) {
				stream = r.Timestamp
			}
			o, err := h.Handle(r)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, o...)
		}
		o, err := h.Tick(func(int32) time.Time { return stream })
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, o...)
		if _, err := h.Flush(); err != nil {
			t.Fatal(err)
		}
		h.Committed()
		for _, r := range got {
			out[string(r.Key)] = append(out[string(r.Key)], string(r.Value))
		}
	}
	return out
}

// Where a timer fires among the records must not depend on where a
// transaction ends. Arrival times are not monotonic in offset order (two
// ingest instances, two requests of one): a heart rate arriving just
// before its signal-lost deadline could come after another patient's
// record that arrived just after it. The processor fired other patients'
// timers at the end of each transaction, by the batch's newest arrival, so
// the alarm was raised (and resolved by the late heart rate) or not,
// depending on the batching: three runs over one topic on real Kafka gave
// 98,230, 98,230 and 98,184 alert events. Timers now fire before each
// record by the stream time so far, whatever the batches.
func TestTimersDoNotDependOnBatchBoundaries(t *testing.T) {
	base := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	recs := testkit.Unruly(testkit.WardInput("P", base, 8))
	for _, r := range recs {
		r.Topic = topics.Vitals
	}
	want := loop(t, NewClinical(clinical.DefaultConfig(), topics), recs, 1)
	n := 0
	for _, evs := range want {
		n += len(evs)
	}
	for _, batch := range []int{2, 7, 37, 500} {
		got := loop(t, NewClinical(clinical.DefaultConfig(), topics), recs, batch)
		for p, evs := range want {
			if !slices.Equal(evs, got[p]) {
				t.Fatalf("patient %s, transactions of %d records: %d events, of 1 record: %d", p, batch, len(got[p]), len(evs))
			}
		}
	}
	t.Logf("%d records, %d alert events, the same in transactions of 1, 2, 7, 37 and 500", len(recs), n)
}

// With a commit interval, a trickle of readings goes into one transaction
// instead of one per poll (what made a real cluster's brokers busy at a
// low rate); without one, each poll commits. Neither count depends on the
// machine's pace: without an interval each reading is produced once the
// one before was committed (so each poll holds one: 12 transactions); with
// one, the transactions are bounded by how long the trickle took (one
// per interval begun, and the last). Before (issue 27), readings 15 ms
// apart were held to "one or two" transactions of a 1 s interval and to
// "three or more" polls, which a loaded machine breaks either way.
func TestCommitIntervalGathersATrickle(t *testing.T) {
	t.Run("5s", func(t *testing.T) {
		start := time.Now()
		txns := trickle(t, 5*time.Second, slices.Repeat([]float64{70}, 12), false)
		took := time.Since(start)
		if bound := int(took/(5*time.Second)) + 2; len(txns) > bound {
			t.Errorf("12 readings over %v took transactions of %v records with commit-interval 5s, want at most %d", took, txns, bound)
		}
		t.Logf("commit-interval 5s: transactions of %v records over %v", txns, took.Round(time.Millisecond))
	})
	t.Run("0s", func(t *testing.T) {
		txns := trickle(t, 0, slices.Repeat([]float64{70}, 12), true)
		if !slices.Equal(txns, slices.Repeat([]int64{1}, 12)) {
			t.Errorf("12 readings each produced once the one before was committed took transactions of %v records without a commit interval, want 12 of 1", txns)
		}
	})
}

// An alert is not held back by the commit interval: the transaction that
// raised it ends at once, and what arrives after it goes into the next.
// Before, the interval applied to every transaction, and an alert waited
// for it like any reading (up to 100 ms by default, on top of the
// brokers' time).
func TestAnAlertEndsTheGathering(t *testing.T) {
	hr := []float64{70, 70, 70, 130, 70, 70, 70} // threshold rules: 130 alerts
	txns := trickle(t, 5*time.Second, hr, false)
	if len(txns) < 2 || txns[0] > 4 {
		t.Fatalf("transactions of %v records: the alert (4th reading) did not end the first one", txns)
	}
	t.Logf("transactions of %v records", txns)
}

// trickle runs a threshold processor with commit interval interval,
// produces a heart rate of each value 15 ms apart (paced: each once the
// one before was committed), and returns how many records each of its
// transactions consumed, once it consumed them all and committed every
// alert.
func trickle(t *testing.T, interval time.Duration, hr []float64, paced bool) []int64 {
	t.Helper()
	c, kc := testCluster(t)
	p := newTestProcessor(c.ListenAddrs())
	p.cfg.CommitInterval = interval
	var (
		mu       sync.Mutex
		txns     []int64
		consumed int64
	)
	p.beforeEnd = func(n int64) error {
		mu.Lock()
		defer mu.Unlock()
		txns = append(txns, n)
		consumed += n
		return nil
	}
	runProcessor(t, p)
	testkit.Eventually(t, 30*time.Second, "the processor joined", func() bool { return p.ready.Load() })
	cl := testkit.Client(t, c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	ts := time.Now().UTC()
	alerts := 0
	for i, v := range hr {
		if v > 120 {
			alerts++
		}
		rd := schemas.Reading{PatientID: "P1", DeviceID: "D1", Kind: schemas.HeartRate, Value: v, Unit: "/min", TS: ts.Add(time.Duration(i) * time.Millisecond), Seq: uint64(i + 1)}
		rec, _ := schemas.ReadingRecord(kc.Topics.Vitals, &rd)
		if err := cl.ProduceSync(testkit.Context(t), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if paced {
			testkit.Eventually(t, 30*time.Second, "the reading committed", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return consumed == int64(i+1)
			})
			continue
		}
		time.Sleep(15 * time.Millisecond) // the trickle itself: readings 15 ms apart, not a wait for a condition
	}
	testkit.Eventually(t, 30*time.Second, "every reading consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return consumed == int64(len(hr))
	})
	testkit.Eventually(t, 30*time.Second, "every alert committed", func() bool {
		return len(testkit.ReadAll(t, c, kc.Topics.Alerts, kgo.ReadCommitted())) == alerts
	})
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(txns)
}
