package processors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/schemas"
)

// Sample is the latest value of one vital.
type Sample struct {
	Value float64   `json:"v"`
	TS    time.Time `json:"ts"`
	// At is when it arrived: the timestamp the ingest producer gave its
	// record. Silence is measured in arrival time, not device time, so a
	// device whose clock is off neither hides nor fakes a lost signal.
	At time.Time `json:"at,omitzero"`
	// Gap is the time between the last two arrivals: the cadence a
	// signal-lost rule learns what "normally sends" means from.
	Gap    time.Duration `json:"g,omitempty"`
	Device string        `json:"d,omitempty"`
	Seq    uint64        `json:"s,omitempty"`
}

// Vitals holds a patient's latest sample of each kind, at the kind's
// schemas.Kind.Index; a sample with no ts is absent (every reading has
// one). A fixed array, not a map: the rules look kinds up about a dozen
// times per reading, and as map lookups those were the largest part of
// the rules' own time in a profile of the benchmark; a transaction's copy
// of the state is then a plain copy too. It
// encodes as a JSON object keyed by kind in name order, as the map it
// replaced did, so changelog records read the same either way.
type Vitals [schemas.NumKinds]Sample

// Get returns the latest sample of kind k, if there is one.
func (v *Vitals) Get(k schemas.Kind) (Sample, bool) {
	i := k.Index()
	if i < 0 || v[i].TS.IsZero() {
		return Sample{}, false
	}
	return v[i], true
}

// Set records s as the latest sample of k. Readings reach the engine
// decoded and checked, so k is known; an unknown one is not stored.
func (v *Vitals) Set(k schemas.Kind, s Sample) {
	if i := k.Index(); i >= 0 {
		v[i] = s
	}
}

// kindsByName orders the kinds' indexes by name, the order of the JSON
// object.
var kindsByName = func() []int {
	idx := make([]int, len(schemas.Specs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		return strings.Compare(string(schemas.Specs[a].Kind), string(schemas.Specs[b].Kind))
	})
	return idx
}()

// MarshalJSON encodes v as an object of the present samples by kind.
func (v *Vitals) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for _, i := range kindsByName {
		if v[i].TS.IsZero() {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, string(schemas.Specs[i].Kind))
		b = append(b, ':')
		sb, err := json.Marshal(&v[i])
		if err != nil {
			return nil, err
		}
		b = append(b, sb...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON decodes the object MarshalJSON writes; null is no sample,
// and so is one without a ts, as in the array.
func (v *Vitals) UnmarshalJSON(b []byte) error {
	var m map[schemas.Kind]Sample
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*v = Vitals{}
	for k, s := range m {
		i := k.Index()
		if i < 0 {
			return fmt.Errorf("latest sample of unknown kind %q", k)
		}
		v[i] = s
	}
	return nil
}

// PatientState is everything the clinical rules remember of one patient;
// it is what the changelog holds, one record per patient.
type PatientState struct {
	Latest Vitals `json:"latest"`
	// Conditions holds the rules' state and the open technical alarms,
	// by condition.
	Conditions map[string]ConditionState `json:"conditions,omitempty"`
	// NEWS2 is the open "news2" alert, if any, and when its band last
	// dropped back to low.
	NEWS2 ConditionState `json:"news2"`
}

func (s *PatientState) clone() *PatientState {
	c := &PatientState{Latest: s.Latest, Conditions: maps.Clone(s.Conditions), NEWS2: s.NEWS2}
	if c.Conditions == nil {
		c.Conditions = map[string]ConditionState{}
	}
	return c
}

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
	// restoreOpts reach the brokers for restoring state.
	restoreOpts []kgo.Opt

	mu        sync.Mutex
	committed map[string]*PatientState // by patient
	partition map[string]int32         // patient -> vitals partition
	dirty     map[string]*PatientState // changed in the open transaction

	// pre holds the readings Predecode decoded, consumed by Handle in
	// order from next.
	pre  []decoded
	next int
	// ready[k] is closed once chunk k of pre is decoded.
	ready    []chan struct{}
	decoders sync.WaitGroup

	// pending are the alert events of the open transaction, counted in
	// alarms once it commits.
	pending []schemas.Alert
	alarms  metric.Int64Counter
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
			c.mu.Lock()
			n := len(c.committed)
			c.mu.Unlock()
			o.Observe(int64(n))
			return nil
		}))
	return err
}

