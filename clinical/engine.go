package clinical

// The engine: one patient's state and one input (a reading, an
// acknowledgement, a silence, a placement, or the time) in, the state
// changed and the alert events out. No Kafka, no I/O, no clock of its own:
// every time it uses is an argument (a reading's event time, its arrival
// on the processor clock, when the processor resumed).

import (
	"maps"
	"math"
	"slices"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// Engine applies the rules of a Config to patients' states. It holds no
// patient state itself: the caller keeps each patient's [PatientState]
// (package statestore for the processor, [Patients] for a replay) and
// [Stream] orders the inputs and timers of a partition.
type Engine struct {
	cfg Config
}

// NewEngine returns the engine of cfg's rules.
func NewEngine(cfg Config) *Engine { return &Engine{cfg: cfg} }

// Config is the engine's rules.
func (c *Engine) Config() *Config { return &c.cfg }

// Reading applies a reading of patient st arriving at at (the processor
// clock): a copy of one already applied changes nothing (copies.go), a
// new one runs the rules of the patient's ward.
func (c *Engine) Reading(st *PatientState, rd *schemas.Reading, at time.Time) []schemas.Alert {
	if st.seen(rd, at) {
		return nil
	}
	return c.apply(st, c.cfg.ForWard(rd.PatientID, st.Ward), rd, at)
}

// Silence pauses the patient's medium and low alarms until the silence's
// end.
func (c *Engine) Silence(st *PatientState, sil *schemas.Silence) {
	st.SilencedUntil = sil.TS.Add(time.Duration(sil.Seconds) * time.Second)
	st.SilencedBy = sil.By
}

// Ack applies an acknowledgement: it marks the open alert it names
// acknowledged, which stops its escalation, or resolves a latched one. An
// acknowledgement of an alert that is no longer open (resolved since, or
// on another processor's patient before a rebalance moved it) changes
// nothing: it is stale, not poison.
func (c *Engine) Ack(st *PatientState, ack *schemas.Ack) []schemas.Alert {
	var alerts []schemas.Alert
	acknowledge := func(cs *ConditionState) bool {
		if cs.Open == nil || cs.Open.AlertID != ack.AlertID || cs.Open.State == schemas.Acknowledged {
			return false
		}
		a := *cs.Open
		a.State, a.TS, a.AckedBy, a.Updated, a.Silenced = schemas.Acknowledged, ack.TS, ack.By, false, false
		cs.Open = &a
		alerts = append(alerts, a)
		return true
	}
	done := acknowledge(&st.NEWS2.ConditionState)
	for _, cond := range slices.Sorted(maps.Keys(st.Conditions)) {
		if done {
			break
		}
		cs := st.Conditions[cond]
		if done = acknowledge(&cs); done {
			st.Conditions[cond] = cs
		}
	}
	for i := 0; !done && i < len(st.Latched); i++ {
		if st.Latched[i].AlertID == ack.AlertID {
			a := st.Latched[i]
			a.State, a.TS, a.AckedBy, a.Silenced = schemas.Resolved, ack.TS, ack.By, false
			a.Message = "acknowledged after it resolved: " + a.Message
			st.Latched = slices.Delete(st.Latched, i, i+1)
			alerts = append(alerts, a)
			done = true
		}
	}
	return alerts
}

// Place applies an admission, transfer or discharge: the patient's rules
// are the new ward's from this record on. The alarms open under the old
// ward's rules stay open; they resolve or escalate by the new rules. When
// the patient moves, each open alarm is moved with an "updated" event
// (the caller stamps the new ward and bed on it, [Engine.Where]): the old
// ward's screen lets it go and the new ward's shows it, though no reading
// has come since.
func (c *Engine) Place(st *PatientState, pl *schemas.Placement) []schemas.Alert {
	before, _ := c.Where(pl.PatientID, st)
	moved := before != pl.Ward || st.Bed != pl.Bed
	st.Ward, st.Bed = pl.Ward, pl.Bed
	if !moved {
		return nil
	}
	return movedAlerts(st, pl.TS)
}

// Where is the patient's ward and bed for an alert event: the latest
// placement, else the ward the rules file names (a deployment without
// ADT may still group its patients by ward there). Before, an event
// carried only the rules file's ward, so a ward known from its
// placements alone (the simulator's, any ADT feed's) had alarms with no
// ward, and every reader filtering by ward missed them all. st may be
// nil (a patient not seen).
func (c *Engine) Where(patient string, st *PatientState) (ward, bed string) {
	if st != nil && st.Ward != "" {
		return st.Ward, st.Bed
	}
	return c.rulesOf(patient, st).Ward, ""
}

// rulesOf is the rule set of a patient as placed now, from the state at
// hand (or nil).
func (c *Engine) rulesOf(patient string, st *PatientState) *RuleSet {
	var ward string
	if st != nil {
		ward = st.Ward
	}
	return c.cfg.ForWard(patient, ward)
}

// movedAlerts are the "updated" events that move a patient's open alarms
// (and those latched, resolved but not yet acknowledged) to where the
// patient now is, stamped with the placement's time, in a fixed order so
// a retried transaction writes the same records. A placement stamped at or
// before the alarm's last event (a device clock ahead of the ADT feed's)
// stamps the move a millisecond after that event: the history table keys
// an alert's events by time and state at millisecond precision, and an
// update at the same time would replace the raise it moves.
func movedAlerts(st *PatientState, at time.Time) []schemas.Alert {
	var out []schemas.Alert
	move := func(a *schemas.Alert) {
		m := *a
		m.Updated = true
		m.TS = m.TS.Add(time.Millisecond)
		if at.After(m.TS) {
			m.TS = at
		}
		out = append(out, m)
	}
	for _, name := range slices.Sorted(maps.Keys(st.Conditions)) {
		if cs := st.Conditions[name]; cs.Open != nil {
			move(cs.Open)
		}
	}
	if st.NEWS2.Open != nil {
		move(st.NEWS2.Open)
	}
	for i := range st.Latched {
		move(&st.Latched[i])
	}
	return out
}

// SignalLostCondition is the condition of the technical alarm raised when
// a vital of kind stops arriving.
func SignalLostCondition(kind schemas.Kind) string {
	if i := kind.Index(); i >= 0 {
		return signalLostNames[i]
	}
	return string(kind) + "_signal_lost"
}

// signalLostNames, by kind index, spare the per-reading string
// concatenation, which was measured among the engine's allocations.
var signalLostNames = func() (names [schemas.NumKinds]string) {
	for i, s := range schemas.Specs {
		names[i] = string(s.Kind) + "_signal_lost"
	}
	return names
}()

// maxRecent bounds the readings of a kind kept for the reorder window.
const maxRecent = 64

// placed returns recent with p inserted in event-time order (after equal
// times), and that with the readings older than newest − window dropped
// (what the state keeps); new slices, since recent may be shared with the
// committed state. A point equal to one already there is not added again.
//
// The rules are evaluated over all, not window: a reading that moves the
// newest on by more than the window closes the run the points it pushes
// out belong to. A respiration rate beyond the limit from 06:55, then in
// range at 07:31 with the readings between still in transit, lost the run
// before the rules saw it closed (found by the reference model).
func placed(recent []point, p point, window time.Duration) (all, kept []point) {
	for _, q := range recent {
		if q == p {
			// The same value at the same time changes no run: readings
			// sharing a timestamp (a batch stamped at once) would fill
			// the window with copies of one point.
			return recent, recent
		}
	}
	all = make([]point, 0, len(recent)+1)
	in := false
	for _, q := range recent {
		if !in && q.TS.After(p.TS) {
			all, in = append(all, p), true
		}
		all = append(all, q)
	}
	if !in {
		all = append(all, p)
	}
	return all, slices.Clip(all[keptFrom(all, window):])
}

// keptFrom is the index of the first of points (in event-time order) the
// state keeps: those within window of the newest, at most maxRecent.
func keptFrom(points []point, window time.Duration) int {
	from := points[len(points)-1].TS.Add(-window)
	i := 0
	for i < len(points) && points[i].TS.Before(from) {
		i++
	}
	return max(i, len(points)-maxRecent)
}

// apply is the pure part: state and reading in, state and alerts out. at is
// the reading's arrival time on the processor clock.
//
// The lateness policy: a reading older than the newest of its kind by
// more than the reorder window is late, history only (the sink stores
// it): it changes no rule and no alarm. One within the window is placed
// in event-time order. A reading that arrives more than MaxAge after its
// event time updates the rules' state but raises, escalates and resolves
// nothing itself.
func (c *Engine) apply(st *PatientState, rs *RuleSet, rd *schemas.Reading, at time.Time) []schemas.Alert {
	cur, ok := st.Latest.Get(rd.Kind)
	// Charted: no other reading of the kind in the set window before this
	// one (a nurse's observation, not a monitor's stream).
	charted := !ok || rd.TS.Sub(cur.TS) > c.cfg.NEWS2SetWindow
	gap, since, arrived := cadence(cur, ok, at)
	inOrder := !ok || !rd.TS.Before(cur.TS)
	late := ok && rd.TS.Before(cur.TS.Add(-c.cfg.ReorderWindow))
	live := c.cfg.MaxAge <= 0 || at.Sub(rd.TS) <= c.cfg.MaxAge
	var recent, scan []point
	if !late {
		scan, recent = placed(cur.Recent, point{rd.TS, rd.Value}, c.cfg.ReorderWindow)
	}
	switch {
	case inOrder:
		st.Latest.Set(rd.Kind, Sample{Value: rd.Value, TS: rd.TS, At: at, Gap: gap, Since: since, Device: rd.DeviceID, Seq: rd.Seq, Recent: recent})
	case arrived || !late:
		// An older reading is no newer a value, but the signal is there.
		if arrived {
			cur.At, cur.Gap, cur.Since = at, gap, since
		}
		if !late {
			cur.Recent = recent
		}
		st.Latest.Set(rd.Kind, cur)
	}
	var out []schemas.Alert
	if cond := SignalLostCondition(rd.Kind); st.Conditions[cond].Open != nil {
		a := *st.Conditions[cond].Open
		a.State, a.TS, a.Reading = schemas.Resolved, rd.TS, *rd
		a.Message = string(rd.Kind) + " signal back from device " + rd.DeviceID
		a.Updated, a.Silenced = false, false
		delete(st.Conditions, cond)
		out = append(out, a)
	}
	if late {
		return out
	}
	asleep := c.asleep(st, rd.TS)
	for i := range rs.Conditions {
		rule := &rs.Conditions[i]
		if rule.Kind != rd.Kind {
			continue
		}
		out = append(out, c.step(st, rs, rule, rd, scan, scan[len(scan)-1].TS, c.cfg.ReorderWindow, asleep, live, at)...)
	}
	if inOrder && (rd.Kind == schemas.BPSystolic || rd.Kind == schemas.BPDiastolic) {
		if m, ok := meanArterial(st, rd); ok {
			for i := range rs.Conditions {
				if rule := &rs.Conditions[i]; rule.Kind == MAP {
					out = append(out, c.step(st, rs, rule, &m, []point{{m.TS, m.Value}}, m.TS, 0, asleep, live, at)...)
				}
			}
		}
	}
	if inOrder && rd.Kind == schemas.SpO2 && rs.SatSeconds != nil {
		out = append(out, c.satSeconds(st, rs, rd, live, at)...)
	}
	if inOrder && rs.NEWS2 && isNEWS2Parameter(rd.Kind) {
		out = append(out, c.news2(st, rs, rd, charted, live, at)...)
	}
	return c.silence(st, out)
}

// step runs one condition rule over the kind's readings in the window up
// to horizon (condition.go) and keeps its state, latching a resolution
// nobody acknowledged. at is the processor clock, from which escalation
// counts.
func (c *Engine) step(st *PatientState, rs *RuleSet, rule *ConditionRule, rd *schemas.Reading, recent []point, horizon time.Time, window time.Duration, asleep, live bool, at time.Time) []schemas.Alert {
	prev, had := st.Conditions[rule.Condition]
	if !had && !rule.beyond(rd.Value, asleep) {
		// Most readings: in range, nothing pending. A rule without state
		// has no run a reading in range could break, in order or not.
		return nil
	}
	cs, evs := rule.step(prev, rd, recent, horizon, window, asleep, live)
	open := prev.Open
	for i, e := range evs {
		switch e.State {
		case schemas.Raised:
			cs.RaisedAt = at
			open = &evs[i]
		case schemas.Resolved:
			evs[i] = c.latch(st, rs, open, e)
			open = nil
		}
	}
	if !cs.Closed.IsZero() && cs.Closed.Before(horizon.Add(-c.cfg.ReorderWindow)) {
		// No reading placed before it can come any more (it would be
		// late): forgetting it lets the state go.
		cs.Closed = time.Time{}
	}
	if cs.isZero() {
		delete(st.Conditions, rule.Condition)
	} else {
		st.Conditions[rule.Condition] = cs
	}
	return evs
}

// latch turns the resolution of an alarm nobody acknowledged into
// resolved-unacknowledged when its priority latches, and keeps it on the
// patient until an acknowledgement resolves it.
func (c *Engine) latch(st *PatientState, rs *RuleSet, open *schemas.Alert, resolved schemas.Alert) schemas.Alert {
	if open == nil || rs.Latch == "" || open.State == schemas.Acknowledged || open.Priority.Rank() < rs.Latch.Rank() {
		return resolved
	}
	resolved.State = schemas.ResolvedUnacknowledged
	resolved.Message += "; latched until acknowledged"
	resolved.Updated = false
	st.Latched = append(st.Latched, resolved)
	if len(st.Latched) > maxLatched {
		// Bounded: the oldest is still in the alerts topic and history.
		st.Latched = st.Latched[len(st.Latched)-maxLatched:]
	}
	return resolved
}

// maxLatched bounds a patient's latched alarms.
const maxLatched = 32

// silence marks the medium and low priority alerts raised or escalated
// while the patient's alarms are silenced. A high priority alarm is never
// silenced.
func (c *Engine) silence(st *PatientState, alerts []schemas.Alert) []schemas.Alert {
	if st.SilencedUntil.IsZero() {
		return alerts
	}
	for i := range alerts {
		a := &alerts[i]
		if (a.State == schemas.Raised || a.State == schemas.Escalated) && a.Priority != schemas.High && a.TS.Before(st.SilencedUntil) {
			a.Silenced = true
		}
	}
	return alerts
}

// asleep says whether the patient's latest sleep status, at most
// SleepMaxAge older than t, is asleep: a stale one lowers no limit.
func (c *Engine) asleep(st *PatientState, t time.Time) bool {
	s, ok := st.Latest.Get(schemas.Sleep)
	return ok && s.Value == 1 && (c.cfg.SleepMaxAge <= 0 || t.Sub(s.TS) <= c.cfg.SleepMaxAge)
}

// meanArterial derives the mean arterial pressure when rd (a systolic or
// diastolic reading) and the latest of the other pressure are one
// measurement (within mapPairWindow of each other).
func meanArterial(st *PatientState, rd *schemas.Reading) (schemas.Reading, bool) {
	other := schemas.BPDiastolic
	if rd.Kind == schemas.BPDiastolic {
		other = schemas.BPSystolic
	}
	o, ok := st.Latest.Get(other)
	if !ok || rd.TS.Sub(o.TS).Abs() > mapPairWindow {
		return schemas.Reading{}, false
	}
	sys, dia := rd.Value, o.Value
	if rd.Kind == schemas.BPDiastolic {
		sys, dia = o.Value, rd.Value
	}
	m := *rd
	m.Kind, m.Unit, m.Value = MAP, "mm[Hg]", math.Round((sys+2*dia)/3*10)/10
	return m, true
}

// deliveryWindow groups arrivals into deliveries: readings a gateway
// posts together arrive within milliseconds of each other (often in the
// same one), and are one delivery of the device's cadence, not a gap of
// zero.
const deliveryWindow = 250 * time.Millisecond

// runReset is the silence after which a device's cadence must be
// established again.
const runReset = 2 * time.Minute

// cadence is a kind's arrival bookkeeping after a reading arrived at at:
// the gap between the last two deliveries, when the current run of
// deliveries began, and whether at is a later arrival than cur's (a
// reading arriving with or before the last one changes nothing).
func cadence(cur Sample, ok bool, at time.Time) (gap time.Duration, since time.Time, arrived bool) {
	if !ok || cur.At.IsZero() {
		return 0, at, true
	}
	d := at.Sub(cur.At)
	switch {
	case d <= 0:
		return cur.Gap, cur.Since, false
	case d < deliveryWindow:
		return cur.Gap, cur.Since, true // the same delivery
	case d >= runReset:
		return d, at, true // a new run
	}
	return d, cur.Since, true
}

func unitOf(k schemas.Kind) string {
	spec, _ := specFor(k)
	return spec.Unit
}
