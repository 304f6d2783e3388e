package statestore

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

// snapshot is a changelog value: a patient's state with one heart rate.
func snapshot(t *testing.T, v float64) []byte {
	t.Helper()
	var st clinical.PatientState
	st.Latest.Set(schemas.HeartRate, clinical.Sample{Value: v, TS: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC), Device: "D", Seq: 1})
	b, err := json.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Restore keeps each patient's last snapshot of an uncompacted changelog,
// honours tombstones in either order, and reads past snapshots it cannot
// decode when a later one can be.
func TestRestoreKeepsTheLastSnapshot(t *testing.T) {
	c, kc := testkit.CreateCluster(t, 3)
	snap := func(v float64) []byte { return snapshot(t, v) }
	var recs []*kgo.Record
	for v := range 50 {
		for p := range 10 {
			recs = append(recs, &kgo.Record{Topic: kc.Topics.State, Key: fmt.Appendf(nil, "P%d", p), Value: snap(float64(100*p + v))})
		}
	}
	recs = append(recs,
		&kgo.Record{Topic: kc.Topics.State, Key: []byte("P1")}, // discharged
		&kgo.Record{Topic: kc.Topics.State, Key: []byte("P2")},
		&kgo.Record{Topic: kc.Topics.State, Key: []byte("P2"), Value: snap(7)}, // back
		&kgo.Record{Topic: kc.Topics.State, Key: []byte("P3"), Value: []byte("{not json")},
		&kgo.Record{Topic: kc.Topics.State, Key: []byte("P3"), Value: snap(3)},
	)
	cl := testkit.Client(t, c, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	s := New(kc.Topics.State, []kgo.Opt{kgo.SeedBrokers(kc.Brokers...)})
	if err := s.Restore(context.Background(), []int32{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"P0": 49, "P2": 7, "P3": 3, "P4": 449, "P9": 949}
	for id, v := range want {
		st := s.committed[id]
		if st == nil {
			t.Fatalf("%s not restored", id)
		}
		if got, _ := st.Latest.Get(schemas.HeartRate); got.Value != v {
			t.Errorf("%s: heart rate %v, want the last snapshot's %v", id, got.Value, v)
		}
	}
	if s.committed["P1"] != nil {
		t.Error("P1 restored after its tombstone")
	}
	if n := s.Patients(); n != 9 {
		t.Errorf("%d patients restored, want 9", n)
	}
}

// A restore waits out a transaction in doubt on the changelog: the last
// owner of a partition may have ended its transaction (EndTxn answered)
// before the brokers wrote its markers, and the group's committed offsets
// (fetched require-stable) then include that transaction while the last
// stable offset listed a moment earlier did not. A restore that stopped
// at that offset gave the new owner the state of before the transaction
// with the offsets of after it: e2e case f lost the first alarms of a
// partition this way.
func TestRestoreWaitsForATransactionInDoubt(t *testing.T) {
	c, kc := testkit.CreateCluster(t, 1)
	snap := func(v float64) []byte { return snapshot(t, v) }
	ctx := testkit.Context(t)
	plain := testkit.Client(t, c)
	if err := plain.ProduceSync(ctx, &kgo.Record{Topic: kc.Topics.State, Key: []byte("P0"), Value: snap(60)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txn := testkit.Client(t, c, kgo.TransactionalID("last-owner"))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Topic: kc.Topics.State, Key: []byte("P0"), Value: snap(61)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	s := New(kc.Topics.State, []kgo.Opt{kgo.SeedBrokers(kc.Brokers...)})
	go func() { done <- s.Restore(ctx, []int32{0}) }()
	select {
	case err := <-done:
		t.Fatalf("the restore ended (err %v) with a transaction in doubt on the changelog", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, _ := s.committed["P0"].Latest.Get(schemas.HeartRate); got.Value != 61 {
		t.Errorf("restored heart rate %v, want the committed transaction's 61", got.Value)
	}
}
