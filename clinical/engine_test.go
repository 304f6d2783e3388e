package clinical

import (
	"testing"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

func testClinicalConfig() Config {
	return Config{Default: RuleSet{Conditions: []ConditionRule{spo2Rule()}}, NEWS2MaxAge: time.Hour, NEWS2ResolveAfter: time.Minute}
}

// applyNow applies a reading that arrives at its own ts.
func applyNow(e *Engine, st *PatientState, rd *schemas.Reading) []schemas.Alert {
	return e.Reading(st, rd, rd.TS)
}

// desat returns SpO2 readings of 85 % for patient P01, one a second, for
// seconds [from, to).
func desat(from, to int) []schemas.Reading {
	var rs []schemas.Reading
	for s := from; s < to; s++ {
		rs = append(rs, schemas.Reading{PatientID: "P01", DeviceID: "ox1", Kind: schemas.SpO2, Value: 85, Unit: "%", TS: t0.Add(time.Duration(s) * time.Second), Seq: uint64(s)})
	}
	return rs
}

// Without restoring, the same handover would alert late or never: the
// test above can fail.
func TestClinicalWithoutRestoreStartsOver(t *testing.T) {
	h := NewEngine(testClinicalConfig())
	st := (&PatientState{}).Clone()
	var n int
	for _, rd := range desat(10, 21) { // a fresh state sees only 10–20
		n += len(applyNow(h, st, &rd))
	}
	if n != 0 {
		t.Fatalf("a fresh state raised %d alerts within 11 s", n)
	}
}

func TestClinicalNEWS2(t *testing.T) {
	h := NewEngine(Config{Default: RuleSet{NEWS2: true}, NEWS2MaxAge: time.Hour, NEWS2ResolveAfter: time.Minute})
	st := (&PatientState{}).Clone()
	obs := func(s int, k schemas.Kind, v float64) []schemas.Alert {
		spec, _ := schemas.SpecFor(k)
		rd := schemas.Reading{PatientID: "P01", DeviceID: "obs", Kind: k, Value: v, Unit: spec.Unit, TS: t0.Add(time.Duration(s) * time.Second), Seq: uint64(s)}
		return applyNow(h, st, &rd)
	}
	// Normal observations: nothing.
	for i, o := range []struct {
		k schemas.Kind
		v float64
	}{{schemas.RespRate, 16}, {schemas.SpO2, 97}, {schemas.O2Supplement, 0}, {schemas.BPSystolic, 120}, {schemas.HeartRate, 70}, {schemas.Consciousness, 0}, {schemas.Temperature, 37}} {
		if a := obs(i, o.k, o.v); len(a) != 0 {
			t.Fatalf("normal observations raised %+v", a)
		}
	}
	// Resp 26 (3) + pulse 135 (3) + new confusion (3) = 9: high.
	obs(10, schemas.RespRate, 26)
	obs(11, schemas.HeartRate, 135)
	a := obs(12, schemas.Consciousness, 1)
	if len(a) != 1 || a[0].Condition != "news2" || a[0].Priority != schemas.High || a[0].Score == nil || *a[0].Score != 9 || a[0].Components["consciousness"] != 3 {
		t.Fatalf("news2 alert: %+v", a)
	}
	id := a[0].AlertID
	// Still high: no repeat.
	if a := obs(13, schemas.HeartRate, 140); len(a) != 0 {
		t.Fatalf("repeated: %+v", a)
	}
	// Wobbling across the 7/6 boundary does not flap the alarm.
	obs(14, schemas.Consciousness, 0) // 6: medium
	obs(15, schemas.Consciousness, 1) // 9: high again
	// (The open alert shows the current score, in place: same state.)
	if a := obs(16, schemas.Consciousness, 0); len(a) != 1 || !a[0].Updated || a[0].State != schemas.Raised || *a[0].Score != 6 || a[0].Priority != schemas.High {
		t.Fatalf("flapped: %+v", a)
	}
	// Back to normal for a minute: resolved, same id.
	obs(20, schemas.RespRate, 16)
	obs(21, schemas.HeartRate, 70)
	if a := obs(82, schemas.Temperature, 37); len(a) != 1 || a[0].State != schemas.Resolved || a[0].AlertID != id {
		t.Fatalf("resolve: %+v", a)
	}
}
