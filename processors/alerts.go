package processors

import (
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/schemas"
)

// Thresholds is the Handler that raises an alert for every reading outside
// its per-vital limits.
type Thresholds struct {
	Limits      []Limit
	AlertsTopic string
}

// Handle decodes a vitals record and returns its alert records.
func (t *Thresholds) Handle(r *kgo.Record) ([]*kgo.Record, error) {
	reading, err := DecodeReading(r)
	if err != nil {
		return nil, err
	}
	alerts := Evaluate(t.Limits, &reading)
	if len(alerts) == 0 {
		return nil, nil
	}
	out := make([]*kgo.Record, len(alerts))
	for i := range alerts {
		out[i], err = AlertRecord(t.AlertsTopic, &alerts[i])
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DecodeReading decodes and checks a vitals record. A record whose key is
// not its patient_id is refused: it sits on the wrong partition, so the
// processor owning the patient would never see it.
func DecodeReading(r *kgo.Record) (schemas.Reading, error) {
	reading, err := schemas.DecodeReadingRecord(Header(r, schemas.HeaderSchema), r.Value)
	if err != nil {
		return reading, fmt.Errorf("decode reading: %w", err)
	}
	if string(r.Key) != reading.PatientID {
		return reading, fmt.Errorf("record key %q is not the reading's patient_id %q", r.Key, reading.PatientID)
	}
	return reading, nil
}

// AlertRecord returns the record of an alert: keyed by patient, with the
// schema header.
func AlertRecord(topic string, a *schemas.Alert) (*kgo.Record, error) {
	v, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode alert: %w", err)
	}
	return &kgo.Record{
		Topic:   topic,
		Key:     []byte(a.PatientID),
		Value:   v,
		Headers: []kgo.RecordHeader{{Key: schemas.HeaderSchema, Value: []byte(schemas.AlertV1)}},
	}, nil
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
