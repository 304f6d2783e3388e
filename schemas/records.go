package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// This file is the one codec of MonitorMe's Kafka records: every record
// the platform writes (reading, alert event, acknowledgement, dead letter)
// is built here, and every reader decodes it here, the way Loki keeps
// pkg/kafka/encoding.go beside its config. Producers, processors, the sink,
// the API and the tests all call it, so no package imports a component
// just to read a record.

// Record headers every MonitorMe producer sets.
const (
	// HeaderSchema names the value's schema and version, e.g.
	// "vital-reading.v1". A record without it is read as the v1 of the
	// topic's message, so a plain Kafka client can produce readings.
	HeaderSchema = "monitorme-schema"
	// HeaderError, on a dead-letter record, says why it was rejected.
	HeaderError = "monitorme-error"
	// HeaderSource, on a dead-letter record, is "topic/partition/offset"
	// of the original.
	HeaderSource = "monitorme-source"
)

// Schema names and versions.
const (
	ReadingV1 = "vital-reading.v1"
	AlertV1   = "alert-event.v1"
	AckV1     = "alert-ack.v1"
	SilenceV1 = "alarm-silence.v1"
	RulesV1   = "rules-loaded.v1"
)

// ErrUnsupportedVersion is returned for a record whose schema header names
// a schema or version this build cannot read.
var ErrUnsupportedVersion = errors.New("unsupported schema version")

// ReadingRecord returns the record of one reading: keyed by patient, with
// the schema header.
func ReadingRecord(topic string, r *Reading) (*kgo.Record, error) {
	b, err := AppendReading(make([]byte, 0, 160), r)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", ReadingV1, err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(r.PatientID), Value: b,
		Headers: []kgo.RecordHeader{{Key: HeaderSchema, Value: []byte(ReadingV1)}}}, nil
}

// AlertRecord returns the record of an alert event: keyed by patient, with
// the schema header.
func AlertRecord(topic string, a *Alert) (*kgo.Record, error) {
	return record(topic, a.PatientID, AlertV1, a)
}

// AckRecord returns the record of an acknowledgement: keyed by patient,
// with the schema header.
func AckRecord(topic string, a *Ack) (*kgo.Record, error) {
	return record(topic, a.PatientID, AckV1, a)
}

// SilenceRecord returns the record of an alarm silence: keyed by patient,
// with the schema header, on the acks topic.
func SilenceRecord(topic string, s *Silence) (*kgo.Record, error) {
	return record(topic, s.PatientID, SilenceV1, s)
}

// RulesLoadedRecord returns the record of a rules-loaded event, on the
// acks topic.
func RulesLoadedRecord(topic string, r *RulesLoaded) (*kgo.Record, error) {
	return record(topic, RulesKey, RulesV1, r)
}

func record(topic, key, schema string, v any) (*kgo.Record, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", schema, err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: b,
		Headers: []kgo.RecordHeader{{Key: HeaderSchema, Value: []byte(schema)}}}, nil
}

// DecodeReading decodes and checks a vitals record. It validates the
// reading the way ingest does except for the future-time check, which only
// makes sense at receive time: a record that fails here was produced around
// the ingest API and belongs in a dead-letter topic. A record whose key is
// not its patient_id is refused too: it sits on the wrong partition, so the
// processor owning the patient would never see it.
func DecodeReading(r *kgo.Record) (Reading, error) {
	reading, err := decodeReadingValue(Header(r, HeaderSchema), r.Value)
	if err != nil {
		return reading, fmt.Errorf("decode reading: %w", err)
	}
	if string(r.Key) != reading.PatientID {
		return reading, fmt.Errorf("record key %q is not the reading's patient_id %q", r.Key, reading.PatientID)
	}
	return reading, nil
}

func decodeReadingValue(schema string, value []byte) (Reading, error) {
	var r Reading
	if schema != "" && schema != ReadingV1 {
		return r, fmt.Errorf("%w: %q", ErrUnsupportedVersion, schema)
	}
	if errs := decodeItem(value, &r, farFuture); errs != nil {
		return r, &BatchError{Items: errs}
	}
	return r, nil
}

