package schemas

import (
	"math"
	"slices"
	"strings"
	"time"
)

// Kind names a vital sign. The set is closed: a reading of any other kind is
// rejected at ingest, so every consumer can switch over it exhaustively.
type Kind string

// The eight MonitorMe vitals.
const (
	HeartRate   Kind = "heart_rate"
	BPSystolic  Kind = "bp_systolic"
	BPDiastolic Kind = "bp_diastolic"
	SpO2        Kind = "spo2"
	Glucose     Kind = "glucose"
	RespRate    Kind = "resp_rate"
	// ECG is the ST-segment deviation, in millivolts, the bedside monitor
	// derives from each second of waveform. The raw waveform (250–500
	// samples/s per lead) stays on the device: at that volume it would be a
	// different product, and no MonitorMe rule reads it.
	ECG         Kind = "ecg"
	Temperature Kind = "temperature"
	// Sleep is the patient's sleep status: 1 asleep, 0 awake.
	Sleep Kind = "sleep"
	// O2Supplement says whether the patient breathes supplemental oxygen:
	// 1 oxygen, 0 room air (a NEWS2 parameter).
	O2Supplement Kind = "o2_supplement"
	// Consciousness is the ACVPU level: 0 Alert, 1 new Confusion,
	// 2 Voice, 3 Pain, 4 Unresponsive (a NEWS2 parameter).
	Consciousness Kind = "consciousness"
)

// Spec is what a valid reading of one kind looks like: its UCUM unit and
// the physiologically possible range. The range is deliberately wider than
// any alert limit (a heart rate of 0 is asystole, and must be accepted);
// it only rejects values no patient can have, which mean a broken device.
type Spec struct {
	Kind     Kind
	Unit     string
	Min, Max float64
	// Discrete kinds accept only the listed values.
	Discrete []float64
}

// Specs lists every kind with its unit and range, in a stable order.
var Specs = []Spec{
	{Kind: HeartRate, Unit: "/min", Min: 0, Max: 350},
	{Kind: BPSystolic, Unit: "mm[Hg]", Min: 0, Max: 350},
	{Kind: BPDiastolic, Unit: "mm[Hg]", Min: 0, Max: 250},
	{Kind: SpO2, Unit: "%", Min: 0, Max: 100},
	{Kind: Glucose, Unit: "mg/dL", Min: 0, Max: 3000},
	{Kind: RespRate, Unit: "/min", Min: 0, Max: 150},
	{Kind: ECG, Unit: "mV", Min: -10, Max: 10},
	{Kind: Temperature, Unit: "Cel", Min: 10, Max: 46},
	{Kind: Sleep, Unit: "1", Min: 0, Max: 1, Discrete: []float64{0, 1}},
	{Kind: O2Supplement, Unit: "1", Min: 0, Max: 1, Discrete: []float64{0, 1}},
	{Kind: Consciousness, Unit: "1", Min: 0, Max: 4, Discrete: []float64{0, 1, 2, 3, 4}},
}

// NumKinds is the number of kinds, the length of Specs.
const NumKinds = 11

// Index returns k's place in Specs, or -1 for an unknown kind. A switch,
// not a map: stateful consumers index per-kind arrays with it several
// times per reading.
func (k Kind) Index() int {
	switch k {
	case HeartRate:
		return 0
	case BPSystolic:
		return 1
	case BPDiastolic:
		return 2
	case SpO2:
		return 3
	case Glucose:
		return 4
	case RespRate:
		return 5
	case ECG:
		return 6
	case Temperature:
		return 7
	case Sleep:
		return 8
	case O2Supplement:
		return 9
	case Consciousness:
		return 10
	}
	return -1
}

// SpecFor returns the spec of kind k.
func SpecFor(k Kind) (Spec, bool) {
	for _, s := range Specs {
		if s.Kind == k {
			return s, true
		}
	}
	return Spec{}, false
}

// Reading is one measurement of one vital of one patient by one device
// (vital-reading.v1). Its identity is (DeviceID, Kind, Seq): a device
// retrying a batch it was not sure of sends the same identity again, which
// is how duplicates from client retries are recognized downstream.
type Reading struct {
	PatientID string    `json:"patient_id"`
	DeviceID  string    `json:"device_id"`
	Kind      Kind      `json:"kind"`
	Value     float64   `json:"value"`
	Unit      string    `json:"unit"`
	TS        time.Time `json:"ts"`
	Seq       uint64    `json:"seq"`
}

