package processors

import (
	"math"
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
	// Abs compares the magnitude: beyond is |value| > Limit (the ST
	// deviation, elevation or depression).
	Abs   bool
	Limit float64
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
	// Level counts the open alert's escalations; EscalatedAt is the
	// deadline of the last one, from which the next tier counts.
	Level       int       `json:"level,omitempty"`
	EscalatedAt time.Time `json:"escalated_at,omitzero"`
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
	switch {
	case r.Abs:
		return math.Abs(v) > r.limit(asleep)
	case r.Below:
		return v < r.limit(asleep)
	}
	return v > r.limit(asleep)
}

// point is one reading of a kind within the reorder window: what the
// rules need to place a reading that arrives out of order.
type point struct {
	TS time.Time
	V  float64
}

// Step applies one in-order reading of the rule's kind to st and returns
// the new state and the alert events it causes (none, raised or
// resolved). It is a pure function: no clock, no I/O.
func (r *ConditionRule) Step(st ConditionState, rd *schemas.Reading, asleep bool) (ConditionState, []schemas.Alert) {
	if rd.Kind != r.Kind {
		return st, nil
	}
	return r.step(st, rd, []point{{rd.TS, rd.Value}}, asleep, true)
}

// step applies rd given recent, the kind's readings within the reorder
// window in event-time order (rd among them). A reading older than the
// newest is placed by its event time: it joins or breaks the run of
// readings beyond the limit (and the run back in range) only where it
// belongs, so an in-range reading stamped before a desaturation began no
// longer restarts its persistence delay. live is false for a reading too
// old to alarm: it updates the runs, and the next live reading acts on
// them.
func (r *ConditionRule) step(st ConditionState, rd *schemas.Reading, recent []point, asleep, live bool) (ConditionState, []schemas.Alert) {
	beyond := r.beyond(rd.Value, asleep)
	newest := recent[len(recent)-1].TS
	if !rd.TS.Before(newest) {
		if beyond {
			if st.BeyondSince.IsZero() {
				st.BeyondSince = rd.TS
			}
			st.InRangeSince = time.Time{}
		} else {
			st.BeyondSince = time.Time{}
			if st.Open != nil && st.InRangeSince.IsZero() {
				st.InRangeSince = rd.TS
			}
		}
	} else {
		isBeyond := func(p point) bool { return r.beyond(p.V, asleep) }
		st.BeyondSince = runStart(recent, rd.TS, st.BeyondSince, isBeyond)
		if st.Open != nil {
			st.InRangeSince = runStart(recent, rd.TS, st.InRangeSince, func(p point) bool { return !isBeyond(p) })
		}
	}
	if !live {
		return st, nil
	}
	switch {
	case beyond && st.Open == nil && !st.BeyondSince.IsZero() && newest.Sub(st.BeyondSince) >= r.Delay:
		a := r.alert(rd, asleep)
		st.Open = &a
		return st, []schemas.Alert{a}
	case !beyond && st.Open != nil && !st.InRangeSince.IsZero() && newest.Sub(st.InRangeSince) >= r.ResolveAfter:
		resolved := *st.Open
		resolved.State = schemas.Resolved
		resolved.TS = rd.TS
		resolved.Message = r.Condition + " resolved: " + string(rd.Kind) + " back in range since " + st.InRangeSince.UTC().Format(time.RFC3339)
		resolved.Reading = *rd
		return ConditionState{}, []schemas.Alert{resolved}
	}
	return st, nil
}

// runStart is where the run of readings satisfying pred that ends at the
// newest reading starts, after a reading at t (older than the newest) was
// placed in recent: the first reading satisfying pred after the last one
// at or after t that does not; or, if every reading from t on satisfies
// it, the earlier of t and old (the run as it stood). Zero: no run. Every
// reading at or after t is in recent, since t is within the window.
func runStart(recent []point, t, old time.Time, pred func(point) bool) time.Time {
	for i := len(recent) - 1; i >= 0 && !recent[i].TS.Before(t); i-- {
		if pred(recent[i]) {
			continue
		}
		for j := i + 1; j < len(recent); j++ {
			if pred(recent[j]) {
				return recent[j].TS
			}
		}
		return time.Time{}
	}
	if old.IsZero() || t.Before(old) {
		return t
	}
	return old
}

func (r *ConditionRule) alert(rd *schemas.Reading, asleep bool) schemas.Alert {
	side := "above"
	switch {
	case r.Abs:
		side = "beyond ±"
	case r.Below:
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
