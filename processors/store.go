package processors

// The clinical engine's per-patient state: what one patient's record in
// the state changelog holds, and the store that keeps it per transaction
// (Begin, Flush, Committed, Aborted) and per partition (Restore, Forget).
// Apart from the engine's rules, as Redpanda Connect keeps a partition's
// state apart from its poll loop.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/schemas"
)

// Sample is the latest value of one vital.
type Sample struct {
	Value float64
	TS    time.Time
	// At is when it arrived: the timestamp the ingest producer gave its
	// record. Silence is measured in arrival time, not device time, so a
	// device whose clock is off neither hides nor fakes a lost signal.
	At time.Time
	// Gap is the time between the last two arrivals: the cadence a
	// signal-lost rule learns what "normally sends" means from.
	Gap time.Duration
	// Since is when the current run of deliveries began: arrivals with
	// no silence of runReset or more between them. A signal-lost rule
	// arms only once a run is established (see armed). Zero in
	// snapshots written before it existed, which counts as established.
	Since  time.Time
	Device string
	Seq    uint64
	// Recent holds the kind's readings within the reorder window, in
	// event-time order, the newest last: where a reading that arrives
	// out of order is placed. Replaced, never changed in place: the
	// open transaction's copy of the state shares it with the committed
	// one.
	Recent []point
}

// sampleJSON is how a Sample is written to the changelog: times as Unix
// nanoseconds ("tn", "an") rather than RFC 3339 strings, which made a
// patient's snapshot a fifth larger; every patient the transaction touched
// writes one, several times a second on a busy ward. "ts" and "at" are
// the RFC 3339 fields of snapshots written before, still read.
type sampleJSON struct {
	Value  float64       `json:"v"`
	TN     int64         `json:"tn,omitempty"`
	AN     int64         `json:"an,omitempty"`
	SN     int64         `json:"sn,omitempty"`
	TS     time.Time     `json:"ts,omitzero"`
	At     time.Time     `json:"at,omitzero"`
	Gap    time.Duration `json:"g,omitempty"`
	Device string        `json:"d,omitempty"`
	Seq    uint64        `json:"s,omitempty"`
	// Recent as pairs: nanoseconds before TS, value.
	Recent []float64 `json:"r,omitempty"`
}

// MarshalJSON writes the compact form, by hand: snapshots are encoded for
// every changed patient in every transaction.
func (s *Sample) MarshalJSON() ([]byte, error) { return s.appendJSON(make([]byte, 0, 96)) }