// MaxFutureSkew is how far ahead of the receiver's clock a reading's event
// time may be. More than that is a device with a wrong clock, whose
// readings would sort after real ones and confuse every time window.
const MaxFutureSkew = 5 * time.Minute

// MaxIDLen bounds patient and device ids; they are Kafka keys and
// ClickHouse primary-key columns, so they must stay short.
const MaxIDLen = 64

// MaxSeq bounds a sequence number: 2^53 - 1, the largest integer every
// JSON parser reads exactly (RFC 7493, I-JSON); a device counting in
// microseconds since 1970 stays below it for two centuries. Beyond it a
// client's own JSON library may round the number it sends.
const MaxSeq = 1<<53 - 1

// reasonAhead is the problem of a reading stamped beyond MaxFutureSkew.
const reasonAhead = "is more than 5m0s in the future (device clock wrong?)"

// reasonUnset is the problem of a reading stamped before MinEventTime.
const reasonUnset = "is before 2000-01-01T00:00:00Z (device clock not set?)"

// ClockOnly says every problem of the batch is a reading stamped outside
// what the receiver's clock allows (before 2000, or beyond MaxFutureSkew
// ahead): a batch its schema allows (no JSON Schema can say "now"), which
// the ingest answers 409, not 400.
func (e *BatchError) ClockOnly() bool {
	if e.More > 0 || len(e.Items) == 0 {
		return false
	}
	for _, fe := range e.Items {
		if fe.Field != "ts" || fe.Reason != reasonAhead && !strings.HasPrefix(fe.Reason, reasonUnset) {
			return false
		}
	}
	return true
}

// Check validates r against its kind's spec at receive time now, and
// returns one FieldError per problem found (nil if r is valid). Index is
// left zero; batch callers set it.
func (r *Reading) Check(now time.Time) []FieldError {
	var errs []FieldError
	add := func(field, reason string) { errs = append(errs, FieldError{Field: field, Reason: reason}) }
	if r.Seq > MaxSeq {
		add("seq", "is more than 9007199254740991 (2^53 - 1, the largest integer JSON carries exactly)")
	}
	if reason := CheckID(r.PatientID); reason != "" {
		add("patient_id", reason)
	}
	if reason := CheckID(r.DeviceID); reason != "" {
		add("device_id", reason)
	}
	spec, ok := SpecFor(r.Kind)
	switch {
	case r.Kind == "":
		add("kind", "is required")
	case !ok:
		add("kind", "unknown kind "+Quote(string(r.Kind))+"; one of "+kindList())
	}
	if ok && r.Unit != spec.Unit {
		add("unit", "kind "+string(r.Kind)+" is measured in "+Quote(spec.Unit)+", not "+Quote(r.Unit))
	}
	switch {
	case math.IsNaN(r.Value) || math.IsInf(r.Value, 0):
		add("value", "must be a finite number")
	case ok && spec.Discrete != nil && !slices.Contains(spec.Discrete, r.Value):
		add("value", "kind "+string(r.Kind)+" takes only "+floatList(spec.Discrete))
	case ok && (r.Value < spec.Min || r.Value > spec.Max):
		add("value", "outside the possible range ["+ftoa(spec.Min)+", "+ftoa(spec.Max)+"] "+spec.Unit+" for "+string(r.Kind))
	}
	switch {
	case r.TS.IsZero():
		add("ts", "is required (RFC 3339 event time)")
	case r.TS.Before(MinEventTime):
		add("ts", reasonUnset)
	case r.TS.After(now.Add(MaxFutureSkew)):
		add("ts", reasonAhead)
	}
	return errs
}

// MinEventTime is the earliest event time a reading may carry: anything
// older is a device whose clock was never set (1970, year 1), not a
// measurement.
var MinEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// CheckID returns what is wrong with a patient or device id, "" if nothing.
func CheckID(id string) string {
	switch {
	case id == "":
		return "is required"
	case len(id) > MaxIDLen:
		return "is longer than 64 bytes"
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return "may contain only letters, digits and . _ : -"
		}
	}
	return ""
}
