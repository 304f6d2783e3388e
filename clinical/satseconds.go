package clinical

// The clinical engine's SatSeconds: the integral of SpO2 below the limit
// that catches saturation hovering around it, and the resolution of its
// alarm once the integral decayed, with or without a next reading.

import (
	"math"
	"strconv"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// maxSatStep bounds how long one SpO2 reading counts for in the
// SatSeconds integral: a longer gap is missing data, not desaturation.
const maxSatStep = 15 * time.Second

// satSeconds integrates SpO2 below the limit (rs.SatSeconds).
func (c *Engine) satSeconds(st *PatientState, rs *RuleSet, rd *schemas.Reading, live bool, at time.Time) []schemas.Alert {
	r := rs.SatSeconds
	sat := st.Sat
	dt := min(maxSatStep, max(0, rd.TS.Sub(sat.TS)))
	if sat.TS.IsZero() {
		dt = 0
	}
	if depth := r.Limit - rd.Value; depth > 0 {
		sat.Run += depth * dt.Seconds()
	} else {
		if !c.spo2Alarmed(st) {
			sat.Sum += sat.Run
		}
		sat.Run = 0
		sat.Sum *= math.Exp(-dt.Seconds() / r.Tau.Seconds())
		if sat.Sum < 0.01 {
			sat.Sum = 0
		}
	}
	sat.TS = rd.TS
	st.Sat = sat
	const cond = "spo2_satseconds"
	cs := st.Conditions[cond]
	if !live {
		return nil
	}
	switch {
	case cs.Open == nil && sat.Sum >= r.Threshold:
		a := schemas.Alert{AlertID: schemas.AlertID(cond, rd), PatientID: rd.PatientID, Condition: cond, Priority: r.Priority,
			State: schemas.Raised, TS: rd.TS, Limit: r.Limit, Reading: *rd,
			Message: "repeated dips of spo2 below " + fmtValue(r.Limit) + " %: " + strconv.FormatFloat(sat.Sum, 'f', 0, 64) + " %·s (SatSeconds threshold " + fmtValue(r.Threshold) + ")"}
		st.Conditions[cond] = ConditionState{Open: &a, RaisedAt: at}
		return []schemas.Alert{a}
	case cs.Open != nil && sat.Sum < r.Threshold/2 && rd.Value >= r.Limit:
		a := *cs.Open
		a.State, a.TS, a.Reading, a.Updated, a.Silenced = schemas.Resolved, rd.TS, *rd, false, false
		a.Message = cond + " resolved: the integral fell below half the threshold"
		delete(st.Conditions, cond)
		return []schemas.Alert{c.latch(st, rs, cs.Open, a)}
	}
	return nil
}

// spo2Alarmed says whether a condition rule on SpO2 has an alarm open: a
// dip it alarmed on is not counted again by SatSeconds.
func (c *Engine) spo2Alarmed(st *PatientState) bool {
	for _, cond := range []string{"spo2_low", "spo2_critical"} {
		if st.Conditions[cond].Open != nil {
			return true
		}
	}
	return false
}

// satDue is when the open spo2_satseconds alarm resolves with no further
// reading: the integral, decaying with tau while SpO2 is back in range,
// falls below half the threshold at Sat.TS + tau × ln(2 × Sum /
// threshold), an event time known exactly. Zero while a dip goes on, or
// nothing is open.
func (c *Engine) satDue(st *PatientState, rs *RuleSet, resumed, now time.Time) (due, e time.Time) {
	r := rs.SatSeconds
	if r == nil || st.Conditions["spo2_satseconds"].Open == nil || st.Sat.Run > 0 || st.Sat.TS.IsZero() {
		return time.Time{}, time.Time{}
	}
	s, ok := st.Latest.Get(schemas.SpO2)
	if !ok || s.Value < r.Limit || !s.TS.Equal(st.Sat.TS) || !c.liveAt(s.TS, s.At) {
		return time.Time{}, time.Time{}
	}
	e = st.Sat.TS
	if st.Sat.Sum >= r.Threshold/2 {
		e = e.Add(time.Duration(r.Tau.Seconds() * math.Log(2*st.Sat.Sum/r.Threshold) * float64(time.Second)))
	}
	return holdDue(s.At, e.Sub(s.TS), resumed, now), e
}

// satTimers resolves the SatSeconds alarm whose integral decayed below
// half the threshold on a quiet partition. The integral itself is left
// as the last reading made it: the next reading decays it from there, as
// it would have without the timer.
func (c *Engine) satTimers(st *PatientState, rs *RuleSet, now, resumed, by time.Time) []schemas.Alert {
	due, e := c.satDue(st, rs, resumed, now)
	if due.IsZero() || by.Before(due) {
		return nil
	}
	const cond = "spo2_satseconds"
	cs := st.Conditions[cond]
	a := *cs.Open
	a.State, a.TS, a.Updated, a.Silenced = schemas.Resolved, e, false, false
	a.Reading.TS = e
	a.Message = cond + " resolved: the integral fell below half the threshold"
	delete(st.Conditions, cond)
	return []schemas.Alert{c.latch(st, rs, cs.Open, a)}
}
