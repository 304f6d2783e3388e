package processors

// The clinical handler's records: what only a record can get wrong (a
// malformed acknowledgement, an audit record on the acks topic) and what
// the handler adds to the engine (the changelog's tombstones). The rules
// themselves are tested in package clinical, without Kafka.

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/schemas"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// timerConfig raises signal lost after 10 s without a heart rate and
// escalates high alerts after 60 s, medium after 5 min.
func timerConfig() clinical.Config {
	return clinical.Config{
		Default: clinical.RuleSet{
			Conditions: []clinical.ConditionRule{
				{Condition: "spo2_low", Kind: schemas.SpO2, Below: true, Limit: 90, Priority: schemas.High, Delay: 15 * time.Second, ResolveAfter: 30 * time.Second},
				{Condition: "spo2_critical", Kind: schemas.SpO2, Below: true, Limit: 80, Priority: schemas.High, ResolveAfter: 30 * time.Second}},
			SignalLost: []clinical.SignalLostRule{{Kind: schemas.HeartRate, After: 10 * time.Second, Priority: schemas.Medium}},
			Escalation: map[schemas.Priority][]clinical.EscalationTier{schemas.High: {{After: time.Minute}}, schemas.Medium: {{After: 5 * time.Minute}}},
		},
		NEWS2MaxAge: time.Hour, NEWS2ResolveAfter: time.Minute,
	}
}

// feed is a transaction's worth of records through h; it returns the alert
// events.
type feed struct {
	t *testing.T
	h *Clinical
}

func (f feed) reading(patient string, kind schemas.Kind, v float64, s int) []schemas.Alert {
	spec, _ := schemas.SpecFor(kind)
	rd := schemas.Reading{PatientID: patient, DeviceID: "dev-" + patient, Kind: kind, Value: v, Unit: spec.Unit, TS: t0.Add(time.Duration(s) * time.Second), Seq: uint64(s)}
	rec, _ := schemas.ReadingRecord(topics.Vitals, &rd)
	rec.Timestamp = rd.TS // arrives when it was measured
	return f.handle(rec)
}

func (f feed) handle(rec *kgo.Record) []schemas.Alert {
	f.t.Helper()
	f.h.Begin()
	recs, err := f.h.Handle(rec)
	if err != nil {
		f.t.Fatal(err)
	}
	f.h.Committed()
	return decodeAlerts(f.t, recs)
}

func decodeAlerts(t *testing.T, recs []*kgo.Record) []schemas.Alert {
	t.Helper()
	var out []schemas.Alert
	for _, r := range recs {
		a, err := schemas.DecodeAlert(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// A malformed acknowledgement is poison: an error, which the processor
// dead-letters.
func TestBadAckIsAnError(t *testing.T) {
	h := NewClinical(timerConfig(), topics)
	for name, rec := range map[string]*kgo.Record{
		"no header": {Topic: topics.Acks, Key: []byte("P01"), Value: []byte(`{}`)},
		"bad json":  {Topic: topics.Acks, Key: []byte("P01"), Value: []byte(`{`), Headers: []kgo.RecordHeader{{Key: schemas.HeaderSchema, Value: []byte(schemas.AckV1)}}},
		"wrong key": {Topic: topics.Acks, Key: []byte("P02"), Value: []byte(`{"alert_id":"0123456789abcdef0123456789abcdef","patient_id":"P01","by":"n","ts":"2026-11-22T09:00:00Z"}`),
			Headers: []kgo.RecordHeader{{Key: schemas.HeaderSchema, Value: []byte(schemas.AckV1)}}},
	} {
		if _, err := h.Handle(rec); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The state of every patient is bounded by time: an id that never kept a
// cadence expires after ExpireUnestablished, any patient after ExpireIdle
// without a reading, with its open alerts resolved; each leaves a
// tombstone in the changelog and nothing in memory.
func TestPatientsExpire(t *testing.T) {
	cfg := timerConfig()
	cfg.ExpireIdle, cfg.ExpireUnestablished = 24*time.Hour, 10*time.Minute
	h := NewClinical(cfg, topics)
	f := feed{t, h}
	f.reading("X01", schemas.HeartRate, 80, 0) // an invented id: one reading
	for s := range 120 {                       // P01: a monitor, once a second for two minutes
		f.reading("P01", schemas.HeartRate, 80, s)
	}
	f.reading("P01", schemas.SpO2, 70, 119) // and an open critical alert
	tombstones := func(at time.Duration) ([]schemas.Alert, []string) {
		t.Helper()
		clock := func(int32) time.Time { return t0.Add(at) }
		h.Begin()
		recs, err := h.Tick(clock)
		if err != nil {
			t.Fatal(err)
		}
		state, err := h.Flush()
		if err != nil {
			t.Fatal(err)
		}
		h.Committed()
		var gone []string
		for _, r := range state {
			if r.Value == nil {
				gone = append(gone, string(r.Key))
			}
		}
		return decodeAlerts(t, recs), gone
	}
	// Escalations and signal lost fire on the way; only expiry matters here.
	if _, gone := tombstones(9 * time.Minute); len(gone) != 0 {
		t.Fatalf("expired early: %v", gone)
	}
	if _, gone := tombstones(10 * time.Minute); !slices.Equal(gone, []string{"X01"}) || h.store.Patients() != 1 {
		t.Fatalf("after 10 min: tombstones %v, %d patients held", gone, h.store.Patients())
	}
	alerts, gone := tombstones(24*time.Hour + 2*time.Minute)
	if !slices.Equal(gone, []string{"P01"}) || h.store.Patients() != 0 {
		t.Fatalf("after a day: tombstones %v, %d patients held", gone, h.store.Patients())
	}
	var resolved int
	for _, a := range alerts {
		if a.State == schemas.Resolved && strings.Contains(a.Message, "monitoring of the patient ended") {
			resolved++
		}
	}
	if resolved != 3 { // the critical and the low SpO2 (the value holds), the heart rate's signal lost
		t.Fatalf("expiry resolved %d alerts: %+v", resolved, alerts)
	}
	// Back after expiry: a fresh state.
	f.reading("P01", schemas.HeartRate, 80, 90000)
	if h.store.Patients() != 1 {
		t.Fatal("a returning patient has no state")
	}
}

// The rules-loaded event shares the acks topic for the audit trail: the
// engine reads past it, with no dead letter, no change, and no tick of
// its clock. Its timestamp is the wall clock of a processor's start: taken
// as stream time, it fired every timer of its partition at once (signal
// lost for every monitor, escalations), which e2e case f caught.
func TestRulesLoadedEventIsSkipped(t *testing.T) {
	f := feed{t, NewClinical(timerConfig(), topics)}
	for s := range 30 {
		if got := f.reading("P01", schemas.HeartRate, 80, s); len(got) != 0 {
			t.Fatalf("a steady heart rate alarmed: %v", got)
		}
	}
	ev := schemas.RulesLoaded{By: "process", Auth: "none", Source: "built-in", SHA256: strings.Repeat("0", 64), Host: "h", TS: t0.Add(time.Hour)}
	rec, err := schemas.RulesLoadedRecord(topics.Acks, &ev)
	if err != nil {
		t.Fatal(err)
	}
	rec.Timestamp = t0.Add(time.Hour) // a processor started an hour later
	if got := f.handle(rec); len(got) != 0 {
		t.Fatalf("a rules-loaded event made alerts: %+v", got)
	}
	if got := f.reading("P01", schemas.HeartRate, 80, 30); len(got) != 0 {
		t.Fatalf("after a rules-loaded event, the next reading alarmed: %+v", got)
	}
}