// farFuture disables the receive-time future check for records already on
// a topic.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// DecodeAlert decodes an alert-event.v1 record.
func DecodeAlert(r *kgo.Record) (Alert, error) {
	var a Alert
	if schema := Header(r, HeaderSchema); schema != "" && schema != AlertV1 {
		return a, fmt.Errorf("%w: %q", ErrUnsupportedVersion, schema)
	}
	if err := json.Unmarshal(r.Value, &a); err != nil {
		return a, fmt.Errorf("decode %s: %w", AlertV1, err)
	}
	return a, nil
}

// DecodeAck decodes and validates an alert-ack.v1 record. Unlike readings,
// acknowledgements are written only by MonitorMe, so the schema header is
// required; a key that is not the patient_id is refused, as for readings.
func DecodeAck(r *kgo.Record) (Ack, error) {
	return decodeValid[Ack](r, AckV1, "acknowledgement", func(a *Ack) string { return a.PatientID })
}

// DecodeSilence decodes and validates an alarm-silence.v1 record.
func DecodeSilence(r *kgo.Record) (Silence, error) {
	return decodeValid[Silence](r, SilenceV1, "silence", func(s *Silence) string { return s.PatientID })
}

// decodeValid is the one decode of the records only MonitorMe writes:
// the schema header required and equal to schema, the JSON decoded, the
// message validated, and (when key is given) the record key equal to the
// patient it names. Before (issue 27), each Decode wrote these steps
// again.
func decodeValid[T any, PT interface {
	*T
	Validate() error
}](r *kgo.Record, schema, what string, key func(*T) string) (T, error) {
	var v T
	if got := Header(r, HeaderSchema); got != schema {
		return v, fmt.Errorf("%w: %q, want %s", ErrUnsupportedVersion, got, schema)
	}
	if err := json.Unmarshal(r.Value, &v); err != nil {
		return v, fmt.Errorf("decode %s: %w", schema, err)
	}
	if err := PT(&v).Validate(); err != nil {
		return v, err
	}
	if key != nil {
		if k := key(&v); string(r.Key) != k {
			return v, fmt.Errorf("record key %q is not the %s's patient_id %q", r.Key, what, k)
		}
	}
	return v, nil
}

// AcksRecord is one record of the acks topic, which carries three
// messages: exactly one member is set. DecodeAcksRecord is the one place
// that tells them apart by the schema header (before, five readers of
// the topic each switched on it).
type AcksRecord struct {
	Ack     *Ack
	Silence *Silence
	Rules   *RulesLoaded
}

// DecodeAcksRecord decodes a record of the acks topic: an alarm silence
// or a rules-loaded event by their schema headers, else an
// acknowledgement (whose header DecodeAck requires).
func DecodeAcksRecord(r *kgo.Record) (AcksRecord, error) {
	switch Header(r, HeaderSchema) {
	case SilenceV1:
		s, err := DecodeSilence(r)
		return AcksRecord{Silence: &s}, err
	case RulesV1:
		rl, err := DecodeRulesLoaded(r)
		return AcksRecord{Rules: &rl}, err
	}
	a, err := DecodeAck(r)
	return AcksRecord{Ack: &a}, err
}

// IsRulesLoaded says whether r is a rules-loaded event: an audit record
// on the acks topic, stamped with the wall clock when a processor
// started. It carries no clinical time: the engine and its clock must
// read past it, never advance by it.
func IsRulesLoaded(r *kgo.Record) bool { return Header(r, HeaderSchema) == RulesV1 }

// DecodeRulesLoaded decodes and validates a rules-loaded.v1 record.
func DecodeRulesLoaded(r *kgo.Record) (RulesLoaded, error) {
	return decodeValid[RulesLoaded](r, RulesV1, "rules-loaded event", nil)
}

// DeadLetter returns the dead-letter record of r on topic: its key and
// value as they were, the reason and the origin in headers, then r's own
// headers.
func DeadLetter(topic string, r *kgo.Record, reason error) *kgo.Record {
	headers := append([]kgo.RecordHeader{
		{Key: HeaderError, Value: []byte(reason.Error())},
		{Key: HeaderSource, Value: []byte(r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10))},
	}, r.Headers...)
	return &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: headers}
}

// Header returns the value of r's last header named key, or "".
func Header(r *kgo.Record, key string) string {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value)
		}
	}
	return ""
}