func (s *Sample) appendJSON(b []byte) ([]byte, error) {
	if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		return nil, fmt.Errorf("sample value %v is not a finite number", s.Value)
	}
	b = append(b, `{"v":`...)
	b = strconv.AppendFloat(b, s.Value, 'g', -1, 64)
	b = append(b, `,"tn":`...)
	b = strconv.AppendInt(b, s.TS.UnixNano(), 10)
	if !s.At.IsZero() {
		b = append(b, `,"an":`...)
		b = strconv.AppendInt(b, s.At.UnixNano(), 10)
	}
	if s.Gap != 0 {
		b = append(b, `,"g":`...)
		b = strconv.AppendInt(b, int64(s.Gap), 10)
	}
	if !s.Since.IsZero() {
		b = append(b, `,"sn":`...)
		b = strconv.AppendInt(b, s.Since.UnixNano(), 10)
	}
	if s.Device != "" {
		b = append(b, `,"d":`...)
		b = schemas.AppendString(b, s.Device)
	}
	if s.Seq != 0 {
		b = append(b, `,"s":`...)
		b = strconv.AppendUint(b, s.Seq, 10)
	}
	if len(s.Recent) > 0 {
		b = append(b, `,"r":[`...)
		for i, p := range s.Recent {
			if math.IsNaN(p.V) || math.IsInf(p.V, 0) {
				return nil, fmt.Errorf("sample value %v is not a finite number", p.V)
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(s.TS.Sub(p.TS)), 10)
			b = append(b, ',')
			b = strconv.AppendFloat(b, p.V, 'g', -1, 64)
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads the compact form and the RFC 3339 one before it.
func (s *Sample) UnmarshalJSON(b []byte) error {
	var w sampleJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = Sample{Value: w.Value, TS: w.TS, At: w.At, Gap: w.Gap, Device: w.Device, Seq: w.Seq}
	if w.TN != 0 {
		s.TS = time.Unix(0, w.TN).UTC()
	}
	if w.AN != 0 {
		s.At = time.Unix(0, w.AN).UTC()
	}
	if w.SN != 0 {
		s.Since = time.Unix(0, w.SN).UTC()
	}
	if len(w.Recent)%2 != 0 {
		return errors.New("sample: recent readings are not pairs")
	}
	for i := 0; i < len(w.Recent); i += 2 {
		s.Recent = append(s.Recent, point{TS: s.TS.Add(-time.Duration(w.Recent[i])), V: w.Recent[i+1]})
	}
	return nil
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
func (v *Vitals) MarshalJSON() ([]byte, error) { return v.appendJSON(nil) }

func (v *Vitals) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	first := true
	for _, i := range kindsByName {
		if v[i].TS.IsZero() {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = schemas.AppendString(b, string(schemas.Specs[i].Kind))
		b = append(b, ':')
		var err error
		if b, err = v[i].appendJSON(b); err != nil {
			return nil, err
		}
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
	// NEWS2 is the open "news2" alert, if any, and how long the score
	// has stayed in each band.
	NEWS2 NEWS2State `json:"news2"`
	// Seen holds, per device and kind, which sequence numbers the engine
	// applied: a copy of a reading (a retried batch) changes nothing.
	Seen []SeenWindow `json:"seen,omitempty"`
	// Latched are alarms whose condition cleared before anyone
	// acknowledged them (resolved-unacknowledged), oldest first.
	Latched []schemas.Alert `json:"latched,omitempty"`
	// SilencedUntil is the end of the patient's alarm silence (event
	// time of the silence request plus its length); SilencedBy who asked.
	SilencedUntil time.Time `json:"silenced_until,omitzero"`
	SilencedBy    string    `json:"silenced_by,omitempty"`
	// Sat is the SatSeconds integral of SpO2 below the limit.
	Sat SatState `json:"sat,omitzero"`
	// Ward is the patient's ward from the latest placement (admit or
	// transfer; a discharge clears it): its rules apply from then on,
	// unless the rules file names the patient. Ward and Bed are also
	// where every alert event of the patient says it is.
	Ward string `json:"ward,omitempty"`
	Bed  string `json:"bed,omitempty"`
}

// NEWS2State is the news2 alert's state: the open alert and its timers,
// and since when (event time) the score has been in each band or worse.
type NEWS2State struct {
	ConditionState
	// AtLeast[r-1] is since when the score's priority rank has been r or
	// more without a break; zero when it is below.
	AtLeast [3]time.Time `json:"at_least,omitzero"`
	// Clock is the newest event time NEWS2 was scored at: the score's
	// event time never goes back when a parameter's device clock lags.
	Clock time.Time `json:"clock,omitzero"`
	// ClockAt is the processor-clock time Clock was reached at (the
	// arrival of the reading scored, or a timer's deadline): a wait in
	// event time ends on the processor clock at ClockAt plus what is
	// left of it after Clock, so it fires on a quiet partition.
	ClockAt time.Time `json:"clock_at,omitzero"`
	// Pending says the open alert's score is not the current one: the
	// update waits for update_every after the alert's last event.
	Pending bool `json:"pending,omitempty"`
}

// SatState is the SatSeconds integral (% × s) at the reading at TS: Sum of
// the dips that ended, Run of the one in progress.
type SatState struct {
	Sum float64   `json:"sum,omitempty"`
	Run float64   `json:"run,omitempty"`
	TS  time.Time `json:"ts,omitzero"`
}

// empty says whether the state holds nothing: a patient whose state
// expired, deleted from the store and the changelog at commit.
func (s *PatientState) empty() bool {
	for i := range s.Latest {
		if !s.Latest[i].TS.IsZero() {
			return false
		}
	}
	return len(s.Conditions) == 0 && s.NEWS2.isZero() && len(s.Latched) == 0 && s.Ward == "" && s.Bed == ""
}

func (s *PatientState) clone() *PatientState {
	c := *s
	c.Conditions = maps.Clone(s.Conditions)
	if c.Conditions == nil {
		c.Conditions = map[string]ConditionState{}
	}
	c.Seen = slices.Clone(s.Seen)
	c.Latched = slices.Clone(s.Latched)
	return &c
}

// store holds the committed state of the patients on this processor's
// vitals partitions and the copies the open transaction changed. A
// transaction works on copies (get), so an abort drops them and the
// committed state is what the changelog has; a commit makes them the
// committed state.
type store struct {
	// topic is the state changelog.
	topic string
	// restoreOpts reach the brokers for restoring state.
	restoreOpts []kgo.Opt

	mu        sync.Mutex
	committed map[string]*PatientState // by patient
	partition map[string]int32         // patient -> vitals partition
	dirty     map[string]*PatientState // changed in the open transaction
}

func newStore(topic string, restoreOpts []kgo.Opt) *store {
	return &store{topic: topic, restoreOpts: restoreOpts,
		committed: map[string]*PatientState{}, partition: map[string]int32{}, dirty: map[string]*PatientState{}}
}

// patients is how many patients' state the store holds.
func (s *store) patients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.committed)
}

// get returns the patient's state for the open transaction, creating it
// if create is set; nil if the patient is unknown and create is not set.
func (s *store) get(patient string, partition int32, create bool) *PatientState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.dirty[patient]; st != nil {
		return st
	}
	cur := s.committed[patient]
	if cur == nil && !create {
		return nil
	}
	if cur == nil {
		cur = &PatientState{}
	}
	st := cur.clone()
	s.dirty[patient] = st
	s.partition[patient] = partition
	return st
}

// peek returns the patient's state as the open transaction sees it,
// without making a copy: read only.
func (s *store) peek(patient string) *PatientState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.dirty[patient]; st != nil {
		return st
	}
	return s.committed[patient]
}

