package processors

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/testkit"
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
	want := loop(t, NewClinical(DefaultClinicalConfig(), topics), recs, 1)
	n := 0
	for _, evs := range want {
		n += len(evs)
	}
	for _, batch := range []int{2, 7, 37, 500} {
		got := loop(t, NewClinical(DefaultClinicalConfig(), topics), recs, batch)
		for p, evs := range want {
			if !slices.Equal(evs, got[p]) {
				t.Fatalf("patient %s, transactions of %d records: %d events, of 1 record: %d", p, batch, len(got[p]), len(evs))
			}
		}
	}
	t.Logf("%d records, %d alert events, the same in transactions of 1, 2, 7, 37 and 500", len(recs), n)
}
