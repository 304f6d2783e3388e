package clinical

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

// checkStateEncoding compares the hand-written snapshot encoding with
// json.Marshal for every state changed since the last check: the tests
// that drive the clinical engine (alarms, latching, escalation, silences,
// NEWS2, copies, placements) call it, so every shape of state they reach
// is compared.
func checkStateEncoding(t testing.TB, ps *touched) {
	t.Helper()
	for id := range ps.ids {
		st := ps.Peek(id)
		delete(ps.ids, id)
		want, err := json.Marshal(st)
		got, ferr := AppendState(nil, st)
		if (err == nil) != (ferr == nil) || string(got) != string(want) {
			t.Fatalf("patient %s: AppendState wrote\n%s (%v)\njson.Marshal\n%s (%v)", id, got, ferr, want, err)
		}
	}
}

// wardInputs are a ward's readings from unruly devices (retries,
// batches, late and out-of-order readings, gaps, artefacts), decoded.
func wardInputs(t testing.TB) []Input {
	base := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	var out []Input
	for _, r := range testkit.Unruly(testkit.WardInput("P", base, 8)) {
		rd, err := schemas.DecodeReading(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Input{Partition: r.Partition, Arrival: r.Timestamp, Reading: &rd})
	}
	return out
}

// The snapshots a ward's unruly devices make (retries, batches, late and
// out-of-order readings, gaps, artefacts) encode the same by hand as with
// encoding/json. Fails before appendState handled every field: a field
// it left out or wrote differently changes the bytes.
func TestStateEncodingAgrees(t *testing.T) {
	f := newFeed(t, DefaultConfig())
	for _, in := range wardInputs(t) {
		f.apply(in)
	}
}

// BenchmarkStateEncoding: a ward patient's snapshot, by hand and with
// encoding/json.
func BenchmarkStateEncoding(b *testing.B) {
	ps := NewPatients()
	s := NewStream(NewEngine(DefaultConfig()), ps)
	for _, in := range wardInputs(b) {
		s.Apply(&in)
	}
	var states []*PatientState
	ps.Each(func(_ string, _ int32, st *PatientState) { states = append(states, st) })
	b.Run("hand", func(b *testing.B) {
		var buf []byte
		for i := 0; b.Loop(); i++ {
			buf, _ = AppendState(buf[:0], states[i%len(states)])
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			_, _ = json.Marshal(states[i%len(states)])
		}
	})
}
