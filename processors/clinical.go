package processors

// The clinical engine's dispatch: records in, the rules applied to the
// patient's state (store.go), alert records out, NEWS2 glue. The rules
// themselves (condition.go, news2.go) are pure functions.

import (
	"context"
	"fmt"
	"runtime"
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
	return &Clinical{cfg: cfg, topics: topics, store: newStore(topics.State, restoreOpts)}
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
// with them, the acknowledgements.
func (c *Clinical) Inputs() []string { return []string{c.topics.Vitals, c.topics.Acks} }

// Restore loads the state of newly assigned vitals partitions from the
// changelog.
func (c *Clinical) Restore(ctx context.Context, partitions []int32) error {
	return c.store.restore(ctx, partitions)
}

// Forget drops the state of patients on partitions this processor lost.
func (c *Clinical) Forget(partitions []int32) { c.store.forget(partitions) }

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
	c.store.abort()
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
	st := c.store.get(rd.PatientID, r.Partition, true)
	rs := c.cfg.For(rd.PatientID)
	alerts := c.timers(st, rs, rd.PatientID, r.Timestamp, c.resumed(r.Partition))
	alerts = append(alerts, c.apply(st, rs, &rd, r.Timestamp)...)
	return c.records(alerts)
}

func (c *Clinical) records(alerts []schemas.Alert) ([]*kgo.Record, error) {
	for i := range alerts {
		alerts[i].Ward = c.cfg.For(alerts[i].PatientID).Ward
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

// handleAck marks an open alert acknowledged, which stops its escalation.
// An acknowledgement of an alert that is no longer open (resolved since,
// or on another processor's patient before a rebalance moved it) changes
// nothing: it is stale, not poison.
func (c *Clinical) handleAck(r *kgo.Record) ([]*kgo.Record, error) {
	ack, err := schemas.DecodeAck(r)
	if err != nil {
		return nil, fmt.Errorf("decode acknowledgement: %w", err)
	}
	st := c.store.get(ack.PatientID, r.Partition, false)
	if st == nil {
		return nil, nil
	}
	alerts := c.timers(st, c.cfg.For(ack.PatientID), ack.PatientID, r.Timestamp, c.resumed(r.Partition))
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
	gap, since, arrived := cadence(cur, ok, at)
	switch {
	case !ok || !rd.TS.Before(cur.TS):
		st.Latest.Set(rd.Kind, Sample{Value: rd.Value, TS: rd.TS, At: at, Gap: gap, Since: since, Device: rd.DeviceID, Seq: rd.Seq})
	case arrived:
		// A late reading is no newer a value, but the signal is there.
		cur.At, cur.Gap, cur.Since = at, gap, since
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

func unitOf(k schemas.Kind) string {
	spec, _ := schemas.SpecFor(k)
	return spec.Unit
}
