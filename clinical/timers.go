package clinical

// The clinical engine's timers, on the processor clock (clock.go): signal
// lost for a vital that stopped arriving, escalation of an alert nobody
// acknowledged, and the rules' waits that no reading ends on a quiet
// partition (a condition's delay and resolve_after, NEWS2's and
// SatSeconds'), each carrying the event time it ended at.

import (
	"maps"
	"slices"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// deadline is the earliest time on the processor clock, from now on, at
// which one of the patient's timers can fire; zero if none is pending.
// resumed is when this processor caught up with the patient's partition
// after it started or was given the partition (zero before): see
// silenceDue.
func (c *Engine) deadline(st *PatientState, rs *RuleSet, resumed, now time.Time) time.Time {
	var first time.Time
	at := func(t time.Time) {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	for i := range rs.SignalLost {
		sl := &rs.SignalLost[i]
		// The map lookup last: the cheap checks settle most readings.
		if s, ok := st.Latest.Get(sl.Kind); ok && sl.armed(s) && st.Conditions[SignalLostCondition(sl.Kind)].Open == nil {
			at(silenceDue(s, sl.After, resumed, now))
		}
	}
	// One pass over the patient's condition states, usually none or a
	// few; the rule of a state is looked up only then (this runs after
	// every record).
	for cond, cs := range st.Conditions {
		at(escalationDue(&cs, rs, resumed, now))
		if rule := rs.condition(cond); rule != nil {
			d, _ := c.conditionDue(st, rule, &cs, resumed, now)
			at(d)
		}
	}
	at(escalationDue(&st.NEWS2.ConditionState, rs, resumed, now))
	d, _, _ := c.news2DueWait(st, resumed, now)
	at(d)
	d, _ = c.satDue(st, rs, resumed, now)
	at(d)
	at(c.expiry(st))
	return first
}

// expiry is when the patient's state expires: after ExpireIdle without a
// reading, or after ExpireUnestablished for a patient whose devices never
// kept a cadence for a minute and who has no open alert (an id a request
// invented, a typo). Zero for a state with no reading.
func (c *Engine) expiry(st *PatientState) time.Time {
	// One pass for both: expiry is computed for every record.
	var last time.Time
	established := false
	for i := range st.Latest {
		s := &st.Latest[i]
		if s.TS.IsZero() {
			continue
		}
		if s.At.After(last) {
			last = s.At
		}
		if s.Since.IsZero() || s.At.Sub(s.Since) >= time.Minute {
			established = true
		}
	}
	if last.IsZero() {
		return time.Time{}
	}
	if !established && c.cfg.ExpireUnestablished > 0 && !st.hasOpenAlert() {
		return last.Add(c.cfg.ExpireUnestablished)
	}
	if c.cfg.ExpireIdle > 0 {
		return last.Add(c.cfg.ExpireIdle)
	}
	return time.Time{}
}

// hasOpenAlert says whether any of the patient's alerts is open.
func (s *PatientState) hasOpenAlert() bool {
	if s.NEWS2.Open != nil || len(s.Latched) > 0 {
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
		a.State, a.TS, a.Updated, a.Silenced = schemas.Resolved, due, false, false
		a.Message = "monitoring of the patient ended: no reading for " + idle.String() + " (" + a.Message + ")"
		out = append(out, a)
	}
	for _, cond := range slices.Sorted(maps.Keys(st.Conditions)) {
		cs := st.Conditions[cond]
		end(&cs)
	}
	end(&st.NEWS2.ConditionState)
	for _, a := range st.Latched {
		a.State, a.TS = schemas.Resolved, due
		a.Message = "monitoring of the patient ended: no reading for " + idle.String() + " (" + a.Message + ")"
		out = append(out, a)
	}
	*st = PatientState{Conditions: map[string]ConditionState{}}
	return out
}

// silenceDue is when silence of s's kind becomes a lost signal, as seen
// at now on the processor clock: the rule's After from the last arrival,
// or from the moment monitoring resumed (holdDue). A ward whose monitoring
// stopped for ten seconds got a signal-lost alarm for every patient at the
// restart, each blaming the patient's device: from the restart on, a
// device has the rule's whole After to be heard again.
func silenceDue(s Sample, after time.Duration, resumed, now time.Time) time.Time {
	return holdDue(s.At, after, resumed, now)
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

// escalationDue is when an open, unacknowledged alert escalates next: the
// tier after the escalations so far (the last tier repeats), counted from
// the raise or the previous escalation. Zero: never. As for a lost signal
// and a held value (silenceDue, holdDue), platform downtime counts for
// no one: once the clock has reached the moment monitoring resumed, a tier
// counts from the later of its start and that moment, so nurses who could
// not acknowledge during an outage get the tier's time after it; and a
// replay reaching the live end escalates from there, in deadline order
// with the other waits, instead of firing every tier since the data's end
// at once before them (e2e case f: a held resolution carried escalation
// level 10 in one run and 9 in another, by the wall clock).
func escalationDue(cs *ConditionState, rs *RuleSet, resumed, now time.Time) time.Time {
	if cs.Open == nil || (cs.Open.State != schemas.Raised && cs.Open.State != schemas.Escalated) || cs.RaisedAt.IsZero() {
		return time.Time{}
	}
	tier, ok := nextTier(rs, cs)
	if !ok {
		return time.Time{}
	}
	from := cs.RaisedAt
	if cs.Level > 0 && cs.EscalatedAt.After(from) {
		from = cs.EscalatedAt
	}
	return holdDue(from, tier.After, resumed, now)
}

func nextTier(rs *RuleSet, cs *ConditionState) (EscalationTier, bool) {
	tiers := rs.Escalation[cs.Open.Priority]
	if len(tiers) == 0 {
		return EscalationTier{}, false
	}
	t := tiers[min(cs.Level, len(tiers)-1)]
	return t, t.After > 0
}

// conditionDue is when, on the processor clock, the rule's wait ends if
// no further reading of its kind arrives (ConditionRule.due), and the
// event time it ends at: what is left of the wait after the kind's newest
// event time, from its last arrival (holdDue). Zero when nothing waits,
// and for a kind whose newest reading arrived too old to alarm.
func (c *Engine) conditionDue(st *PatientState, rule *ConditionRule, cs *ConditionState, resumed, now time.Time) (due, e time.Time) {
	e = rule.due(cs)
	if e.IsZero() {
		return time.Time{}, time.Time{}
	}
	s, ok := st.Latest.Get(rule.Kind)
	if !ok || len(s.Recent) == 0 || s.At.IsZero() || !c.liveAt(s.TS, s.At) {
		return time.Time{}, time.Time{}
	}
	return holdDue(s.At, e.Sub(s.TS), resumed, now), e
}

// holdDue is when a wait with left to go after a reading that arrived at
// ends on the processor clock. Platform downtime is no one's: once the
// clock has reached the moment monitoring resumed, the wait counts from
// the later of the arrival and that moment, so a gateway has the wait's
// time after a restart to deliver what it buffered before a value held
// across the outage alarms, nurses who could not acknowledge get a tier's
// time, and a replay whose last readings are hours older than the wall
// clock does not end every wait at once. Silence the stream itself shows
// before that moment (a replay, or a backlog ingest kept writing while the
// processor was down) counts from the arrival: the last batch of a
// replay, applied after the moment was set, fires its timers by stream
// time as every batch before it did.
func holdDue(at time.Time, left time.Duration, resumed, now time.Time) time.Time {
	due := at.Add(left)
	if resumed.IsZero() || (due.Before(resumed) && now.Before(resumed)) {
		return due
	}
	if resumed.After(at) {
		return resumed.Add(left)
	}
	return due
}

// liveAt says whether a reading stamped ts that arrived at at may alarm
// (lateness.max_age).
func (c *Engine) liveAt(ts, at time.Time) bool {
	return c.cfg.MaxAge <= 0 || at.Sub(ts) <= c.cfg.MaxAge
}

// conditionTimers ends the conditions' waits due by now on a quiet
// partition: each rule is evaluated over its kind's window up to the
// event time the processor clock has reached (the kind's newest reading's
// time plus the time since its last arrival), as if a reading had come
// then with the value holding. The events carry the event time the wait
// ended at, and the escalation counts from the deadline, so noticing it
// later (a replay) changes nothing.
func (c *Engine) conditionTimers(st *PatientState, rs *RuleSet, patient string, now, resumed, by time.Time) []schemas.Alert {
	var out []schemas.Alert
	for i := range rs.Conditions {
		rule := &rs.Conditions[i]
		cs, ok := st.Conditions[rule.Condition]
		if !ok {
			continue
		}
		due, e := c.conditionDue(st, rule, &cs, resumed, now)
		if due.IsZero() || by.Before(due) {
			continue
		}
		s, _ := st.Latest.Get(rule.Kind)
		horizon := e.Add(by.Sub(due))
		cite := schemas.Reading{PatientID: patient, DeviceID: s.Device, Kind: rule.Kind, Value: s.Value,
			Unit: unitOf(rule.Kind), TS: s.TS, Seq: s.Seq}
		out = append(out, c.step(st, rs, rule, &cite, s.Recent, horizon, c.cfg.ReorderWindow, c.asleep(st, horizon), true, due)...)
	}
	return out
}

// timers fires the patient's timers due by now, in the order of their
// deadlines: signal lost for a vital that stopped arriving, escalation of
// an alert nobody acknowledged, the rules' waits no reading ended, expiry.
// Each event carries the deadline that passed as its ts, not the moment
// it was noticed, and the order does not depend on it either: a processor
// given a partition after two of a patient's deadlines passed (a
// rebalance) fired them in the order of their kinds, one that saw them
// pass one by one in the order of their deadlines, and a replay differed.
func (c *Engine) timers(st *PatientState, rs *RuleSet, patient string, now, resumed time.Time) []schemas.Alert {
	var out []schemas.Alert
	for range maxFirings {
		by := c.deadline(st, rs, resumed, now)
		if by.IsZero() || now.Before(by) {
			break
		}
		out = append(out, c.timersBy(st, rs, patient, now, resumed, by)...)
	}
	return out
}

// timersBy fires the patient's timers due by by, the earliest deadline
// (as seen at now), those sharing it in a fixed order.
func (c *Engine) timersBy(st *PatientState, rs *RuleSet, patient string, now, resumed, by time.Time) []schemas.Alert {
	var out []schemas.Alert
	for i := range rs.SignalLost {
		sl := &rs.SignalLost[i]
		cond := SignalLostCondition(sl.Kind)
		s, ok := st.Latest.Get(sl.Kind)
		if !ok || !sl.armed(s) || st.Conditions[cond].Open != nil {
			continue
		}
		if by.Before(silenceDue(s, sl.After, resumed, now)) {
			continue
		}
		// The event is the data's: its ts is the deadline the last
		// arrival set, whenever monitoring resumed, so replaying the
		// topic at any later time gives the same event.
		due := s.At.Add(sl.After)
		last := schemas.Reading{PatientID: patient, DeviceID: s.Device, Kind: sl.Kind, Value: s.Value,
			Unit: unitOf(sl.Kind), TS: s.TS, Seq: s.Seq}
		msg := "no " + string(sl.Kind) + " from device " + s.Device + " for " + sl.After.String() +
			" (last reading arrived at " + s.At.UTC().Format(time.RFC3339Nano) + ")"
		a := schemas.Alert{AlertID: schemas.AlertID(cond, &last), PatientID: patient, Condition: cond,
			Priority: sl.Priority, State: schemas.Raised, TS: due, Limit: sl.After.Seconds(),
			Message: msg, Reading: last}
		st.Conditions[cond] = ConditionState{Open: &a, RaisedAt: due}
		out = append(out, a)
	}
	escalate := func(cs *ConditionState) {
		due := escalationDue(cs, rs, resumed, now)
		if due.IsZero() || by.Before(due) {
			return
		}
		tier, _ := nextTier(rs, cs)
		a := *cs.Open
		if a.State == schemas.Raised {
			a.Message = "not acknowledged: " + a.Message
		}
		cs.Level++
		cs.EscalatedAt = due
		a.State, a.TS, a.Updated = schemas.Escalated, due, false
		a.EscalationLevel, a.Notify = cs.Level, tier.Notify
		cs.Open = &a
		out = append(out, a)
	}
	out = append(out, c.conditionTimers(st, rs, patient, now, resumed, by)...)
	out = append(out, c.news2Timers(st, rs, patient, now, resumed, by)...)
	out = append(out, c.satTimers(st, rs, now, resumed, by)...)
	for _, cond := range slices.Sorted(maps.Keys(st.Conditions)) {
		cs := st.Conditions[cond]
		escalate(&cs)
		st.Conditions[cond] = cs
	}
	escalate(&st.NEWS2.ConditionState)
	out = c.silence(st, out)
	if due := c.expiry(st); !due.IsZero() && !by.Before(due) {
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
