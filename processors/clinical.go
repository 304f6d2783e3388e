package processors

// The clinical engine's dispatch: records in, the rules applied to the
// patient's state (store.go), alert records out, NEWS2 glue. The rules
// themselves (condition.go, news2.go) are pure functions.

import (
	"context"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/schemas"
)

// Clinical is the stateful Handler of the clinical alerting engine: per
// patient, the latest value of each vital, the condition rules' state, the
// NEWS2 alert and the open alerts' escalation timers, mirrored to the
// compacted state changelog in the same transaction as the alerts and
// offsets. It reads the acknowledgements topic too (co-partitioned with the
// vitals), so an acknowledgement and the alert it stops meet in one place.
//
// Two clocks drive it. Condition rules and NEWS2 run on event time, the
// readings' own ts. Silence (signal lost) and escalation run on the
// processor clock: the arrival time of records (their timestamps, set by
// the ingest producer and stored in the log) as they are consumed, and the
// wall clock only once a partition is caught up. A replay therefore fires
// the same timers with the same content, and a live processor still
// notices a device that went quiet when nothing else arrives.
type Clinical struct {
	cfg    ClinicalConfig
	topics kafka.Topics
	store  *store
	// resumedAt gives when the processor caught up with a vitals
	// partition after it started or was given it (zero before); nil
	// (tests feeding records by hand) is always zero.
	resumedAt func(partition int32) time.Time

	// pre holds the readings Predecode decoded, consumed by Handle in
	// order from next.
	pre  []decoded
	next int
	// ready[k] is closed once chunk k of pre is decoded.
	ready    []chan struct{}
	decoders sync.WaitGroup

	// pending are the alert events of the open transaction, counted in
	// alarms once it commits. Only the transaction loop touches it.
	pending []schemas.Alert
	alarms  metric.Int64Counter

	// stream is each vitals partition's stream time in the open
	// transaction, committedStream as of the last commit; queues order
	// each partition's patients by their next timer (queue.go). Only the
	// transaction loop touches them; stale asks it to rebuild the queues
	// (after a restore, a lost partition, an abort).
	stream, committedStream map[int32]time.Time
	queues                  map[int32]*timerQueue
	stale                   atomic.Bool
}

// Instrument counts committed alert events in monitorme.alarms, by
// priority, condition, state and ward: the alarm burden, per patient per
// day once divided by monitorme.alerting.patients.
func (c *Clinical) Instrument(mp metric.MeterProvider) error {
	m := mp.Meter("monitorme/processors")
	var err error
	c.alarms, err = m.Int64Counter("monitorme.alarms",
		metric.WithDescription("Alert events committed, by priority, condition, state (raised, escalated, acknowledged, resolved) and ward"))
	if err != nil {
		return err
	}
	_, err = m.Int64ObservableGauge("monitorme.alerting.patients",
		metric.WithDescription("Patients whose state this processor holds"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(c.store.patients()))
			return nil
		}))
	return err
}

// NewClinical returns the handler; restoreOpts are the client options
// (seeds, TLS) of the client that reads the changelog back.
func NewClinical(cfg ClinicalConfig, topics kafka.Topics, restoreOpts ...kgo.Opt) *Clinical {
	return &Clinical{cfg: cfg, topics: topics, store: newStore(topics.State, restoreOpts),
		stream: map[int32]time.Time{}, committedStream: map[int32]time.Time{}, queues: map[int32]*timerQueue{}}
}

// Resume tells the engine when the processor caught up with each vitals
// partition: silence timers do not blame a device for the time before.
func (c *Clinical) Resume(resumedAt func(partition int32) time.Time) { c.resumedAt = resumedAt }

// LastArrival is the latest arrival of a reading of any patient on
// partition: where monitoring of it had got to.
func (c *Clinical) LastArrival(partition int32) time.Time {
	var last time.Time
	c.store.each(func(_ string, p int32, st *PatientState) {
		if a := lastArrival(st); p == partition && a.After(last) {
			last = a
		}
	})
	return last
}

func (c *Clinical) resumed(partition int32) time.Time {
	if c.resumedAt == nil {
		return time.Time{}
	}
	return c.resumedAt(partition)
}

// Inputs names the topics the handler reads: the vitals and, co-partitioned
// with them, the acknowledgements and the placements.
func (c *Clinical) Inputs() []string {
	return []string{c.topics.Vitals, c.topics.Acks, c.topics.Placements}
}

// Restore loads the state of newly assigned vitals partitions from the
// changelog.
func (c *Clinical) Restore(ctx context.Context, partitions []int32) error {
	defer c.stale.Store(true)
	return c.store.restore(ctx, partitions)
}

