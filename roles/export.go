package roles

import (
	"context"
	"errors"
	"time"

	"github.com/monitorme/monitorme/api"
	"github.com/monitorme/monitorme/inspect"
	"github.com/monitorme/monitorme/internal/kafka"
)

// topicRecords reads a patient's export from the topics, for an API
// without ClickHouse: the readings and alert events of the patient's
// partition in the range, read_committed, within the topics' retention.
type topicRecords struct{ kc kafka.Config }

var errStop = errors.New("stop")

func (t topicRecords) PatientRecord(ctx context.Context, patient string, from, to time.Time) (api.PatientRecord, error) {
	var rec api.PatientRecord
	end := inspect.Bound{Kind: inspect.AtTime, Time: to}
	opts := inspect.Options{Range: inspect.Range{From: inspect.Bound{Kind: inspect.AtTime, Time: from}, To: &end},
		Filter: inspect.Filter{Patient: patient}}
	opts.Topic = t.kc.Topics.Vitals
	err := inspect.Read(ctx, t.kc, opts, func(ev inspect.Event) error {
		if ev.Reading != nil {
			if len(rec.Readings) == api.MaxExportReadings {
				return errStop
			}
			rec.Readings = append(rec.Readings, *ev.Reading)
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return rec, api.ErrExportTooLarge
	}
	if expired := (*inspect.ExpiredError)(nil); errors.As(err, &expired) {
		return rec, &api.RetentionError{Err: err}
	}
	if err != nil {
		return rec, err
	}
	opts.Topic = t.kc.Topics.Alerts
	err = inspect.Read(ctx, t.kc, opts, func(ev inspect.Event) error {
		if ev.Alert != nil {
			rec.Alerts = append(rec.Alerts, *ev.Alert)
		}
		return nil
	})
	if expired := (*inspect.ExpiredError)(nil); errors.As(err, &expired) {
		return rec, &api.RetentionError{Err: err}
	}
	return rec, err
}
