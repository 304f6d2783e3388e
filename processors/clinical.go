package processors

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/schemas"
)

// Sample is the latest value of one vital.
type Sample struct {
	Value float64   `json:"v"`
	TS    time.Time `json:"ts"`
}

// PatientState is everything the clinical rules remember of one patient;
// it is what the changelog holds, one record per patient.
type PatientState struct {
	Latest     map[schemas.Kind]Sample   `json:"latest"`
	Conditions map[string]ConditionState `json:"conditions,omitempty"`
	// NEWS2 is the open "news2" alert, if any, and when its band last
	// dropped back to low.
	NEWS2 ConditionState `json:"news2"`
}

func (s *PatientState) clone() *PatientState {
	c := &PatientState{Latest: maps.Clone(s.Latest), Conditions: maps.Clone(s.Conditions), NEWS2: s.NEWS2}
	if c.Latest == nil {
		c.Latest = map[schemas.Kind]Sample{}
	}
	if c.Conditions == nil {
		c.Conditions = map[string]ConditionState{}
	}
	return c
}

// ClinicalConfig is the rule set of the clinical handler.
type ClinicalConfig struct {
	Rules []ConditionRule
	// NEWS2 enables the early warning score alert.
	NEWS2 bool
	// NEWS2MaxAge is how old a parameter may be, relative to the reading
	// being processed, and still count; older is missing.
	NEWS2MaxAge time.Duration
	// NEWS2ResolveAfter is how long the score must stay in the low band
	// before an open news2 alert resolves.
	NEWS2ResolveAfter time.Duration
	// Hypercapnic patients are scored on SpO2 scale 2.
	Hypercapnic map[string]bool
}

// Clinical is the stateful Handler of the clinical alerting engine: per
// patient, the latest value of each vital, the condition rules' state and
// the NEWS2 alert, mirrored to the compacted state changelog in the same
// transaction as the alerts and offsets.
type Clinical struct {
	cfg       ClinicalConfig
	alerts    string
	changelog string
	// seeds reach the brokers for restoring state.
	restoreOpts []kgo.Opt

	mu        sync.Mutex
	committed map[string]*PatientState // by patient
	partition map[string]int32         // patient -> vitals partition, for Forget
	dirty     map[string]*PatientState // changed in the open transaction
}

// NewClinical returns the handler; restoreOpts are the client options
// (seeds, TLS) of the client that reads the changelog back.
func NewClinical(cfg ClinicalConfig, alertsTopic, changelogTopic string, restoreOpts ...kgo.Opt) *Clinical {
	return &Clinical{cfg: cfg, alerts: alertsTopic, changelog: changelogTopic, restoreOpts: restoreOpts,
		committed: map[string]*PatientState{}, partition: map[string]int32{}, dirty: map[string]*PatientState{}}
}

