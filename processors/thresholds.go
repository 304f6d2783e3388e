package processors

// The threshold handler: clinical.Evaluate's alert for every reading
// beyond a fixed limit, with no state. The e2e suite counts alerts against readings with it
// (--rules threshold); the clinical engine is the default.

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/schemas"
)

// Thresholds is the Handler that raises an alert for every reading outside
// its per-vital limits.
type Thresholds struct {
	Limits      []clinical.Limit
	AlertsTopic string
}

// Handle decodes a vitals record and returns its alert records.
func (t *Thresholds) Handle(r *kgo.Record) ([]*kgo.Record, error) {
	reading, err := schemas.DecodeReading(r)
	if err != nil {
		return nil, err
	}
	alerts := clinical.Evaluate(t.Limits, &reading)
	if len(alerts) == 0 {
		return nil, nil
	}
	out := make([]*kgo.Record, len(alerts))
	for i := range alerts {
		out[i], err = schemas.AlertRecord(t.AlertsTopic, &alerts[i])
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
