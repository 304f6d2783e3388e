package clinical

import (
	"testing"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func spo2Rule() ConditionRule {
	return ConditionRule{Condition: "spo2_low", Kind: schemas.SpO2, Below: true, Limit: 90, Priority: schemas.High,
		Delay: 15 * time.Second, ResolveAfter: 30 * time.Second}
}

// series feeds values one second apart and returns every event with the
// second it happened at.
func series(r ConditionRule, asleep bool, values ...float64) (ConditionState, map[int]schemas.State) {
	var st ConditionState
	events := map[int]schemas.State{}
	for s, v := range values {
		rd := schemas.Reading{PatientID: "P1", DeviceID: "D1", Kind: r.Kind, Value: v, Unit: "%", TS: t0.Add(time.Duration(s) * time.Second), Seq: uint64(s)}
		var out []schemas.Alert
		st, out = r.Step(st, &rd, asleep)
		for _, a := range out {
			if _, dup := events[s]; dup {
				panic("two events at one reading")
			}
			events[s] = a.State
		}
	}
	return st, events
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func join(parts ...[]float64) []float64 {
	var out []float64
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestConditionPersistenceDelay(t *testing.T) {
	// 14 s below the limit: a brief dip, no alarm.
	if _, ev := series(spo2Rule(), false, join(repeat(97, 3), repeat(85, 15), repeat(97, 5))...); len(ev) != 0 {
		t.Fatalf("a 14 s dip raised %v", ev)
	}
	// Sustained: one alert, at the reading 15 s after the first low one.
	st, ev := series(spo2Rule(), false, join(repeat(97, 3), repeat(85, 40))...)
	if len(ev) != 1 || ev[18] != schemas.Raised || st.Open == nil {
		t.Fatalf("sustained desaturation: events %v", ev)
	}
}

func TestConditionOneOpenAlertWhileOscillating(t *testing.T) {
	// Low for 20 s, then alternating around the limit for a minute: still
	// the one alert raised at 15 s, never repeated, never resolved.
	var osc []float64
	for i := range 60 {
		osc = append(osc, []float64{88, 91}[i%2])
	}
	st, ev := series(spo2Rule(), false, join(repeat(85, 20), osc)...)
	if len(ev) != 1 || ev[15] != schemas.Raised || st.Open == nil {
		t.Fatalf("events %v", ev)
	}
}

func TestConditionHysteresis(t *testing.T) {
	// In range for 29 s does not resolve; 30 s does, once.
	_, ev := series(spo2Rule(), false, join(repeat(85, 20), repeat(95, 30))...)
	if len(ev) != 1 {
		t.Fatalf("resolved before 30 s in range: %v", ev)
	}
	st, ev := series(spo2Rule(), false, join(repeat(85, 20), repeat(95, 31), repeat(95, 10))...)
	if len(ev) != 2 || ev[15] != schemas.Raised || ev[50] != schemas.Resolved || st.Open != nil {
		t.Fatalf("events %v", ev)
	}
	// A relapse inside the window restarts it: no resolve, no new alert.
	_, ev = series(spo2Rule(), false, join(repeat(85, 20), repeat(95, 20), repeat(85, 2), repeat(95, 29))...)
	if len(ev) != 1 {
		t.Fatalf("relapse: %v", ev)
	}
}

func TestCriticalLimitRaisesAtOnce(t *testing.T) {
	r := ConditionRule{Condition: "spo2_critical", Kind: schemas.SpO2, Below: true, Limit: 80, Priority: schemas.High, ResolveAfter: 30 * time.Second}
	_, ev := series(r, false, 97, 97, 78)
	if len(ev) != 1 || ev[2] != schemas.Raised {
		t.Fatalf("events %v", ev)
	}
}

func TestSleepShiftsTheLimit(t *testing.T) {
	asleep := 40.0
	r := ConditionRule{Condition: "heart_rate_low", Kind: schemas.HeartRate, Below: true, Limit: 50, AsleepLimit: &asleep,
		Priority: schemas.Medium, Delay: 10 * time.Second, ResolveAfter: 30 * time.Second}
	if _, ev := series(r, true, repeat(45, 30)...); len(ev) != 0 {
		t.Fatalf("45/min asleep raised %v", ev)
	}
	if _, ev := series(r, false, repeat(45, 30)...); len(ev) != 1 {
		t.Fatalf("45/min awake raised %v", ev)
	}
}

func TestConditionStepIsDeterministic(t *testing.T) {
	vals := join(repeat(85, 20), repeat(95, 40))
	rule := spo2Rule()
	var ids [2][]string
	for run := range 2 {
		var st ConditionState
		for s, v := range vals {
			rd := schemas.Reading{PatientID: "P1", DeviceID: "D1", Kind: schemas.SpO2, Value: v, Unit: "%", TS: t0.Add(time.Duration(s) * time.Second), Seq: uint64(s)}
			var out []schemas.Alert
			st, out = rule.Step(st, &rd, false)
			for _, a := range out {
				ids[run] = append(ids[run], a.AlertID+string(a.State))
			}
		}
	}
	if len(ids[0]) != 2 || ids[0][0] != ids[1][0] || ids[0][1] != ids[1][1] {
		t.Fatalf("runs differ: %v", ids)
	}
}

func BenchmarkConditionStep(b *testing.B) {
	r := spo2Rule()
	rd := schemas.Reading{PatientID: "P1", DeviceID: "D1", Kind: schemas.SpO2, Value: 95, Unit: "%", TS: t0, Seq: 1}
	var st ConditionState
	b.ReportAllocs()
	for b.Loop() {
		st, _ = r.Step(st, &rd, false)
	}
}