// Handle applies one reading.
func (c *Clinical) Handle(r *kgo.Record) ([]*kgo.Record, error) {
	rd, err := DecodeReading(r)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	st := c.dirty[rd.PatientID]
	if st == nil {
		if cur := c.committed[rd.PatientID]; cur != nil {
			st = cur.clone()
		} else {
			st = (&PatientState{}).clone()
		}
		c.dirty[rd.PatientID] = st
		c.partition[rd.PatientID] = r.Partition
	}
	c.mu.Unlock()
	alerts := c.apply(st, &rd)
	out := make([]*kgo.Record, 0, len(alerts))
	for i := range alerts {
		rec, err := AlertRecord(c.alerts, &alerts[i])
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// apply is the pure part: state and reading in, state and alerts out.
func (c *Clinical) apply(st *PatientState, rd *schemas.Reading) []schemas.Alert {
	if cur, ok := st.Latest[rd.Kind]; !ok || !rd.TS.Before(cur.TS) {
		st.Latest[rd.Kind] = Sample{Value: rd.Value, TS: rd.TS}
	}
	asleep := st.Latest[schemas.Sleep].Value == 1
	var out []schemas.Alert
	for i := range c.cfg.Rules {
		rule := &c.cfg.Rules[i]
		if rule.Kind != rd.Kind {
			continue
		}
		cs, evs := rule.Step(st.Conditions[rule.Condition], rd, asleep)
		st.Conditions[rule.Condition] = cs
		out = append(out, evs...)
	}
	if c.cfg.NEWS2 {
		out = append(out, c.news2(st, rd)...)
	}
	return out
}

func (c *Clinical) news2(st *PatientState, rd *schemas.Reading) []schemas.Alert {
	fresh := func(k schemas.Kind) (float64, bool) {
		s, ok := st.Latest[k]
		if !ok || rd.TS.Sub(s.TS) > c.cfg.NEWS2MaxAge {
			return 0, false
		}
		return s.Value, true
	}
	in := NEWS2Input{Hypercapnic: c.cfg.Hypercapnic[rd.PatientID]}
	for k, dst := range map[schemas.Kind]**float64{schemas.RespRate: &in.RespRate, schemas.SpO2: &in.SpO2,
		schemas.BPSystolic: &in.SystolicBP, schemas.HeartRate: &in.Pulse, schemas.Temperature: &in.Temperature} {
		if v, ok := fresh(k); ok {
			*dst = &v
		}
	}
	if v, ok := fresh(schemas.O2Supplement); ok {
		on := v == 1
		in.OnOxygen = &on
	}
	if v, ok := fresh(schemas.Consciousness); ok {
		lvl := int(v)
		in.Consciousness = &lvl
	}
	score := ScoreNEWS2(in)
	prio, alarm := score.Priority()
	open := st.NEWS2.Open
	switch {
	case alarm && open == nil:
		a := news2Alert(rd, score, prio, schemas.AlertID("news2", rd), schemas.Raised)
		st.NEWS2 = ConditionState{Open: &a}
		return []schemas.Alert{a}
	case alarm && rank(prio) > rank(open.Priority):
		// Worse: the one open alert is updated in place at once.
		a := news2Alert(rd, score, prio, open.AlertID, schemas.Raised)
		st.NEWS2 = ConditionState{Open: &a}
		return []schemas.Alert{a}
	case alarm && rank(prio) < rank(open.Priority):
		// Better, but a score wobbling across a band boundary must not
		// flap the alarm: lower it only after it stayed lower a while.
		if st.NEWS2.InRangeSince.IsZero() {
			st.NEWS2.InRangeSince = rd.TS
		}
		if rd.TS.Sub(st.NEWS2.InRangeSince) >= c.cfg.NEWS2ResolveAfter {
			a := news2Alert(rd, score, prio, open.AlertID, schemas.Raised)
			st.NEWS2 = ConditionState{Open: &a}
			return []schemas.Alert{a}
		}
	case alarm:
		st.NEWS2.InRangeSince = time.Time{}
	case open != nil:
		if st.NEWS2.InRangeSince.IsZero() {
			st.NEWS2.InRangeSince = rd.TS
		}
		if rd.TS.Sub(st.NEWS2.InRangeSince) >= c.cfg.NEWS2ResolveAfter {
			a := news2Alert(rd, score, open.Priority, open.AlertID, schemas.Resolved)
			st.NEWS2 = ConditionState{}
			return []schemas.Alert{a}
		}
	}
	return nil
}

func rank(p schemas.Priority) int {
	switch p {
	case schemas.High:
		return 3
	case schemas.Medium:
		return 2
	case schemas.Low:
		return 1
	}
	return 0
}

func news2Alert(rd *schemas.Reading, s NEWS2Score, prio schemas.Priority, id string, state schemas.State) schemas.Alert {
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
}

// Flush returns the changelog records of the patients changed in this
// transaction.
func (c *Clinical) Flush() ([]*kgo.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*kgo.Record, 0, len(c.dirty))
	for id, st := range c.dirty {
		v, err := json.Marshal(st)
		if err != nil {
			return nil, fmt.Errorf("encode state of a patient: %w", err)
		}
		out = append(out, &kgo.Record{Topic: c.changelog, Key: []byte(id), Value: v})
	}
	return out, nil
}

// Committed makes the transaction's state the committed state.
func (c *Clinical) Committed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	maps.Copy(c.committed, c.dirty)
	clear(c.dirty)
}

