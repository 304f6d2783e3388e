package clinical

// The clinical engine's NEWS2: the observation set scored from the
// patient's latest values (the chart itself is news2.go), the one news2
// alert kept by band (persistence, charted sets at once, resolution, the
// in-place update), and its waits on a quiet partition.

import (
	"fmt"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// isNEWS2Parameter says whether a reading of k can change the score; the
// score is evaluated on those readings only.
func isNEWS2Parameter(k schemas.Kind) bool {
	switch k {
	case schemas.RespRate, schemas.SpO2, schemas.O2Supplement, schemas.BPSystolic, schemas.HeartRate, schemas.Consciousness, schemas.Temperature:
		return true
	}
	return false
}

// news2Input gathers the parameters at most NEWS2MaxAge older than t;
// the caller has checked that the required ones are there. The values
// live in vals so that the input's pointers do not escape per parameter.
func (c *Config) news2Input(latest func(schemas.Kind) (float64, time.Time, bool), hypercapnic bool, t time.Time, vals *news2Values) NEWS2Input {
	fresh := func(k schemas.Kind) (float64, bool) {
		v, ts, ok := latest(k)
		if !ok || t.Sub(ts) > c.NEWS2MaxAge {
			return 0, false
		}
		return v, true
	}
	in := NEWS2Input{Hypercapnic: hypercapnic}
	var ok bool
	if vals.resp, ok = fresh(schemas.RespRate); ok {
		in.RespRate = &vals.resp
	}
	if vals.spo2, ok = fresh(schemas.SpO2); ok {
		in.SpO2 = &vals.spo2
	}
	if vals.sbp, ok = fresh(schemas.BPSystolic); ok {
		in.SystolicBP = &vals.sbp
	}
	if vals.pulse, ok = fresh(schemas.HeartRate); ok {
		in.Pulse = &vals.pulse
	}
	if vals.temp, ok = fresh(schemas.Temperature); ok {
		in.Temperature = &vals.temp
	}
	if v, ok := fresh(schemas.O2Supplement); ok {
		vals.on = v == 1
		in.OnOxygen = &vals.on
	}
	if v, ok := fresh(schemas.Consciousness); ok {
		vals.lvl = int(v)
		in.Consciousness = &vals.lvl
	}
	return in
}

type news2Values struct {
	resp, spo2, sbp, pulse, temp float64
	on                           bool
	lvl                          int
}

// news2 scores the patient's current observation set after rd, if it is
// complete. charted says rd is a charted value (see NEWS2SetWindow): when
// every required parameter was measured within the set window of it, the
// set is charted together and its band counts at once.
func (c *Engine) news2(st *PatientState, rs *RuleSet, rd *schemas.Reading, charted, live bool, at time.Time) []schemas.Alert {
	// Most readings of a monitored patient come without a complete set:
	// ask that first, directly, before building the input.
	for _, k := range c.cfg.NEWS2Require {
		s, ok := st.Latest.Get(k)
		if !ok || rd.TS.Sub(s.TS) > c.cfg.NEWS2MaxAge {
			return nil
		}
		if rd.TS.Sub(s.TS) > c.cfg.NEWS2SetWindow {
			charted = false
		}
	}
	n := &st.NEWS2
	if rd.TS.After(n.Clock) {
		n.Clock, n.ClockAt = rd.TS, at
	}
	return c.news2At(st, rs, rd, rd.TS, charted, live, at)
}

// news2At scores the set as of event time t and keeps the one news2
// alert: raised, or raised again in a worse band, once the band persisted
// for NEWS2Delay (a one-sample artefact or a short dip changes nothing)
// or at once for a set charted together; lowered or resolved once the
// score stayed lower for NEWS2ResolveAfter; updated in place, at most
// every NEWS2UpdateEvery, when the score changes within its band. cite is
// the reading the event names, stamped t. The caller has checked that the
// set is complete.
func (c *Engine) news2At(st *PatientState, rs *RuleSet, cite *schemas.Reading, t time.Time, charted, live bool, at time.Time) []schemas.Alert {
	var vals news2Values
	in := c.cfg.news2Input(func(k schemas.Kind) (float64, time.Time, bool) {
		s, ok := st.Latest.Get(k)
		return s.Value, s.TS, ok
	}, rs.Hypercapnic, t, &vals)
	n := &st.NEWS2
	now := n.Clock
	score := scoreNEWS2(in, false)
	prio, _ := score.Priority()
	rank := prio.Rank()
	persisted := 0
	for l := 1; l <= len(n.AtLeast); l++ {
		switch {
		case rank < l:
			n.AtLeast[l-1] = time.Time{}
		case n.AtLeast[l-1].IsZero():
			n.AtLeast[l-1] = now
		}
		if !n.AtLeast[l-1].IsZero() && now.Sub(n.AtLeast[l-1]) >= c.cfg.NEWS2Delay {
			persisted = l
		}
	}
	if charted {
		// RCP scores a complete set when it is charted: a nurse's
		// observations are no artefact to wait out.
		persisted = max(persisted, rank)
	}
	open := n.Open
	if !live {
		return nil
	}
	rd := cite
	switch {
	case open == nil && persisted > 0, open != nil && persisted > open.Priority.Rank():
		// New, or worse: raised (again: an acknowledgement of the lower
		// band does not cover this one), with the current score.
		id := schemas.AlertID("news2", rd)
		if open != nil {
			id = open.AlertID
		}
		a := news2Alert(rd, in, rankPriority(persisted), id, schemas.Raised)
		n.ConditionState = ConditionState{Open: &a, RaisedAt: at}
		n.Pending = false
		return []schemas.Alert{a}
	case open == nil:
		return nil
	case rank < open.Priority.Rank():
		// Better, but a score wobbling across a band boundary must not
		// flap the alarm: lower it only after it stayed lower a while.
		if n.InRangeSince.IsZero() {
			n.InRangeSince = now
		}
		if now.Sub(n.InRangeSince) < c.cfg.NEWS2ResolveAfter {
			return c.news2Update(n, rd, in, score)
		}
		n.Pending = false
		if rank > 0 {
			// Keeps its state: an acknowledged alert that improves needs
			// no second acknowledgement.
			a := news2Alert(rd, in, prio, open.AlertID, open.State)
			a.AckedBy, a.EscalationLevel, a.Notify = open.AckedBy, open.EscalationLevel, open.Notify
			n.Open, n.InRangeSince = &a, time.Time{}
			return []schemas.Alert{a}
		}
		a := news2Alert(rd, in, open.Priority, open.AlertID, schemas.Resolved)
		a.AckedBy, a.EscalationLevel, a.Notify = open.AckedBy, open.EscalationLevel, open.Notify
		n.ConditionState = ConditionState{}
		return []schemas.Alert{c.latch(st, rs, open, a)}
	}
	n.InRangeSince = time.Time{}
	return c.news2Update(n, rd, in, score)
}

// news2Update brings the open news2 alert's score up to date in place:
// same id, same state, no new raise and no new escalation. Within
// NEWS2UpdateEvery of the alert's last event the update waits (Pending),
// and a timer brings it when no reading does.
func (c *Engine) news2Update(n *NEWS2State, rd *schemas.Reading, in NEWS2Input, score NEWS2Score) []schemas.Alert {
	open := n.Open
	n.Pending = false
	if open.Score != nil && *open.Score == score.Total {
		return nil
	}
	if rd.TS.Sub(open.TS) < c.cfg.NEWS2UpdateEvery {
		n.Pending = true
		return nil
	}
	a := news2Alert(rd, in, open.Priority, open.AlertID, open.State)
	a.AckedBy, a.EscalationLevel, a.Notify, a.Silenced = open.AckedBy, open.EscalationLevel, open.Notify, open.Silenced
	a.Updated = true
	n.Open = &a
	return []schemas.Alert{a}
}

// news2Wait is the event time at which the news2 state's next wait ends
// with no further reading: a worse band's persistence, the lower band's
// resolve_after, or the pending in-place update; update says it is the
// update alone. Zero: none.
func (c *Engine) news2Wait(n *NEWS2State) (_ time.Time, update bool) {
	var first time.Time
	at := func(t time.Time) {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	openRank := 0
	if n.Open != nil {
		openRank = n.Open.Priority.Rank()
	}
	for l := openRank + 1; l <= len(n.AtLeast); l++ {
		if !n.AtLeast[l-1].IsZero() {
			at(n.AtLeast[l-1].Add(c.cfg.NEWS2Delay))
		}
	}
	if n.Open != nil && !n.InRangeSince.IsZero() {
		at(n.InRangeSince.Add(c.cfg.NEWS2ResolveAfter))
	}
	if n.Open != nil && n.Pending {
		if u := n.Open.TS.Add(c.cfg.NEWS2UpdateEvery); first.IsZero() || u.Before(first) {
			return u, true
		}
	}
	return first, false
}

// news2DueWait is news2Wait on the processor clock: the event time left
// after Clock, from ClockAt (holdDue). Zero when nothing waits, and when
// the readings scored last arrived too old to alarm.
//
// It comes with the event time the wait ends at, and whether it is the
// in-place update alone. resumed and now: see holdDue.
func (c *Engine) news2DueWait(st *PatientState, resumed, now time.Time) (due, e time.Time, update bool) {
	n := &st.NEWS2
	if n.Open == nil && n.AtLeast == [3]time.Time{} {
		return time.Time{}, time.Time{}, false // most patients: nothing waits
	}
	e, update = c.news2Wait(n)
	if e.IsZero() || n.ClockAt.IsZero() || !c.liveAt(n.Clock, n.ClockAt) {
		return time.Time{}, time.Time{}, false
	}
	if e.Before(n.Clock) {
		e = n.Clock
	}
	return holdDue(n.ClockAt, e.Sub(n.Clock), resumed, now), e, update
}

// news2Timers ends the news2 waits due by now on a quiet partition,
// earliest first: the set is scored as of the event time each wait ends
// at, with the values holding, so the event carries that time whenever
// the processor notices it. A set no longer complete then (a parameter
// older than NEWS2MaxAge) is not scored: its waits end unscored.
func (c *Engine) news2Timers(st *PatientState, rs *RuleSet, patient string, now, resumed, by time.Time) []schemas.Alert {
	if !rs.NEWS2 {
		return nil
	}
	var out []schemas.Alert
	n := &st.NEWS2
	for range 8 { // each pass ends a wait: at most three bands, a resolution, an update
		due, t, update := c.news2DueWait(st, resumed, now)
		if due.IsZero() || by.Before(due) {
			return out
		}
		// The score's clock moves to the end of a persistence or a
		// resolution wait; an in-place update only shows the score and
		// leaves it, or a reading arriving after it would count its band
		// from the update's time.
		clock, clockAt := n.Clock, n.ClockAt
		n.Clock, n.ClockAt = t, due
		var newest Sample
		var kind schemas.Kind
		complete := true
		for _, k := range c.cfg.NEWS2Require {
			if s, ok := st.Latest.Get(k); !ok || t.Sub(s.TS) > c.cfg.NEWS2MaxAge {
				complete = false
			}
		}
		for _, k := range news2Parameters {
			if s, ok := st.Latest.Get(k); ok && s.TS.After(newest.TS) {
				newest, kind = s, k
			}
		}
		if !complete || kind == "" {
			n.AtLeast, n.InRangeSince, n.Pending = [3]time.Time{}, time.Time{}, false
			return out
		}
		cite := schemas.Reading{PatientID: patient, DeviceID: newest.Device, Kind: kind, Value: newest.Value,
			Unit: unitOf(kind), TS: t, Seq: newest.Seq}
		out = append(out, c.silence(st, c.news2At(st, rs, &cite, t, false, true, due))...)
		if update {
			n.Clock, n.ClockAt = clock, clockAt
		}
	}
	return out
}

func rankPriority(rank int) schemas.Priority {
	switch rank {
	case 3:
		return schemas.High
	case 2:
		return schemas.Medium
	case 1:
		return schemas.Low
	}
	return ""
}

func news2Alert(rd *schemas.Reading, in NEWS2Input, prio schemas.Priority, id string, state schemas.State) schemas.Alert {
	s := ScoreNEWS2(in)
	total := s.Total
	msg := fmt.Sprintf("NEWS2 %d (%s risk: %s)", s.Total, s.Band, s.Response())
	if len(s.Missing) > 0 {
		msg += fmt.Sprintf("; %d parameter(s) missing, so at least this", len(s.Missing))
	}
	return schemas.Alert{AlertID: id, PatientID: rd.PatientID, Condition: "news2", Priority: prio, State: state, TS: rd.TS,
		Limit: 0, Message: msg, Reading: *rd, Score: &total, Components: s.Components}
}