// NewClinical returns the handler; restoreOpts are the client options
// (seeds, TLS) of the client that reads the changelog back.
func NewClinical(cfg ClinicalConfig, topics kafka.Topics, restoreOpts ...kgo.Opt) *Clinical {
	return &Clinical{cfg: cfg, topics: topics, restoreOpts: restoreOpts,
		committed: map[string]*PatientState{}, partition: map[string]int32{}, dirty: map[string]*PatientState{}}
}

// Inputs names the topics the handler reads: the vitals and, co-partitioned
// with them, the acknowledgements.
func (c *Clinical) Inputs() []string { return []string{c.topics.Vitals, c.topics.Acks} }

// state returns the patient's state for the open transaction, creating it
// if create is set; nil if the patient is unknown and create is not set.
func (c *Clinical) state(patient string, partition int32, create bool) *PatientState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.dirty[patient]; st != nil {
		return st
	}
	cur := c.committed[patient]
	if cur == nil && !create {
		return nil
	}
	if cur == nil {
		cur = &PatientState{}
	}
	st := cur.clone()
	c.dirty[patient] = st
	c.partition[patient] = partition
	return st
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
					pre[i].rd, pre[i].err = DecodeReading(pre[i].rec)
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
	return DecodeReading(r)
}

// Handle applies one reading or acknowledgement. The patient's timers that
// are due by the record's arrival time fire first, so the outcome does not
// depend on how records were batched.
func (c *Clinical) Handle(r *kgo.Record) ([]*kgo.Record, error) {
	if r.Topic == c.topics.Acks {
		return c.handleAck(r)
	}
	rd, err := c.decode(r)
	if err != nil {
		return nil, err
	}
	st := c.state(rd.PatientID, r.Partition, true)
	rs := c.cfg.For(rd.PatientID)
	alerts := timers(st, rs, rd.PatientID, r.Timestamp)
	alerts = append(alerts, c.apply(st, rs, &rd, r.Timestamp)...)
	return c.records(alerts)
}

