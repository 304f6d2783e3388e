package processors

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/schemas"
)

// timerConfig raises signal lost after 10 s without a heart rate and
// escalates high alerts after 60 s, medium after 5 min.
func timerConfig() ClinicalConfig {
	return ClinicalConfig{
		Default: RuleSet{
			Conditions: []ConditionRule{spo2Rule(), {Condition: "spo2_critical", Kind: schemas.SpO2, Below: true, Limit: 80, Priority: schemas.High, ResolveAfter: 30 * time.Second}},
			SignalLost: []SignalLostRule{{Kind: schemas.HeartRate, After: 10 * time.Second, Priority: schemas.Medium}},
			Escalation: map[schemas.Priority][]EscalationTier{schemas.High: {{After: time.Minute}}, schemas.Medium: {{After: 5 * time.Minute}}},
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

// readingArriving is reading with its own arrival time, in milliseconds
// from t0: a gateway's batch arrives at once.
func (f feed) readingArriving(patient string, kind schemas.Kind, v float64, s int, arriveMs int) []schemas.Alert {
	spec, _ := schemas.SpecFor(kind)
	rd := schemas.Reading{PatientID: patient, DeviceID: "dev-" + patient, Kind: kind, Value: v, Unit: spec.Unit, TS: t0.Add(time.Duration(s) * time.Second), Seq: uint64(s)}
	rec, _ := schemas.ReadingRecord(topics.Vitals, &rd)
	rec.Timestamp = t0.Add(time.Duration(arriveMs) * time.Millisecond)
	return f.handle(rec)
}

func (f feed) ack(a schemas.Alert, by string, s int) []schemas.Alert {
	ack := schemas.Ack{AlertID: a.AlertID, PatientID: a.PatientID, By: by, TS: t0.Add(time.Duration(s) * time.Second)}
	v, _ := json.Marshal(ack)
	return f.handle(&kgo.Record{Topic: topics.Acks, Key: []byte(a.PatientID), Value: v, Timestamp: ack.TS,
		Headers: []kgo.RecordHeader{{Key: schemas.HeaderSchema, Value: []byte(schemas.AckV1)}}})
}

func (f feed) handle(rec *kgo.Record) []schemas.Alert {
	f.t.Helper()
	f.h.Begin()
	recs, err := f.h.Handle(rec)
	if err != nil {
		f.t.Fatal(err)
	}
	checkStateEncoding(f.t, f.h)
	f.h.Committed()
	return decodeAlerts(f.t, recs)
}

// tick fires the timers due at second s on every partition.
func (f feed) tick(s int) []schemas.Alert {
	f.t.Helper()
	clock := func(int32) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	f.h.Begin()
	due := f.h.Due(clock)
	recs, err := f.h.Tick(clock)
	if err != nil {
		f.t.Fatal(err)
	}
	if due != (len(recs) > 0) {
		f.t.Fatalf("second %d: Due said %v, Tick produced %d records", s, due, len(recs))
	}
	checkStateEncoding(f.t, f.h)
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

// of keeps one patient's alerts.
func of(patient string, alerts []schemas.Alert) []schemas.Alert {
	var out []schemas.Alert
	for _, a := range alerts {
		if a.PatientID == patient {
			out = append(out, a)
		}
	}
	return out
}

func one(t *testing.T, what string, got []schemas.Alert, condition string, state schemas.State) schemas.Alert {
	t.Helper()
	if len(got) != 1 || got[0].Condition != condition || got[0].State != state {
		t.Fatalf("%s: got %+v, want one %s %s", what, got, condition, state)
	}
	return got[0]
}

// A heart rate that stops arriving raises one signal-lost technical alarm
// at the deadline, whoever notices it; a patient whose devices keep
// sending is neither delayed nor touched; the signal coming back resolves
// the alarm.
func TestSignalLost(t *testing.T) {
	f := feed{t, NewClinical(timerConfig(), topics)}
	for s := range 21 {
		f.reading("P01", schemas.HeartRate, 80, s)
	}
	if got := f.tick(29); len(got) != 0 {
		t.Fatalf("9 s of silence raised %+v", got)
	}
	// P02's desaturation alerts at its 15 s reading while P01 is silent;
	// P01's timer fires at the first record of the partition that
	// arrives at its deadline, whoever's it is (P02's at 30 s).
	var p01 []schemas.Alert
	for s := 20; s < 36; s++ {
		var got []schemas.Alert
		for _, a := range append(f.reading("P02", schemas.SpO2, 85, s), f.reading("P02", schemas.HeartRate, 80, s)...) {
			if a.PatientID == "P01" {
				if s != 30 {
					t.Fatalf("P01's timer fired at P02's %d s reading: %+v", s, a)
				}
				p01 = append(p01, a)
			} else {
				got = append(got, a)
			}
		}
		if s < 35 && len(got) != 0 || s == 35 && len(got) != 1 {
			t.Fatalf("P02 at %d s: %+v", s, got)
		}
	}
	if got := f.tick(30); len(got) != 0 {
		t.Fatalf("tick at 30 s, after the records fired it: %+v", got)
	}
	lost := one(t, "P02's record at 30 s", p01, "heart_rate_signal_lost", schemas.Raised)
	if lost.PatientID != "P01" || !lost.TS.Equal(t0.Add(30*time.Second)) || lost.Priority != schemas.Medium || lost.Reading.DeviceID != "dev-P01" {
		t.Fatalf("signal lost: %+v", lost)
	}
	if got := f.tick(40); len(got) != 0 {
		t.Fatalf("repeated: %+v", got)
	}
	// P01's reading at 45 s resolves its alarm, and, arriving at P02's
	// deadline (P02 went quiet at 35 s), fires P02's first.
	at45 := f.reading("P01", schemas.HeartRate, 80, 45)
	one(t, "P02 at P01's 45 s reading", of("P02", at45), "heart_rate_signal_lost", schemas.Raised)
	back := one(t, "heart rate back", of("P01", at45), "heart_rate_signal_lost", schemas.Resolved)
	if back.AlertID != lost.AlertID {
		t.Fatalf("resolved a different alert: %s vs %s", back.AlertID, lost.AlertID)
	}
	// A second outage is a second alarm, with its own id.
	f.reading("P01", schemas.HeartRate, 80, 46)
	got := f.tick(56)
	if len(got) != 1 || got[0].PatientID != "P01" {
		t.Fatalf("tick at 55 s: %+v", got)
	}
	if again := one(t, "second outage", got[:1], "heart_rate_signal_lost", schemas.Raised); again.AlertID == lost.AlertID {
		t.Fatal("the second outage reused the first alarm's id")
	}
}

// A vital that arrives less often than the rule's silence (charted every
// few minutes), or only once, is never "lost".
func TestSignalLostNeedsACadence(t *testing.T) {
	f := feed{t, NewClinical(timerConfig(), topics)}
	f.reading("P01", schemas.HeartRate, 80, 0)
	if got := f.tick(100); len(got) != 0 {
		t.Fatalf("a single reading armed signal lost: %+v", got)
	}
	f.reading("P01", schemas.HeartRate, 80, 120)
	if got := f.tick(1000); len(got) != 0 {
		t.Fatalf("readings 2 minutes apart armed a 10 s rule: %+v", got)
	}
}

// Noticed by the patient's own next record instead of a tick, the same
// silence gives the same event, first.
func TestSignalLostNoticedByRecord(t *testing.T) {
	f := feed{t, NewClinical(timerConfig(), topics)}
	for s := range 6 {
		f.reading("P01", schemas.HeartRate, 80, s)
	}
	f.reading("P01", schemas.SpO2, 97, 5)
	got := f.reading("P01", schemas.SpO2, 97, 16)
	lost := one(t, "record at 16 s", got, "heart_rate_signal_lost", schemas.Raised)
	g := feed{t, NewClinical(timerConfig(), topics)}
	for s := range 6 {
		g.reading("P01", schemas.HeartRate, 80, s)
	}
	g.reading("P01", schemas.SpO2, 97, 5)
	ticked := one(t, "tick at 15 s", g.tick(15), "heart_rate_signal_lost", schemas.Raised)
	a, _ := json.Marshal(lost)
	b, _ := json.Marshal(ticked)
	if string(a) != string(b) {
		t.Fatalf("noticed by a record:\n%s\nby a tick:\n%s", a, b)
	}
}

// An alert nobody acknowledges is re-emitted escalated once its
// priority's timeout passed, and again at each timeout after (the last
// tier repeats), counting its level; an acknowledged one never escalates,
// and its resolution says who acknowledged it.
func TestEscalationAndAck(t *testing.T) {
	// The critical rule alone: with spo2_low too, the one 75 % reading
	// holds and raises it 15 s later, escalating on its own clock.
	cfg := timerConfig()
	cfg.Default.Conditions = cfg.Default.Conditions[1:]
	f := feed{t, NewClinical(cfg, topics)}
	raised := one(t, "critical value", f.reading("P01", schemas.SpO2, 75, 0), "spo2_critical", schemas.Raised)
	if raised.Priority != schemas.High {
		t.Fatalf("critical SpO2 priority %s", raised.Priority)
	}
	if got := f.tick(59); len(got) != 0 {
		t.Fatalf("escalated early: %+v", got)
	}
	esc := one(t, "tick at 60 s", f.tick(60), "spo2_critical", schemas.Escalated)
	if esc.AlertID != raised.AlertID || !esc.TS.Equal(t0.Add(time.Minute)) {
		t.Fatalf("escalation: %+v", esc)
	}
	if esc.EscalationLevel != 1 {
		t.Fatalf("first escalation's level: %+v", esc)
	}
	if got := f.tick(119); len(got) != 0 {
		t.Fatalf("escalated again early: %+v", got)
	}
	again := one(t, "tick at 120 s", f.tick(120), "spo2_critical", schemas.Escalated)
	if again.EscalationLevel != 2 || !again.TS.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("second escalation: %+v", again)
	}
	if got := f.tick(300); len(got) != 3 || got[2].EscalationLevel != 5 || !got[2].TS.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("escalations up to 300 s: %+v", got)
	}
	acked := one(t, "ack", f.ack(raised, "nurse-7", 310), "spo2_critical", schemas.Acknowledged)
	if acked.AckedBy != "nurse-7" || acked.AlertID != raised.AlertID {
		t.Fatalf("ack: %+v", acked)
	}
	if got := f.tick(1000); len(got) != 0 {
		t.Fatalf("escalated after the acknowledgement: %+v", got)
	}
	if got := f.ack(raised, "nurse-8", 1001); len(got) != 0 {
		t.Fatalf("a second ack emitted %+v", got)
	}

	// P02: acknowledged within the minute, never escalates.
	r2 := one(t, "P02 critical", f.reading("P02", schemas.SpO2, 70, 1100), "spo2_critical", schemas.Raised)
	one(t, "P02 ack", f.ack(r2, "nurse-7", 1130), "spo2_critical", schemas.Acknowledged)
	if got := f.tick(2000); len(got) != 0 {
		t.Fatalf("acknowledged alert escalated: %+v", got)
	}
	for s := 2001; s < 2031; s++ {
		f.reading("P02", schemas.SpO2, 97, s)
	}
	res := one(t, "P02 back in range 30 s", f.reading("P02", schemas.SpO2, 97, 2031), "spo2_critical", schemas.Resolved)
	if res.AckedBy != "nurse-7" {
		t.Fatalf("resolved: %+v", res)
	}
	// Acknowledging a resolved alert, or one this processor never saw,
	// changes nothing and is no error.
	if got := f.ack(r2, "nurse-7", 2040); len(got) != 0 {
		t.Fatalf("ack of a resolved alert: %+v", got)
	}
	if got := f.ack(schemas.Alert{AlertID: r2.AlertID, PatientID: "P99"}, "nurse-7", 2040); len(got) != 0 {
		t.Fatalf("ack of an unknown patient: %+v", got)
	}
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

// A news2 alert raised again at a higher band needs a new acknowledgement;
// a rising score within the band updates the alert in place (current
// score, same state, not a new alarm).
func TestNEWS2AckAndUpgrade(t *testing.T) {
	cfg := timerConfig()
	cfg.Default.Conditions = nil
	cfg.Default.SignalLost = nil
	cfg.Default.NEWS2 = true
	f := feed{t, NewClinical(cfg, topics)}
	normal := map[schemas.Kind]float64{schemas.RespRate: 16, schemas.SpO2: 97, schemas.O2Supplement: 0, schemas.BPSystolic: 120, schemas.HeartRate: 70, schemas.Consciousness: 0, schemas.Temperature: 37}
	for _, k := range []schemas.Kind{schemas.RespRate, schemas.SpO2, schemas.O2Supplement, schemas.BPSystolic, schemas.HeartRate, schemas.Consciousness, schemas.Temperature} {
		f.reading("P01", k, normal[k], 0)
	}
	med := one(t, "resp 26", f.reading("P01", schemas.RespRate, 26, 1), "news2", schemas.Raised) // single 3: low-medium
	one(t, "ack", f.ack(med, "nurse-7", 2), "news2", schemas.Acknowledged)
	upd := one(t, "pulse 135: 6, still medium", f.reading("P01", schemas.HeartRate, 135, 3), "news2", schemas.Acknowledged)
	if !upd.Updated || *upd.Score != 6 || upd.AlertID != med.AlertID || upd.AckedBy != "nurse-7" {
		t.Fatalf("update in place: %+v", upd)
	}
	high := one(t, "and new confusion: 9, high", f.reading("P01", schemas.Consciousness, 1, 4), "news2", schemas.Raised)
	if high.Priority != schemas.High || high.AlertID != med.AlertID {
		t.Fatalf("upgrade: %+v", high)
	}
	if high.Updated || *high.Score != 9 {
		t.Fatalf("raised again: %+v", high)
	}
	one(t, "not acknowledged at high", f.tick(64), "news2", schemas.Escalated)
}

// Signal lost needs an established cadence: a device heard twice within a
// second (as every id of a request inventing patients is) arms nothing,
// while a gateway posting five readings every five seconds, each batch
// arriving in one millisecond, arms the rule and is reported when it stops.
func TestSignalLostNeedsAnEstablishedCadence(t *testing.T) {
	f := feed{t, NewClinical(timerConfig(), topics)}
	f.readingArriving("P01", schemas.HeartRate, 80, 0, 0)
	f.readingArriving("P01", schemas.HeartRate, 80, 1, 1000)
	for s := 2; s <= 120; s += 2 {
		if got := f.tick(s); len(got) != 0 {
			t.Fatalf("two readings a second apart armed signal lost: %+v", got)
		}
	}

	g := feed{t, NewClinical(timerConfig(), topics)}
	seq := 0
	for post := range 3 {
		for range 5 {
			g.readingArriving("P02", schemas.HeartRate, 80, seq, post*5000)
			seq++
		}
	}
	if got := g.tick(19); len(got) != 0 {
		t.Fatalf("lost before 10 s of silence: %+v", got)
	}
	lost := one(t, "the gateway stopped", g.tick(20), "heart_rate_signal_lost", schemas.Raised)
	if !lost.TS.Equal(t0.Add(20 * time.Second)) {
		t.Fatalf("lost at %v, want the last post + 10 s", lost.TS)
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
	if _, gone := tombstones(10 * time.Minute); !slices.Equal(gone, []string{"X01"}) || h.store.patients() != 1 {
		t.Fatalf("after 10 min: tombstones %v, %d patients held", gone, h.store.patients())
	}
	alerts, gone := tombstones(24*time.Hour + 2*time.Minute)
	if !slices.Equal(gone, []string{"P01"}) || h.store.patients() != 0 {
		t.Fatalf("after a day: tombstones %v, %d patients held", gone, h.store.patients())
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
	if h.store.patients() != 1 {
		t.Fatal("a returning patient has no state")
	}
}