// Forget drops the state of patients on partitions this processor lost.
func (c *Clinical) Forget(partitions []int32) {
	c.store.forget(partitions)
	c.stale.Store(true)
}

// Begin starts a transaction's batch.
func (c *Clinical) Begin() {
	c.store.begin()
	c.pending = c.pending[:0]
}

// Flush returns the changelog records of the patients changed in this
// transaction.
func (c *Clinical) Flush() ([]*kgo.Record, error) { return c.store.flush() }

// Committed makes the transaction's state the committed state and counts
// its alert events.
func (c *Clinical) Committed() {
	c.store.commit()
	c.commitClock()
	for i := range c.pending {
		a := &c.pending[i]
		if a.Updated {
			continue // the same alarm, its content brought up to date
		}
		c.alarms.Add(context.Background(), 1, metric.WithAttributes(attribute.String("priority", string(a.Priority)),
			attribute.String("condition", a.Condition), attribute.String("state", string(a.State)),
			attribute.String("ward", a.Ward)))
	}
	c.pending = c.pending[:0]
}

// Aborted drops the transaction's state: its records come again.
func (c *Clinical) Aborted() {
	c.store.abort()
	c.abortClock()
	c.pending = c.pending[:0]
}

type decoded struct {
	rec *kgo.Record
	rd  schemas.Reading
	err error
}

// predecodeChunk is how many readings a decode worker takes at a time,
// and how far Handle can follow behind the workers.
const predecodeChunk = 256

// Predecode starts decoding the readings among recs and returns at once:
// the JSON decode is the handler's largest cost and the only part that
// needs no order, so it runs on every core, chunk by chunk in order, and
// Handle applies each chunk as soon as it is decoded instead of waiting
// for the whole batch.
func (c *Clinical) Predecode(recs []*kgo.Record) {
	c.decoders.Wait() // the previous batch's workers, should Handle have skipped records
	c.pre, c.next = c.pre[:0], 0
	for _, r := range recs {
		if r.Topic != c.topics.Acks {
			c.pre = append(c.pre, decoded{rec: r})
		}
	}
	chunks := (len(c.pre) + predecodeChunk - 1) / predecodeChunk
	c.ready = c.ready[:0]
	for range chunks {
		c.ready = append(c.ready, make(chan struct{}))
	}
	var claimed atomic.Int64
	pre, ready := c.pre, c.ready
	for range min(runtime.GOMAXPROCS(0), chunks) {
		c.decoders.Go(func() {
			for k := int(claimed.Add(1) - 1); k < chunks; k = int(claimed.Add(1) - 1) {
				for i := k * predecodeChunk; i < min((k+1)*predecodeChunk, len(pre)); i++ {
					pre[i].rd, pre[i].err = schemas.DecodeReading(pre[i].rec)
				}
				close(ready[k])
			}
		})
	}
}

// decode returns r's reading, from Predecode if it decoded r.
func (c *Clinical) decode(r *kgo.Record) (schemas.Reading, error) {
	if c.next < len(c.pre) && c.pre[c.next].rec == r {
		if c.next%predecodeChunk == 0 {
			<-c.ready[c.next/predecodeChunk]
		}
		d := &c.pre[c.next]
		c.next++
		return d.rd, d.err
	}
	return schemas.DecodeReading(r)
}

// Handle applies one reading, acknowledgement or alarm silence. First the
// record's partition's stream time moves to its arrival, if later, and
// every timer of the partition due by it fires (queue.go), so where a
// timer fires among the records depends on the log alone. A record that
// cannot be decoded moves the clock too (the batch's Tick counts it), but
// fires nothing: its Handle returns only the error.
func (c *Clinical) Handle(r *kgo.Record) ([]*kgo.Record, error) {
	if schemas.IsRulesLoaded(r) {
		// The audit trail of rule changes, for the history sink. Its
		// timestamp is a processor's start, not stream time: it must not
		// move the partition's clock (it fired every timer at once).
		return nil, nil
	}
	now := c.advance(r.Partition, r.Timestamp)
	switch r.Topic {
	case c.topics.Acks:
		return c.handleAck(r, now)
	case c.topics.Placements:
		return c.handlePlacement(r, now)
	}
	rd, err := c.decode(r)
	if err != nil {
		return nil, err
	}
	alerts := c.fire(r.Partition, now)
	st := c.store.get(rd.PatientID, r.Partition, true)
	rs := c.cfg.ForWard(rd.PatientID, st.Ward)
	if !st.seen(&rd, r.Timestamp) {
		alerts = append(alerts, c.apply(st, rs, &rd, r.Timestamp)...)
	}
	c.schedule(r.Partition, rd.PatientID, st, now)
	return c.records(alerts)
}