// Aborted drops the transaction's state: its records come again.
func (c *Clinical) Aborted() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.dirty)
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
	ends, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, c.changelog)
	if err != nil {
		return fmt.Errorf("list changelog offsets: %w", err)
	}
	assign := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	for _, p := range partitions {
		if o, ok := ends.Lookup(c.changelog, p); ok && o.Err == nil && o.Offset > 0 {
			assign[p] = kgo.NewOffset().AtStart()
			want[p] = o.Offset
		}
	}
	loaded := map[string]*PatientState{}
	owner := map[string]int32{}
	if len(assign) > 0 {
		cl, err := kgo.NewClient(append(c.restoreOpts,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.changelog: assign}),
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

func limit(v float64) *float64 { return &v }

// DefaultClinicalConfig is the adult ward rule set: persistence delays on
// the fast vitals (a brief artefact raises nothing), critical limits with
// no delay, lower heart rate and respiration limits in sleep, and NEWS2.
// Slowly sampled vitals (blood pressure hourly, temperature, glucose)
// alarm on the reading itself and resolve on the next one in range.
func DefaultClinicalConfig() ClinicalConfig {
	const resolve = 30 * time.Second
	return ClinicalConfig{
		Rules: []ConditionRule{
			{Condition: "spo2_low", Kind: schemas.SpO2, Below: true, Limit: 90, Priority: schemas.High, Delay: 15 * time.Second, ResolveAfter: resolve},
			{Condition: "spo2_critical", Kind: schemas.SpO2, Below: true, Limit: 80, Priority: schemas.High, ResolveAfter: resolve},
			{Condition: "heart_rate_high", Kind: schemas.HeartRate, Limit: 120, Priority: schemas.Medium, Delay: 10 * time.Second, ResolveAfter: resolve},
			{Condition: "heart_rate_low", Kind: schemas.HeartRate, Below: true, Limit: 50, AsleepLimit: limit(40), Priority: schemas.Medium, Delay: 10 * time.Second, ResolveAfter: resolve},
			{Condition: "heart_rate_critical", Kind: schemas.HeartRate, Below: true, Limit: 30, Priority: schemas.High, ResolveAfter: resolve},
			{Condition: "resp_rate_low", Kind: schemas.RespRate, Below: true, Limit: 8, AsleepLimit: limit(6), Priority: schemas.High, Delay: 15 * time.Second, ResolveAfter: resolve},
			{Condition: "resp_rate_high", Kind: schemas.RespRate, Limit: 25, Priority: schemas.Medium, Delay: 30 * time.Second, ResolveAfter: resolve},
			{Condition: "bp_systolic_low", Kind: schemas.BPSystolic, Below: true, Limit: 90, AsleepLimit: limit(85), Priority: schemas.High},
			{Condition: "bp_systolic_high", Kind: schemas.BPSystolic, Limit: 180, Priority: schemas.Medium},
			{Condition: "temperature_low", Kind: schemas.Temperature, Below: true, Limit: 35, Priority: schemas.Medium},
			{Condition: "temperature_high", Kind: schemas.Temperature, Limit: 39, Priority: schemas.Medium},
			{Condition: "glucose_low", Kind: schemas.Glucose, Below: true, Limit: 70, Priority: schemas.High},
			{Condition: "glucose_high", Kind: schemas.Glucose, Limit: 250, Priority: schemas.Medium},
		},
		NEWS2:             true,
		NEWS2MaxAge:       90 * time.Minute,
		NEWS2ResolveAfter: 5 * time.Minute,
	}
}