func (c *Clinical) records(alerts []schemas.Alert) ([]*kgo.Record, error) {
	for i := range alerts {
		alerts[i].Ward = c.cfg.For(alerts[i].PatientID).Ward
	}
	if c.alarms != nil && len(alerts) > 0 {
		c.mu.Lock()
		c.pending = append(c.pending, alerts...)
		c.mu.Unlock()
	}
	out := make([]*kgo.Record, 0, len(alerts))
	for i := range alerts {
		rec, err := AlertRecord(c.topics.Alerts, &alerts[i])
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// handleAck marks an open alert acknowledged, which stops its escalation.
// An acknowledgement of an alert that is no longer open (resolved since,
// or on another processor's patient before a rebalance moved it) changes
// nothing: it is stale, not poison.
func (c *Clinical) handleAck(r *kgo.Record) ([]*kgo.Record, error) {
	ack, err := schemas.DecodeAck(Header(r, schemas.HeaderSchema), r.Value)
	if err != nil {
		return nil, fmt.Errorf("decode acknowledgement: %w", err)
	}
	if string(r.Key) != ack.PatientID {
		return nil, fmt.Errorf("record key %q is not the acknowledgement's patient_id %q", r.Key, ack.PatientID)
	}
	st := c.state(ack.PatientID, r.Partition, false)
	if st == nil {
		return nil, nil
	}
	alerts := timers(st, c.cfg.For(ack.PatientID), ack.PatientID, r.Timestamp)
	acknowledge := func(cs *ConditionState) bool {
		if cs.Open == nil || cs.Open.AlertID != ack.AlertID || cs.Open.State == schemas.Acknowledged {
			return false
		}
		a := *cs.Open
		a.State, a.TS, a.AckedBy = schemas.Acknowledged, ack.TS, ack.By
		cs.Open = &a
		alerts = append(alerts, a)
		return true
	}
	if !acknowledge(&st.NEWS2) {
		for cond, cs := range st.Conditions {
			if acknowledge(&cs) {
				st.Conditions[cond] = cs
				break
			}
		}
	}
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

// apply is the pure part: state and reading in, state and alerts out. at is
// the reading's arrival time on the processor clock.
func (c *Clinical) apply(st *PatientState, rs *RuleSet, rd *schemas.Reading, at time.Time) []schemas.Alert {
	cur, ok := st.Latest.Get(rd.Kind)
	var gap time.Duration
	if ok && at.After(cur.At) {
		gap = at.Sub(cur.At)
	}
	switch {
	case !ok || !rd.TS.Before(cur.TS):
		st.Latest.Set(rd.Kind, Sample{Value: rd.Value, TS: rd.TS, At: at, Gap: gap, Device: rd.DeviceID, Seq: rd.Seq})
	case gap > 0:
		// A late reading is no newer a value, but the signal is there.
		cur.At, cur.Gap = at, gap
		st.Latest.Set(rd.Kind, cur)
	}
	var out []schemas.Alert
	if cond := SignalLostCondition(rd.Kind); st.Conditions[cond].Open != nil {
		a := *st.Conditions[cond].Open
		a.State, a.TS, a.Reading = schemas.Resolved, rd.TS, *rd
		a.Message = string(rd.Kind) + " signal back from device " + rd.DeviceID
		delete(st.Conditions, cond)
		out = append(out, a)
	}
	sleep, _ := st.Latest.Get(schemas.Sleep)
	asleep := sleep.Value == 1
	for i := range rs.Conditions {
		rule := &rs.Conditions[i]
		if rule.Kind != rd.Kind {
			continue
		}
		cs, evs := rule.Step(st.Conditions[rule.Condition], rd, asleep)
		for _, e := range evs {
			if e.State == schemas.Raised {
				cs.RaisedAt = at
			}
		}
		if cs.isZero() {
			delete(st.Conditions, rule.Condition)
		} else {
			st.Conditions[rule.Condition] = cs
		}
		out = append(out, evs...)
	}
	if rs.NEWS2 && isNEWS2Parameter(rd.Kind) {
		out = append(out, c.news2(st, rs, rd, at)...)
	}
	return out
}

// isNEWS2Parameter says whether a reading of k can change the score; the
// score is evaluated on those readings only.
func isNEWS2Parameter(k schemas.Kind) bool {
	switch k {
	case schemas.RespRate, schemas.SpO2, schemas.O2Supplement, schemas.BPSystolic, schemas.HeartRate, schemas.Consciousness, schemas.Temperature:
		return true
	}
	return false
}

func (c *Clinical) news2(st *PatientState, rs *RuleSet, rd *schemas.Reading, at time.Time) []schemas.Alert {
	fresh := func(k schemas.Kind) (float64, bool) {
		s, ok := st.Latest.Get(k)
		if !ok || rd.TS.Sub(s.TS) > c.cfg.NEWS2MaxAge {
			return 0, false
		}
		return s.Value, true
	}
	// Straight-line on purpose: through a table of field pointers the
	// values escaped, an allocation per parameter per reading.
	var (
		in                         = NEWS2Input{Hypercapnic: rs.Hypercapnic}
		resp, spo2, sbp, pulse, tp float64
		on                         bool
		lvl                        int
		ok                         bool
	)
	if resp, ok = fresh(schemas.RespRate); ok {
		in.RespRate = &resp
	}
	if spo2, ok = fresh(schemas.SpO2); ok {
		in.SpO2 = &spo2
	}
	if sbp, ok = fresh(schemas.BPSystolic); ok {
		in.SystolicBP = &sbp
	}
	if pulse, ok = fresh(schemas.HeartRate); ok {
		in.Pulse = &pulse
	}
	if tp, ok = fresh(schemas.Temperature); ok {
		in.Temperature = &tp
	}
	if v, ok := fresh(schemas.O2Supplement); ok {
		on = v == 1
		in.OnOxygen = &on
	}
	if v, ok := fresh(schemas.Consciousness); ok {
		lvl = int(v)
		in.Consciousness = &lvl
	}
	score := scoreNEWS2(in, false)
	prio, alarm := score.Priority()
	open := st.NEWS2.Open
	switch {
	case alarm && open == nil:
		a := news2Alert(rd, in, prio, schemas.AlertID("news2", rd), schemas.Raised)
		st.NEWS2 = ConditionState{Open: &a, RaisedAt: at}
		return []schemas.Alert{a}
	case alarm && prio.Rank() > open.Priority.Rank():
		// Worse: the one open alert is updated in place at once, and is
		// raised again: an acknowledgement of the lower band does not
		// cover this one.
		a := news2Alert(rd, in, prio, open.AlertID, schemas.Raised)
		st.NEWS2 = ConditionState{Open: &a, RaisedAt: at}
		return []schemas.Alert{a}
	case alarm && prio.Rank() < open.Priority.Rank():
		// Better, but a score wobbling across a band boundary must not
		// flap the alarm: lower it only after it stayed lower a while.
		if st.NEWS2.InRangeSince.IsZero() {
			st.NEWS2.InRangeSince = rd.TS
		}
		if rd.TS.Sub(st.NEWS2.InRangeSince) >= c.cfg.NEWS2ResolveAfter {
			// Keeps its state: an acknowledged alert that improves needs
			// no second acknowledgement.
			a := news2Alert(rd, in, prio, open.AlertID, open.State)
			a.AckedBy = open.AckedBy
			st.NEWS2 = ConditionState{Open: &a, RaisedAt: st.NEWS2.RaisedAt}
			return []schemas.Alert{a}
		}
	case alarm:
		st.NEWS2.InRangeSince = time.Time{}
	case open != nil:
		if st.NEWS2.InRangeSince.IsZero() {
			st.NEWS2.InRangeSince = rd.TS
		}
		if rd.TS.Sub(st.NEWS2.InRangeSince) >= c.cfg.NEWS2ResolveAfter {
			a := news2Alert(rd, in, open.Priority, open.AlertID, schemas.Resolved)
			a.AckedBy = open.AckedBy
			st.NEWS2 = ConditionState{}
			return []schemas.Alert{a}
		}
	}
	return nil
}

// deadline is the earliest time on the processor clock at which one of the
// patient's timers fires; zero if none is pending.
func deadline(st *PatientState, rs *RuleSet) time.Time {
	var first time.Time
	at := func(t time.Time) {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	for i := range rs.SignalLost {
		sl := &rs.SignalLost[i]
		if s, ok := st.Latest.Get(sl.Kind); ok && sl.armed(s) && st.Conditions[SignalLostCondition(sl.Kind)].Open == nil {
			at(s.At.Add(sl.After))
		}
	}
	for _, cs := range st.Conditions {
		at(escalationDue(&cs, rs))
	}
	at(escalationDue(&st.NEWS2, rs))
	return first
}

// armed says whether silence of s's kind would be a lost signal: the
// patient sends it more often than the rule's After (the last two readings
// arrived closer together). A vital charted every few minutes by a nurse
// is never "lost" by a 15 s rule, nor is one sent only once.
func (sl *SignalLostRule) armed(s Sample) bool {
	return !s.At.IsZero() && s.Gap > 0 && s.Gap < sl.After
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
func timers(st *PatientState, rs *RuleSet, patient string, now time.Time) []schemas.Alert {
	if d := deadline(st, rs); d.IsZero() || now.Before(d) {
		return nil
	}
	var out []schemas.Alert
	for i := range rs.SignalLost {
		sl := &rs.SignalLost[i]
		cond := SignalLostCondition(sl.Kind)
		s, ok := st.Latest.Get(sl.Kind)
		if !ok || !sl.armed(s) || st.Conditions[cond].Open != nil || now.Before(s.At.Add(sl.After)) {
			continue
		}
		last := schemas.Reading{PatientID: patient, DeviceID: s.Device, Kind: sl.Kind, Value: s.Value,
			Unit: unitOf(sl.Kind), TS: s.TS, Seq: s.Seq}
		due := s.At.Add(sl.After)
		a := schemas.Alert{AlertID: schemas.AlertID(cond, &last), PatientID: patient, Condition: cond,
			Priority: sl.Priority, State: schemas.Raised, TS: due, Limit: sl.After.Seconds(),
			Message: "no " + string(sl.Kind) + " from device " + s.Device + " for " + sl.After.String(), Reading: last}
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
	return out
}

// Due reports whether a patient's timer is due by clock(partition).
func (c *Clinical) Due(clock func(partition int32) time.Time) bool {
	return len(c.due(clock)) > 0
}

func (c *Clinical) due(clock func(partition int32) time.Time) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	check := func(id string, st *PatientState) {
		if d := deadline(st, c.cfg.For(id)); !d.IsZero() && !clock(c.partition[id]).Before(d) {
			ids = append(ids, id)
		}
	}
	for id, st := range c.dirty {
		check(id, st)
	}
	for id, st := range c.committed {
		if c.dirty[id] == nil {
			check(id, st)
		}
	}
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
		c.mu.Lock()
		p := c.partition[id]
		c.mu.Unlock()
		st := c.state(id, p, false)
		alerts = append(alerts, timers(st, c.cfg.For(id), id, clock(p))...)
	}
	return c.records(alerts)
}

func news2Alert(rd *schemas.Reading, in NEWS2Input, prio schemas.Priority, id string, state schemas.State) schemas.Alert {
	s := ScoreNEWS2(in)
	total := s.Total
	msg := fmt.Sprintf("NEWS2 %d (%s risk)", s.Total, s.Band)
	if len(s.Missing) > 0 {
		msg += fmt.Sprintf("; %d parameter(s) missing, so at least this", len(s.Missing))
	}
	return schemas.Alert{AlertID: id, PatientID: rd.PatientID, Condition: "news2", Priority: prio, State: state, TS: rd.TS,
		Limit: 0, Message: msg, Reading: *rd, Score: &total, Components: s.Components}
}

// Begin starts a transaction's batch.
func (c *Clinical) Begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.dirty)
	c.pending = c.pending[:0]
}

// Flush returns the changelog records of the patients changed in this
// transaction.
func (c *Clinical) Flush() ([]*kgo.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*kgo.Record, 0, len(c.dirty))
	states := make([]*PatientState, 0, len(c.dirty))
	for id, st := range c.dirty {
		out = append(out, &kgo.Record{Topic: c.topics.State, Key: []byte(id)})
		states = append(states, st)
	}
	// Encoding every changed patient's snapshot was a fifth of a
	// transaction's time (measured): spread it over the cores.
	workers := min(runtime.GOMAXPROCS(0), len(out)/64+1)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(out); i += workers {
				if out[i].Value, errs[w] = json.Marshal(states[i]); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("encode state of a patient: %w", err)
	}
	return out, nil
}

// Committed makes the transaction's state the committed state.
func (c *Clinical) Committed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	maps.Copy(c.committed, c.dirty)
	clear(c.dirty)
	for i := range c.pending {
		a := &c.pending[i]
		c.alarms.Add(context.Background(), 1, metric.WithAttributes(attribute.String("priority", string(a.Priority)),
			attribute.String("condition", a.Condition), attribute.String("state", string(a.State)),
			attribute.String("ward", a.Ward)))
	}
	c.pending = c.pending[:0]
}

