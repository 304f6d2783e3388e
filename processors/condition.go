package processors

import (
	"strconv"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// ConditionRule is a per-vital limit that a nurse would trust: it raises
// only after the value has stayed beyond the limit for Delay (a brief
// artefact raises nothing), keeps exactly one open alert however the value
// oscillates, and resolves only after the value has stayed back in range
// for ResolveAfter (hysteresis). A critical limit is a rule with Delay 0.
type ConditionRule struct {
	Condition string
	Kind      schemas.Kind
	Below     bool
	Limit     float64
	// AsleepLimit, when set, replaces Limit while the patient's latest
	// sleep status is asleep: heart rate, respiration and blood pressure
	// are lower in sleep.
	AsleepLimit  *float64
	Priority     schemas.Priority
	Delay        time.Duration
	ResolveAfter time.Duration
}

// ConditionState is one patient's state for one rule. Times are event
// times of readings, so replaying the same readings gives the same result.
type ConditionState struct {
	// BeyondSince is the event time of the first reading of the current
	// run beyond the limit; zero while in range.
	BeyondSince time.Time `json:"beyond_since,omitzero"`
	// Open is the open alert, if any.
	Open *schemas.Alert `json:"open,omitempty"`
	// InRangeSince is when an open alert's value came back in range.
	InRangeSince time.Time `json:"in_range_since,omitzero"`
	// RaisedAt is the processor-clock time the open alert was raised (or
	// re-raised at a higher priority): escalation counts from it. The
	// rule itself never reads it.
	RaisedAt time.Time `json:"raised_at,omitzero"`
}

func (s *ConditionState) isZero() bool {
	return s.Open == nil && s.BeyondSince.IsZero() && s.InRangeSince.IsZero()
}

// limit returns the limit in force.
func (r *ConditionRule) limit(asleep bool) float64 {
	if asleep && r.AsleepLimit != nil {
		return *r.AsleepLimit
	}
	return r.Limit
}

func (r *ConditionRule) beyond(v float64, asleep bool) bool {
	if r.Below {
		return v < r.limit(asleep)
	}
	return v > r.limit(asleep)
}

// Step applies one reading of the rule's kind to st and returns the new
// state and the alert events it causes (none, raised or resolved). It is a
// pure function: no clock, no I/O.
func (r *ConditionRule) Step(st ConditionState, rd *schemas.Reading, asleep bool) (ConditionState, []schemas.Alert) {
	if rd.Kind != r.Kind {
		return st, nil
	}
	if r.beyond(rd.Value, asleep) {
		if st.BeyondSince.IsZero() || rd.TS.Before(st.BeyondSince) {
			st.BeyondSince = rd.TS
		}
		st.InRangeSince = time.Time{}
		if st.Open != nil || rd.TS.Sub(st.BeyondSince) < r.Delay {
			return st, nil
		}
		a := r.alert(rd, asleep)
		st.Open = &a
		return st, []schemas.Alert{a}
	}
	st.BeyondSince = time.Time{}
	if st.Open == nil {
		return st, nil
	}
	if st.InRangeSince.IsZero() {
		st.InRangeSince = rd.TS
	}
	if rd.TS.Sub(st.InRangeSince) < r.ResolveAfter {
		return st, nil
	}
	resolved := *st.Open
	resolved.State = schemas.Resolved
	resolved.TS = rd.TS
	resolved.Message = r.Condition + " resolved: " + string(rd.Kind) + " back in range since " + st.InRangeSince.UTC().Format(time.RFC3339)
	resolved.Reading = *rd
	return ConditionState{}, []schemas.Alert{resolved}
}

func (r *ConditionRule) alert(rd *schemas.Reading, asleep bool) schemas.Alert {
	side := "above"
	if r.Below {
		side = "below"
	}
	msg := string(rd.Kind) + " " + fmtValue(rd.Value) + " " + rd.Unit + " " + side + " " + fmtValue(r.limit(asleep))
	if r.Delay > 0 {
		msg += " for " + strconv.FormatFloat(r.Delay.Seconds(), 'f', -1, 64) + " s"
	}
	return schemas.Alert{
		AlertID:   schemas.AlertID(r.Condition, rd),
		PatientID: rd.PatientID,
		Condition: r.Condition,
		Priority:  r.Priority,
		State:     schemas.Raised,
		TS:        rd.TS,
		Limit:     r.limit(asleep),
		Message:   msg,
		Reading:   *rd,
	}
}