func (c *Clinical) records(alerts []schemas.Alert) ([]*kgo.Record, error) {
	for i := range alerts {
		alerts[i].Ward, alerts[i].Bed = c.where(alerts[i].PatientID)
	}
	if c.alarms != nil {
		c.pending = append(c.pending, alerts...)
	}
	out := make([]*kgo.Record, 0, len(alerts))
	for i := range alerts {
		rec, err := schemas.AlertRecord(c.topics.Alerts, &alerts[i])
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// rulesOf is the rule set of a patient as placed now, from the state at
// hand (or nil): no store lookup, so it may run under the store's lock.
func (c *Clinical) rulesOf(patient string, st *PatientState) *RuleSet {
	var ward string
	if st != nil {
		ward = st.Ward
	}
	return c.cfg.ForWard(patient, ward)
}

// where is the patient's ward and bed for an alert event: the latest
// placement, else the ward the rules file names (a deployment without
// ADT may still group its patients by ward there). Before, an event
// carried only the rules file's ward, so a ward known from its
// placements alone (the simulator's, any ADT feed's) had alarms with no
// ward, and every reader filtering by ward missed them all.
func (c *Clinical) where(patient string) (ward, bed string) {
	st := c.store.peek(patient)
	if st != nil && st.Ward != "" {
		return st.Ward, st.Bed
	}
	return c.rulesOf(patient, st).Ward, ""
}

// handlePlacement applies an admission, transfer or discharge: the
// patient's rules are the new ward's from this record on. The alarms open
// under the old ward's rules stay open; they resolve or escalate by the
// new rules. When the patient moves, each open alarm is moved with an
// "updated" event carrying the new ward and bed (records stamps them):
// the old ward's screen lets it go and the new ward's shows it, though
// no reading has come since.
func (c *Clinical) handlePlacement(r *kgo.Record, now time.Time) ([]*kgo.Record, error) {
	pl, err := schemas.DecodePlacement(r)
	if err != nil {
		return nil, fmt.Errorf("decode placement: %w", err)
	}
	alerts := c.fire(r.Partition, now)
	st := c.store.get(pl.PatientID, r.Partition, true)
	before, _ := c.where(pl.PatientID)
	moved := before != pl.Ward || st.Bed != pl.Bed
	st.Ward, st.Bed = pl.Ward, pl.Bed
	if moved {
		alerts = append(alerts, movedAlerts(st, pl.TS)...)
	}
	return c.records(alerts)
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

// handleAck applies a record of the acks topic: an acknowledgement marks
// an open alert acknowledged, which stops its escalation, and resolves a
// latched one; a silence pauses the patient's medium and low alarms. An
// acknowledgement of an alert that is no longer open (resolved since, or
// on another processor's patient before a rebalance moved it) changes
// nothing: it is stale, not poison.
func (c *Clinical) handleAck(r *kgo.Record, now time.Time) ([]*kgo.Record, error) {
	rec, err := schemas.DecodeAcksRecord(r)
	switch {
	case err != nil:
		return nil, fmt.Errorf("decode a record of the acks topic: %w", err)
	case rec.Rules != nil:
		return nil, nil // an audit record (Handle reads past it before)
	case rec.Silence != nil:
		sil := rec.Silence
		alerts := c.fire(r.Partition, now)
		if st := c.store.get(sil.PatientID, r.Partition, false); st != nil {
			st.SilencedUntil = sil.TS.Add(time.Duration(sil.Seconds) * time.Second)
			st.SilencedBy = sil.By
		}
		return c.records(alerts)
	}
	ack := rec.Ack
	alerts := c.fire(r.Partition, now)
	st := c.store.get(ack.PatientID, r.Partition, false)
	if st == nil {
		return c.records(alerts)
	}
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
	c.schedule(r.Partition, ack.PatientID, st, now)
	return c.records(alerts)
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
func (c *Clinical) apply(st *PatientState, rs *RuleSet, rd *schemas.Reading, at time.Time) []schemas.Alert {
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
func (c *Clinical) step(st *PatientState, rs *RuleSet, rule *ConditionRule, rd *schemas.Reading, recent []point, horizon time.Time, window time.Duration, asleep, live bool, at time.Time) []schemas.Alert {
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
func (c *Clinical) latch(st *PatientState, rs *RuleSet, open *schemas.Alert, resolved schemas.Alert) schemas.Alert {
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
func (c *Clinical) silence(st *PatientState, alerts []schemas.Alert) []schemas.Alert {
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
func (c *Clinical) asleep(st *PatientState, t time.Time) bool {
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
