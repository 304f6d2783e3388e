package clinical

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// timerConfig raises signal lost after 10 s without a heart rate and
// escalates high alerts after 60 s, medium after 5 min.
func timerConfig() Config {
	return Config{
		Default: RuleSet{
			Conditions: []ConditionRule{spo2Rule(), {Condition: "spo2_critical", Kind: schemas.SpO2, Below: true, Limit: 80, Priority: schemas.High, ResolveAfter: 30 * time.Second}},
			SignalLost: []SignalLostRule{{Kind: schemas.HeartRate, After: 10 * time.Second, Priority: schemas.Medium}},
			Escalation: map[schemas.Priority][]EscalationTier{schemas.High: {{After: time.Minute}}, schemas.Medium: {{After: 5 * time.Minute}}},
		},
		NEWS2MaxAge: time.Hour, NEWS2ResolveAfter: time.Minute,
	}
}

// feed is the engine's stream over patients in memory, as the processor
// and a replay drive it: each input is applied and committed on its own.
type feed struct {
	t  testing.TB
	s  *Stream
	ps *touched
}

// touched are patients in memory that remember which states the engine
// asked for to change: those the encoding check looks at.
type touched struct {
	*Patients
	ids map[string]bool
}

func (p *touched) Get(patient string, partition int32, create bool) *PatientState {
	st := p.Patients.Get(patient, partition, create)
	if st != nil {
		p.ids[patient] = true
	}
	return st
}

func newFeed(t testing.TB, cfg Config) feed {
	ps := &touched{NewPatients(), map[string]bool{}}
	return feed{t, NewStream(NewEngine(cfg), ps), ps}
}

func (f feed) reading(patient string, kind schemas.Kind, v float64, s int) []schemas.Alert {
	spec, _ := schemas.SpecFor(kind)
	rd := schemas.Reading{PatientID: patient, DeviceID: "dev-" + patient, Kind: kind, Value: v, Unit: spec.Unit, TS: t0.Add(time.Duration(s) * time.Second), Seq: uint64(s)}
	return f.apply(Input{Arrival: rd.TS, Reading: &rd}) // arrives when it was measured
}

// readingArriving is reading with its own arrival time, in milliseconds
// from t0: a gateway's batch arrives at once.
func (f feed) readingArriving(patient string, kind schemas.Kind, v float64, s int, arriveMs int) []schemas.Alert {
	spec, _ := schemas.SpecFor(kind)
	rd := schemas.Reading{PatientID: patient, DeviceID: "dev-" + patient, Kind: kind, Value: v, Unit: spec.Unit, TS: t0.Add(time.Duration(s) * time.Second), Seq: uint64(s)}
	return f.apply(Input{Arrival: t0.Add(time.Duration(arriveMs) * time.Millisecond), Reading: &rd})
}

func (f feed) ack(a schemas.Alert, by string, s int) []schemas.Alert {
	ack := schemas.Ack{AlertID: a.AlertID, PatientID: a.PatientID, By: by, TS: t0.Add(time.Duration(s) * time.Second)}
	return f.apply(Input{Arrival: ack.TS, Acks: &schemas.AcksRecord{Ack: &ack}})
}

// apply applies one input and commits it; every state it reached must
// encode alike by hand and with encoding/json.
func (f feed) apply(in Input) []schemas.Alert {
	f.t.Helper()
	out := f.s.Apply(&in)
	checkStateEncoding(f.t, f.ps)
	f.s.Commit()
	return out
}

// tick fires the timers due at second s on every partition.
func (f feed) tick(s int) []schemas.Alert {
	f.t.Helper()
	clock := func(int32) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	due := f.s.Due(clock)
	out := f.s.Tick(clock)
	if due != (len(out) > 0) {
		f.t.Fatalf("second %d: Due said %v, Tick gave %d events", s, due, len(out))
	}
	checkStateEncoding(f.t, f.ps)
	f.s.Commit()
	return out
}

// restarted is a new feed whose patients are f's as the changelog has
// them (encoded and decoded), as a processor restarting or given the
// partition finds them: the stream times start again from the inputs
// that follow.
func (f feed) restarted() feed {
	f.t.Helper()
	g := newFeed(f.t, *f.s.Engine().Config())
	f.ps.Each(func(id string, p int32, st *PatientState) {
		b, err := AppendState(nil, st)
		if err != nil {
			f.t.Fatal(err)
		}
		var back PatientState
		if err := json.Unmarshal(b, &back); err != nil {
			f.t.Fatal(err)
		}
		g.ps.Put(id, p, &back)
	})
	g.s.Invalidate()
	return g
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
	f := newFeed(t, timerConfig())
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
	f := newFeed(t, timerConfig())
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
	f := newFeed(t, timerConfig())
	for s := range 6 {
		f.reading("P01", schemas.HeartRate, 80, s)
	}
	f.reading("P01", schemas.SpO2, 97, 5)
	got := f.reading("P01", schemas.SpO2, 97, 16)
	lost := one(t, "record at 16 s", got, "heart_rate_signal_lost", schemas.Raised)
	g := newFeed(t, timerConfig())
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
	f := newFeed(t, cfg)
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

// A news2 alert raised again at a higher band needs a new acknowledgement;
// a rising score within the band updates the alert in place (current
// score, same state, not a new alarm).
func TestNEWS2AckAndUpgrade(t *testing.T) {
	cfg := timerConfig()
	cfg.Default.Conditions = nil
	cfg.Default.SignalLost = nil
	cfg.Default.NEWS2 = true
	f := newFeed(t, cfg)
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
	f := newFeed(t, timerConfig())
	f.readingArriving("P01", schemas.HeartRate, 80, 0, 0)
	f.readingArriving("P01", schemas.HeartRate, 80, 1, 1000)
	for s := 2; s <= 120; s += 2 {
		if got := f.tick(s); len(got) != 0 {
			t.Fatalf("two readings a second apart armed signal lost: %+v", got)
		}
	}

	g := newFeed(t, timerConfig())
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

// Silence counts from the moment monitoring resumed only once the clock
// has reached it. The last batch of a replay is applied after that moment
// was set (the check that finds the partition caught up runs before it),
// and counting its silence from the wall clock, two hours ahead, kept its
// timers from firing by stream time: the events depended on where the
// last batch began (TestClinicalDeterministicOnATopic failed 4 times in 6
// under -race and CPU stress).
func TestSilenceDueBeforeAndAfterTheResume(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	s := Sample{At: at}
	resumed := at.Add(2 * time.Hour)
	for _, c := range []struct {
		name         string
		resumed, now time.Time
		want         time.Time
	}{
		{"a replay's backlog", time.Time{}, at.Add(3 * time.Second), at.Add(10 * time.Second)},
		{"the last batch of a replay, the resume already set", resumed, at.Add(3 * time.Second), at.Add(10 * time.Second)},
		{"after the resume: downtime is not the device's", resumed, resumed.Add(time.Second), resumed.Add(10 * time.Second)},
		{"a reading after the resume", resumed, resumed.Add(time.Minute), at.Add(10 * time.Second)},
	} {
		s := s
		if c.name == "a reading after the resume" {
			s.At = resumed.Add(50 * time.Second)
			c.want = s.At.Add(10 * time.Second)
		}
		if got := silenceDue(s, 10*time.Second, c.resumed, c.now); !got.Equal(c.want) {
			t.Errorf("%s: due %v, want %v", c.name, got.Sub(at), c.want.Sub(at))
		}
	}
}