// begin starts a transaction.
func (s *store) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.dirty)
}

// flush returns the changelog records of the patients changed in this
// transaction.
func (s *store) flush() ([]*kgo.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*kgo.Record, 0, len(s.dirty))
	states := make([]*PatientState, 0, len(s.dirty))
	for id, st := range s.dirty {
		out = append(out, &kgo.Record{Topic: s.topic, Key: []byte(id)})
		states = append(states, st)
	}
	// A state emptied in this transaction (the patient expired) is
	// written as a tombstone: compaction then drops the patient from the
	// changelog, and a restore never sees it.
	// Encoding every changed patient's snapshot was a fifth of a
	// transaction's time (measured): spread it over the cores.
	workers := min(runtime.GOMAXPROCS(0), len(out)/64+1)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(out); i += workers {
				if states[i].empty() {
					continue // Value nil: a tombstone
				}
				if out[i].Value, errs[w] = appendState(nil, states[i]); errs[w] != nil {
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

// commit makes the transaction's state the committed state.
func (s *store) commit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, st := range s.dirty {
		if st.empty() {
			delete(s.committed, id)
			delete(s.partition, id)
			continue
		}
		s.committed[id] = st
	}
	clear(s.dirty)
}

// abort drops the transaction's state: its records come again.
func (s *store) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.dirty)
}

// forget drops the state of patients on partitions this processor lost.
func (s *store) forget(partitions []int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range s.partition {
		for _, lost := range partitions {
			if p == lost {
				delete(s.committed, id)
				delete(s.partition, id)
			}
		}
	}
}

