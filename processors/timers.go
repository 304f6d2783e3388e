package processors

// The clinical engine's timers, on the processor clock (clock.go): signal
// lost for a vital that stopped arriving, escalation of an alert nobody
// acknowledged.

import (
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/schemas"
)

// deadline is the earliest time on the processor clock at which one of the
// patient's timers fires; zero if none is pending. resumed is when this
// processor caught up with the patient's partition after it started or
// was given the partition (zero while it has a backlog): see silentSince.
func (c *Clinical) deadline(st *PatientState, rs *RuleSet, resumed time.Time) time.Time {
	var first time.Time
	at := func(t time.Time) {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	for i := range rs.SignalLost {
		sl := &rs.SignalLost[i]
		if s, ok := st.Latest.Get(sl.Kind); ok && sl.armed(s) && st.Conditions[SignalLostCondition(sl.Kind)].Open == nil {
			at(silentSince(s, resumed).Add(sl.After))
		}
	}
	for _, cs := range st.Conditions {
		at(escalationDue(&cs, rs))
	}
	at(escalationDue(&st.NEWS2, rs))
	at(c.expiry(st))
	return first
}

// expiry is when the patient's state expires: after ExpireIdle without a
// reading, or after ExpireUnestablished for a patient whose devices never
// kept a cadence for a minute and who has no open alert (an id a request
// invented, a typo). Zero for a state with no reading.
func (c *Clinical) expiry(st *PatientState) time.Time {
	last := lastArrival(st)
	if last.IsZero() {
		return time.Time{}
	}
	established := false
	for i := range st.Latest {
		s := &st.Latest[i]
		if !s.TS.IsZero() && (s.Since.IsZero() || s.At.Sub(s.Since) >= time.Minute) {
			established = true
		}
	}
	if !established && !st.hasOpenAlert() && c.cfg.ExpireUnestablished > 0 {
		return last.Add(c.cfg.ExpireUnestablished)
	}
	if c.cfg.ExpireIdle > 0 {
		return last.Add(c.cfg.ExpireIdle)
	}
	return time.Time{}
}

// hasOpenAlert says whether any of the patient's alerts is open.
func (s *PatientState) hasOpenAlert() bool {
	if s.NEWS2.Open != nil {
		return true
	}
	for _, cs := range s.Conditions {
		if cs.Open != nil {
			return true
		}
	}
	return false
}

// expire ends the monitoring of a patient whose state expired at due: each
// open alert is resolved, saying why, and the state is emptied, so the
// commit deletes it and the changelog gets a tombstone.
func expire(st *PatientState, due time.Time, idle time.Duration) []schemas.Alert {
	var out []schemas.Alert
	end := func(cs *ConditionState) {
		if cs.Open == nil {
			return
		}
		a := *cs.Open
		a.State, a.TS = schemas.Resolved, due
		a.Message = "monitoring of the patient ended: no reading for " + idle.String() + " (" + a.Message + ")"
		out = append(out, a)
	}
	for _, cond := range slices.Sorted(maps.Keys(st.Conditions)) {
		cs := st.Conditions[cond]
		end(&cs)
	}
	end(&st.NEWS2)
	*st = PatientState{}
	return out
}

// silentSince is when silence of s's kind began as far as a device can be
// blamed: its last arrival, or, if later, when the processor caught up
// after a start. Platform downtime is not a device failure: a ward whose
// monitoring stopped for ten seconds got a signal-lost alarm for every
// patient at the restart, each blaming the patient's device. From the
// restart on, a device has the rule's whole After to be heard again.
func silentSince(s Sample, resumed time.Time) time.Time {
	if resumed.After(s.At) {
		return resumed
	}
	return s.At
}

// armed says whether silence of s's kind would be a lost signal: the
// device has an established cadence, more often than the rule's After.
// The last two deliveries (a gateway's batch is one) arrived closer than
// After, and the current run of deliveries has lasted half of After at
// least. A vital charted every few minutes by a nurse is never "lost" by
// a 15 s rule; nor is one sent once, or by a request that invents a
// thousand patients with a reading or two each (each raised a signal-lost
// alarm before); and a gateway that posts five readings every five seconds
// arms the rule on its second post (before, its readings shared an
// arrival time and it never armed).
func (sl *SignalLostRule) armed(s Sample) bool {
	return !s.At.IsZero() && s.Gap > 0 && s.Gap < sl.After && s.At.Sub(s.Since) >= sl.After/2
}

func escalationDue(cs *ConditionState, rs *RuleSet) time.Time {
	if cs.Open == nil || cs.Open.State != schemas.Raised || cs.RaisedAt.IsZero() {
		return time.Time{}
	}
	after := rs.Escalation[cs.Open.Priority]
	if after <= 0 {
		return time.Time{}
	}
	return cs.RaisedAt.Add(after)
}

// timers fires the patient's timers due by now: signal lost for a vital
// that stopped arriving, escalation of an alert nobody acknowledged. Each
// event carries the deadline that passed as its ts, not the moment it was
// noticed, so a replay that notices it at another moment emits the same
// event.
func (c *Clinical) timers(st *PatientState, rs *RuleSet, patient string, now, resumed time.Time) []schemas.Alert {
	if d := c.deadline(st, rs, resumed); d.IsZero() || now.Before(d) {
		return nil
	}
	var out []schemas.Alert
	for i := range rs.SignalLost {
		sl := &rs.SignalLost[i]
		cond := SignalLostCondition(sl.Kind)
		s, ok := st.Latest.Get(sl.Kind)
		if !ok || !sl.armed(s) || st.Conditions[cond].Open != nil {
			continue
		}
		since := silentSince(s, resumed)
		due := since.Add(sl.After)
		if now.Before(due) {
			continue
		}
		last := schemas.Reading{PatientID: patient, DeviceID: s.Device, Kind: sl.Kind, Value: s.Value,
			Unit: unitOf(sl.Kind), TS: s.TS, Seq: s.Seq}
		msg := "no " + string(sl.Kind) + " from device " + s.Device + " for " + sl.After.String()
		if since != s.At {
			msg += " since monitoring resumed at " + since.UTC().Format(time.RFC3339) + " (last reading at " + s.At.UTC().Format(time.RFC3339) + ")"
		}
		a := schemas.Alert{AlertID: schemas.AlertID(cond, &last), PatientID: patient, Condition: cond,
			Priority: sl.Priority, State: schemas.Raised, TS: due, Limit: sl.After.Seconds(),
			Message: msg, Reading: last}
		st.Conditions[cond] = ConditionState{Open: &a, RaisedAt: due}
		out = append(out, a)
	}
	escalate := func(cs *ConditionState) {
		due := escalationDue(cs, rs)
		if due.IsZero() || now.Before(due) {
			return
		}
		a := *cs.Open
		a.State, a.TS = schemas.Escalated, due
		a.Message = "not acknowledged within " + rs.Escalation[a.Priority].String() + ": " + a.Message
		cs.Open = &a
		out = append(out, a)
	}
	for _, cond := range slices.Sorted(maps.Keys(st.Conditions)) {
		cs := st.Conditions[cond]
		escalate(&cs)
		st.Conditions[cond] = cs
	}
	escalate(&st.NEWS2)
	if due := c.expiry(st); !due.IsZero() && !now.Before(due) {
		out = append(out, expire(st, due, due.Sub(lastArrival(st)))...)
	}
	return out
}

// lastArrival is the latest arrival of any of the patient's readings.
func lastArrival(st *PatientState) time.Time {
	var last time.Time
	for i := range st.Latest {
		if st.Latest[i].At.After(last) {
			last = st.Latest[i].At
		}
	}
	return last
}

// Due reports whether a patient's timer is due by clock(partition).
func (c *Clinical) Due(clock func(partition int32) time.Time) bool {
	return len(c.due(clock)) > 0
}

func (c *Clinical) due(clock func(partition int32) time.Time) []string {
	var ids []string
	c.store.each(func(id string, partition int32, st *PatientState) {
		if d := c.deadline(st, c.cfg.For(id), c.resumed(partition)); !d.IsZero() && !clock(partition).Before(d) {
			ids = append(ids, id)
		}
	})
	slices.Sort(ids)
	return ids
}

// Tick fires every timer due by clock(partition) of the patient's
// partition, for the patients no record has touched lately: a device that
// went quiet, an alert nobody acknowledged. It runs inside a transaction,
// like Handle.
func (c *Clinical) Tick(clock func(partition int32) time.Time) ([]*kgo.Record, error) {
	var alerts []schemas.Alert
	for _, id := range c.due(clock) {
		p := c.store.partitionOf(id)
		st := c.store.get(id, p, false)
		alerts = append(alerts, c.timers(st, c.cfg.For(id), id, clock(p), c.resumed(p))...)
	}
	return c.records(alerts)
}
