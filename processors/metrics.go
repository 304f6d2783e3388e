package processors

// The processor's metrics, one struct per component, built in one place:
// the transaction loop's (processorMetrics) and the clinical handler's
// (clinicalMetrics).

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/monitorme/monitorme/schemas"
)

const meterName = "monitorme/processors"

// processorMetrics are the transaction loop's instruments.
type processorMetrics struct {
	txnLatency   metric.Float64Histogram
	alertLatency metric.Float64Histogram
	resumeGap    metric.Float64Histogram
	records      metric.Int64Counter
}

func newProcessorMetrics(mp metric.MeterProvider) (*processorMetrics, error) {
	m := mp.Meter(meterName)
	var pm processorMetrics
	var err error
	if pm.txnLatency, err = m.Float64Histogram("monitorme.processor.transaction.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to end (commit or abort) one transaction")); err != nil {
		return nil, err
	}
	if pm.alertLatency, err = m.Float64Histogram("monitorme.processor.alert.latency", metric.WithUnit("s"),
		metric.WithDescription("From a reading's record timestamp to its alert's commit"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, err
	}
	if pm.resumeGap, err = m.Float64Histogram("monitorme.processor.resume.gap", metric.WithUnit("s"),
		metric.WithDescription("When the processor caught up with a partition after a start or rebalance: how long before it the partition's last record arrived (the platform's gap in monitoring)"),
		metric.WithExplicitBucketBoundaries(1, 10, 60, 300, 1800, 3600, 6*3600, 86400)); err != nil {
		return nil, err
	}
	if pm.records, err = m.Int64Counter("monitorme.processor.records",
		metric.WithDescription("Records consumed, by outcome: committed, aborted, dead_lettered")); err != nil {
		return nil, err
	}
	return &pm, nil
}

// clinicalMetrics count committed alert events in monitorme.alarms, by
// priority, condition, state and ward: the alarm burden, per patient per
// day once divided by monitorme.alerting.patients.
type clinicalMetrics struct {
	alarms metric.Int64Counter
}

func newClinicalMetrics(mp metric.MeterProvider, patients func() int) (*clinicalMetrics, error) {
	m := mp.Meter(meterName)
	var cm clinicalMetrics
	var err error
	if cm.alarms, err = m.Int64Counter("monitorme.alarms",
		metric.WithDescription("Alert events committed, by priority, condition, state (raised, escalated, acknowledged, resolved) and ward")); err != nil {
		return nil, err
	}
	_, err = m.Int64ObservableGauge("monitorme.alerting.patients",
		metric.WithDescription("Patients whose state this processor holds"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(patients()))
			return nil
		}))
	if err != nil {
		return nil, err
	}
	return &cm, nil
}

// alerts counts a committed transaction's alert events; an update (the
// same alarm, its content brought up to date) is not another one. A nil
// receiver (a handler never instrumented: tests, replay) counts nothing.
func (m *clinicalMetrics) alerts(alerts []schemas.Alert) {
	if m == nil {
		return
	}
	for i := range alerts {
		a := &alerts[i]
		if a.Updated {
			continue
		}
		m.alarms.Add(context.Background(), 1, metric.WithAttributes(attribute.String("priority", string(a.Priority)),
			attribute.String("condition", a.Condition), attribute.String("state", string(a.State)),
			attribute.String("ward", a.Ward)))
	}
}