// restore reads the changelog partitions with read_committed up to their
// last stable offset and loads every patient's latest snapshot.
func (s *store) restore(ctx context.Context, partitions []int32) error {
	if len(partitions) == 0 {
		return nil
	}
	adm, err := kgo.NewClient(s.restoreOpts...)
	if err != nil {
		return err
	}
	defer adm.Close()
	ends, err := settledEnds(ctx, kadm.NewClient(adm), s.topic, partitions)
	if err != nil {
		return err
	}
	assign := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	for _, p := range partitions {
		if o, ok := ends.Lookup(s.topic, p); ok && o.Err == nil && o.Offset > 0 {
			assign[p] = kgo.NewOffset().AtStart()
			want[p] = o.Offset
		}
	}
	// Only a patient's last snapshot counts: keep the bytes of each and
	// decode those alone at the end, so an uncompacted changelog costs
	// reading it, not decoding every snapshot in it.
	type last struct {
		value     []byte
		partition int32
	}
	latest := map[string]last{}
	if len(assign) > 0 {
		cl, err := kgo.NewClient(append(s.restoreOpts,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: assign}),
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
					delete(latest, string(r.Key))
					return
				}
				latest[string(r.Key)] = last{r.Value, r.Partition}
			})
		}
	}
	loaded := make(map[string]*PatientState, len(latest))
	for id, l := range latest {
		// A snapshot this build cannot read starts the patient afresh,
		// as before: failing the restore would stop the partition for
		// good on one bad record.
		var st PatientState
		if json.Unmarshal(l.value, &st) == nil {
			loaded[id] = st.clone()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, st := range loaded {
		s.committed[id] = st
		s.partition[id] = latest[id].partition
	}
	return nil
}

// doubtLimit bounds how long a restore waits for a transaction in doubt
// on the changelog: longer than any processor's transaction timeout, after
// which the broker aborts it itself. Past it the restore fails, and the
// processor starts a new session and tries again.
const doubtLimit = time.Minute

// settledEnds lists the last stable offsets of the changelog partitions
// once no transaction is in doubt on any of them: the last stable offset
// equals the high watermark. The last owner of a partition may have ended
// its transaction (EndTxn answered, so the group's offsets, fetched
// require-stable, include it) before the brokers wrote its markers here;
// reading to the stable offset of that moment restored the state of
// before the transaction under the offsets of after it, and the new owner
// then lost or repeated that transaction's alarms. A transaction of a
// member that died stays open until the broker aborts it after its
// timeout: the restore waits for that too, as the group's offset fetch
// does.
func settledEnds(ctx context.Context, adm *kadm.Client, topic string, partitions []int32) (kadm.ListedOffsets, error) {
	deadline := time.Now().Add(doubtLimit)
	for {
		stable, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			return nil, fmt.Errorf("list changelog offsets: %w", err)
		}
		hwm, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return nil, fmt.Errorf("list changelog offsets: %w", err)
		}
		var doubt []int32
		for _, p := range partitions {
			lso, ok1 := stable.Lookup(topic, p)
			end, ok2 := hwm.Lookup(topic, p)
			if !ok1 || !ok2 || lso.Err != nil || end.Err != nil {
				continue // the restore's reads report it
			}
			if lso.Offset < end.Offset {
				doubt = append(doubt, p)
			}
		}
		if len(doubt) == 0 {
			return stable, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("restore state: changelog %s partitions %v have had a transaction in doubt for %v", topic, doubt, doubtLimit)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("restore state: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func restored(at, want map[int32]int64) bool {
	for p, end := range want {
		if at[p] < end {
			return false
		}
	}
	return true
}

// each calls fn with every patient's state as the open transaction sees
// it: its copy where it changed one, else the committed state.
func (s *store) each(fn func(patient string, partition int32, st *PatientState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, st := range s.dirty {
		fn(id, s.partition[id], st)
	}
	for id, st := range s.committed {
		if s.dirty[id] == nil {
			fn(id, s.partition[id], st)
		}
	}
}