// Aborted drops the transaction's state: its records come again.
func (c *Clinical) Aborted() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.dirty)
	c.pending = c.pending[:0]
}

// Forget drops the state of patients on partitions this processor lost.
func (c *Clinical) Forget(partitions []int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, p := range c.partition {
		for _, lost := range partitions {
			if p == lost {
				delete(c.committed, id)
				delete(c.partition, id)
			}
		}
	}
}

// Restore reads the changelog partitions with read_committed up to their
// last stable offset and loads every patient's latest snapshot.
func (c *Clinical) Restore(ctx context.Context, partitions []int32) error {
	if len(partitions) == 0 {
		return nil
	}
	adm, err := kgo.NewClient(c.restoreOpts...)
	if err != nil {
		return err
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, c.topics.State)
	if err != nil {
		return fmt.Errorf("list changelog offsets: %w", err)
	}
	assign := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	for _, p := range partitions {
		if o, ok := ends.Lookup(c.topics.State, p); ok && o.Err == nil && o.Offset > 0 {
			assign[p] = kgo.NewOffset().AtStart()
			want[p] = o.Offset
		}
	}
	loaded := map[string]*PatientState{}
	owner := map[string]int32{}
	if len(assign) > 0 {
		cl, err := kgo.NewClient(append(c.restoreOpts,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.topics.State: assign}),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			// Control records count towards the end: a partition whose
			// last record is a commit marker is otherwise never "done".
			kgo.KeepControlRecords(),
			kgo.FetchMaxWait(100*time.Millisecond))...)
		if err != nil {
			return err
		}
		defer cl.Close()
		at := map[int32]int64{}
		for !restored(at, want) {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("restore state: %w", err)
			}
			var ferr error
			fs.EachError(func(_ string, _ int32, err error) { ferr = err })
			if ferr != nil {
				return fmt.Errorf("restore state: %w", ferr)
			}
			fs.EachRecord(func(r *kgo.Record) {
				at[r.Partition] = r.Offset + 1
				if r.Attrs.IsControl() {
					return
				}
				if r.Value == nil {
					delete(loaded, string(r.Key))
					return
				}
				var st PatientState
				if json.Unmarshal(r.Value, &st) == nil {
					loaded[string(r.Key)] = st.clone()
					owner[string(r.Key)] = r.Partition
				}
			})
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, st := range loaded {
		c.committed[id] = st
		c.partition[id] = owner[id]
	}
	return nil
}

func restored(at, want map[int32]int64) bool {
	for p, end := range want {
		if at[p] < end {
			return false
		}
	}
	return true
}

func unitOf(k schemas.Kind) string {
	spec, _ := schemas.SpecFor(k)
	return spec.Unit
}
