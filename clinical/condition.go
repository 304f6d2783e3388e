package clinical

import (
	"math"
	"slices"
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
	// Closed is the event time of the rule's last resolution while a
	// reading before it can still be placed: such a reading belongs to
	// the episode that ended, and raises nothing again.
	Closed time.Time `json:"closed,omitzero"`
	// Head is where the run holding the first reading of the kept window
	// (at HeadAt) began, when that was before it: a run whose first
	// readings left the window is evaluated from its real start. Before,
	// it was taken to start at the window's first reading, and a late
	// reading re-evaluating it raised an alarm that its resolution had
	// already ended (found by the reference model).
	Head   time.Time `json:"head,omitzero"`
	HeadAt time.Time `json:"head_at,omitzero"`
}

func (s *ConditionState) isZero() bool {
	return s.Open == nil && s.BeyondSince.IsZero() && s.InRangeSince.IsZero() && s.Closed.IsZero() && s.Head.IsZero()
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
	return r.step(st, rd, []point{{rd.TS, rd.Value}}, rd.TS, 0, asleep, true)
}

// step evaluates the rule over recent, the kind's readings within the
// reorder window in event-time order (the reading just placed among them),
// up to horizon, the event time the kind's data is known to: its newest
// reading's, or later on a quiet partition (timers.go). cite is the
// reading an event names (its device and sequence; its value and time are
// the event's own). live is false for a reading too old to alarm: it
// updates the runs, and the next live reading acts on them.
//
// The rule, in event time: a reading's value holds until the next reading
// of its kind. A run of values beyond the limit that has lasted Delay
// raises the alarm at its start plus Delay, and a run back in range that
// has lasted ResolveAfter resolves it at its start plus ResolveAfter,
// wherever in the window the reading that completes the run arrives: in
// order, behind a newer one, or buffered through an outage. A closed
// run (a reading in range follows it) must have lasted longer than the
// wait, since at its end the value is back; the run at the horizon, the
// wait itself. What was raised or resolved is never taken back: a reading
// that arrives after the event and would have changed it (an artefact
// inside a run that already alarmed) does not withdraw the alarm, which
// then resolves as the later readings say; and a reading placed at or
// before the last resolution (Closed) belongs to the episode that ended.
func (r *ConditionRule) step(st ConditionState, cite *schemas.Reading, recent []point, horizon time.Time, window time.Duration, asleep, live bool) (ConditionState, []schemas.Alert) {
	var evs []schemas.Alert
	open := st.Open
	// The open alarm's raise, in event time: an alarm is resolved only by
	// a run in range after it. Its reading carries that time (older
	// snapshots: the reading that raised it, the same time).
	var raisedTS time.Time
	if open != nil {
		raisedTS = open.Reading.TS
	}
	var beyondSince, inRangeSince, head, headAt time.Time
	kept := keptFrom(recent, window) // the first reading the state keeps
	for i := 0; i < len(recent); {
		b := r.beyond(recent[i].V, asleep)
		j := i
		for j+1 < len(recent) && r.beyond(recent[j+1].V, asleep) == b {
			j++
		}
		from := recent[i].TS
		if i == 0 {
			// The first run may have begun before the window: the run at
			// the head of the window kept last time did, if it holds that
			// head still (Head), and so did the run that ended at the
			// newest reading (snapshots written before Head).
			if !st.Head.IsZero() && st.Head.Before(from) && slices.ContainsFunc(recent[:j+1], func(p point) bool { return p.TS.Equal(st.HeadAt) }) {
				from = st.Head
			}
			if old := st.BeyondSince; b && !old.IsZero() && old.Before(from) {
				from = old
			}
			if old := st.InRangeSince; !b && !old.IsZero() && old.Before(from) {
				from = old
			}
		}
		if i <= kept && kept <= j {
			// This run holds the head of the window the state keeps:
			// remember where it began, for when its first points are gone.
			head, headAt = from, recent[kept].TS
		}
		end, closed := horizon, j+1 < len(recent)
		if closed {
			end = recent[j+1].TS
		}
		lasted := func(from time.Time, wait time.Duration) bool {
			if closed {
				return end.Sub(from) > wait
			}
			return !end.Before(from.Add(wait))
		}
		switch {
		case b && open == nil:
			at := from.Add(r.Delay)
			if !at.After(st.Closed) {
				// The run began inside the episode that ended at Closed:
				// only its readings after Closed can raise again.
				k := i
				for k <= j && !recent[k].TS.After(st.Closed) {
					k++
				}
				if k > j {
					break
				}
				at = recent[k].TS
			}
			if live && lasted(from, r.Delay) {
				a := r.alert(cite, valueAt(recent, at), at, asleep)
				open, raisedTS = &a, at
				evs = append(evs, a)
			}
		case !b && open != nil:
			if !end.After(raisedTS) {
				break
			}
			if from.Before(raisedTS) {
				from = raisedTS
			}
			if live && lasted(from, r.ResolveAfter) {
				resolved := *open
				resolved.State, resolved.Updated, resolved.Silenced = schemas.Resolved, false, false
				resolved.TS = from.Add(r.ResolveAfter)
				resolved.Message = r.Condition + " resolved: " + string(r.Kind) + " back in range since " + from.UTC().Format(time.RFC3339)
				resolved.Reading = *cite
				resolved.Reading.TS, resolved.Reading.Value = resolved.TS, valueAt(recent, resolved.TS)
				evs = append(evs, resolved)
				open, st.Closed = nil, resolved.TS
				st.RaisedAt, st.Level, st.EscalatedAt = time.Time{}, 0, time.Time{}
			}
		}
		if !closed {
			if b {
				beyondSince = from
			} else if open != nil {
				inRangeSince = from
			}
		}
		i = j + 1
	}
	st.Open, st.BeyondSince, st.InRangeSince = open, beyondSince, inRangeSince
	st.Head, st.HeadAt = time.Time{}, time.Time{}
	if head.Before(headAt) {
		st.Head, st.HeadAt = head, headAt
	}
	return st, evs
}

// valueAt is the value holding at t: that of the last reading at or
// before it (the first reading, if none is).
func valueAt(recent []point, t time.Time) float64 {
	v := recent[0].V
	for _, p := range recent {
		if p.TS.After(t) {
			break
		}
		v = p.V
	}
	return v
}

// due is when, in event time, the rule's next wait ends with no further
// reading: the raise of the run beyond the limit at the horizon, or the
// resolution of the open alarm's run back in range. Zero: none pending
// (or a resolution by the next reading in range, which needs one).
func (r *ConditionRule) due(st *ConditionState) time.Time {
	switch {
	case st.Open == nil && !st.BeyondSince.IsZero():
		if at := st.BeyondSince.Add(r.Delay); at.After(st.Closed) {
			return at
		}
	case st.Open != nil && !st.InRangeSince.IsZero() && r.ResolveAfter > 0:
		return st.InRangeSince.Add(r.ResolveAfter)
	}
	return time.Time{}
}

// alert is the rule's alarm raised at event time at, on value v, citing
// rd's device and sequence.
func (r *ConditionRule) alert(rd *schemas.Reading, v float64, at time.Time, asleep bool) schemas.Alert {
	cited := *rd
	cited.TS, cited.Value = at, v
	rd = &cited
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
