package processors

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/monitorme/monitorme/internal/testkit"
)

// checkStateEncoding compares the hand-written snapshot encoding with
// json.Marshal for every state the open transaction changed: the tests
// that drive the clinical engine (alarms, latching, escalation, silences,
// NEWS2, copies, placements) call it, so every shape of state they reach
// is compared.
func checkStateEncoding(t *testing.T, c *Clinical) {
	t.Helper()
	c.store.mu.Lock()
	defer c.store.mu.Unlock()
	for id, st := range c.store.dirty {
		want, err := json.Marshal(st)
		got, ferr := appendState(nil, st)
		if (err == nil) != (ferr == nil) || string(got) != string(want) {
			t.Fatalf("patient %s: appendState wrote\n%s (%v)\njson.Marshal\n%s (%v)", id, got, ferr, want, err)
		}
	}
}

// The snapshots a ward's unruly devices make (retries, batches, late and
// out-of-order readings, gaps, artefacts) encode the same by hand as with
// encoding/json. Fails before appendState handled every field: a field
// it left out or wrote differently changes the bytes.
func TestStateEncodingAgrees(t *testing.T) {
	base := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	recs := testkit.Unruly(testkit.WardInput("P", base, 8))
	for _, r := range recs {
		r.Topic = topics.Vitals
	}
	loop(t, NewClinical(DefaultClinicalConfig(), topics), recs, 37)
}

// BenchmarkStateEncoding: a ward patient's snapshot, by hand and with
// encoding/json.
func BenchmarkStateEncoding(b *testing.B) {
	base := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	recs := testkit.Unruly(testkit.WardInput("P", base, 8))
	c := NewClinical(DefaultClinicalConfig(), topics)
	c.Begin()
	for _, r := range recs {
		r.Topic = topics.Vitals
		if _, err := c.Handle(r); err != nil {
			b.Fatal(err)
		}
	}
	var states []*PatientState
	for _, st := range c.store.dirty {
		states = append(states, st)
	}
	b.Run("hand", func(b *testing.B) {
		var buf []byte
		for i := 0; b.Loop(); i++ {
			buf, _ = appendState(buf[:0], states[i%len(states)])
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			_, _ = json.Marshal(states[i%len(states)])
		}
	})
}
