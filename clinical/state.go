package clinical

// The clinical engine's per-patient state: what one patient's record in
// the state changelog holds (package statestore keeps it per transaction
// and restores it), and its JSON.

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

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

// Empty says whether the state holds nothing: a patient whose state
// expired, deleted from the store and the changelog at commit.
func (s *PatientState) Empty() bool {
	for i := range s.Latest {
		if !s.Latest[i].TS.IsZero() {
			return false
		}
	}
	return len(s.Conditions) == 0 && s.NEWS2.isZero() && len(s.Latched) == 0 && s.Ward == "" && s.Bed == ""
}

// Clone is a copy of s that shares nothing a rule changes in place: a
// transaction works on one, so an abort leaves the committed state as it was.
func (s *PatientState) Clone() *PatientState {
	c := *s
	c.Conditions = maps.Clone(s.Conditions)
	if c.Conditions == nil {
		c.Conditions = map[string]ConditionState{}
	}
	c.Seen = slices.Clone(s.Seen)
	c.Latched = slices.Clone(s.Latched)
	return &c
}
