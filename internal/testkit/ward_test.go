package testkit

import (
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/schemas"
)

// The comparison case f relies on can fail: a run that writes an event
// twice, before the end of the input or after it (where events are
// compared as a set), differs from one that writes it once. Before, the
// duplicate after the end vanished into the set and the two were equal.
func TestAlertsByPatientSeesAnEventWrittenTwice(t *testing.T) {
	end := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	rec := func(state schemas.State, at time.Time, level int) *kgo.Record {
		a := schemas.Alert{AlertID: "0123456789abcdef0123456789abcdef", PatientID: "P1", Condition: "spo2_low", Priority: schemas.High, State: state,
			TS: at, Limit: 90, Message: "m", EscalationLevel: level, Reading: schemas.Reading{PatientID: "P1", DeviceID: "d", Kind: schemas.SpO2, Value: 85, Unit: "%", TS: at, Seq: 1}}
		r, err := schemas.AlertRecord("alerts", &a)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	raised := rec(schemas.Raised, end.Add(-time.Minute), 0)
	esc := rec(schemas.Escalated, end.Add(time.Minute), 1)
	once := AlertsByPatient([]*kgo.Record{raised, esc}, end)
	if twice := AlertsByPatient([]*kgo.Record{raised, esc, esc}, end); reflect.DeepEqual(once, twice) {
		t.Fatalf("an escalation after the end written twice compares equal to once: %q", twice)
	}
	if twice := AlertsByPatient([]*kgo.Record{raised, raised, esc}, end); reflect.DeepEqual(once, twice) {
		t.Fatalf("a raise written twice compares equal to once: %q", twice)
	}
}
