package processors

// The clinical handler: records of the vitals, acknowledgements and
// placements topics decoded, applied in log order by the engine
// (package clinical) to the patients' states (package statestore), alert
// records out, and the state changelog records of every patient changed,
// in the same transaction.

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/schemas"
	"github.com/monitorme/monitorme/statestore"
)

// Clinical is the stateful Handler of the clinical alerting engine: per
// patient, the latest value of each vital, the condition rules' state, the
// NEWS2 alert and the open alerts' escalation timers, mirrored to the
// compacted state changelog in the same transaction as the alerts and
// offsets. It reads the acknowledgements topic too (co-partitioned with the
// vitals), so an acknowledgement and the alert it stops meet in one place.
// The rules and their clocks are clinical.Stream's; this type adapts them
// to Kafka records and transactions.
type Clinical struct {
	topics kafka.Topics
	store  *statestore.Store
	stream *clinical.Stream

	// pre holds the readings Predecode decoded, consumed by Handle in
	// order from next.
	pre  []decoded
	next int
	// ready[k] is closed once chunk k of pre is decoded.
	ready    []chan struct{}
	decoders sync.WaitGroup

	// pending are the alert events of the open transaction, counted in
	// metrics once it commits. Only the transaction loop touches it.
	pending []schemas.Alert
	metrics *clinicalMetrics
}

// NewClinical returns the handler; restoreOpts are the client options
// (seeds, TLS) of the client that reads the changelog back.
func NewClinical(cfg clinical.Config, topics kafka.Topics, restoreOpts ...kgo.Opt) *Clinical {
	store := statestore.New(topics.State, restoreOpts)
	return &Clinical{topics: topics, store: store, stream: clinical.NewStream(clinical.NewEngine(cfg), store)}
}

// Instrument counts committed alert events and the patients held
// (metrics.go).
func (c *Clinical) Instrument(mp metric.MeterProvider) error {
	m, err := newClinicalMetrics(mp, c.store.Patients)
	c.metrics = m
	return err
}

// Resume tells the engine when the processor caught up with each vitals
// partition: silence timers do not blame a device for the time before.
func (c *Clinical) Resume(resumedAt func(partition int32) time.Time) { c.stream.Resume(resumedAt) }

// LastArrival is the latest arrival of a reading of any patient on
// partition: where monitoring of it had got to.
func (c *Clinical) LastArrival(partition int32) time.Time { return c.stream.LastArrival(partition) }

// Inputs names the topics the handler reads: the vitals and, co-partitioned
// with them, the acknowledgements and the placements.
func (c *Clinical) Inputs() []string {
	return []string{c.topics.Vitals, c.topics.Acks, c.topics.Placements}
}

// Restore loads the state of newly assigned vitals partitions from the
// changelog.
func (c *Clinical) Restore(ctx context.Context, partitions []int32) error {
	defer c.stream.Invalidate()
	return c.store.Restore(ctx, partitions)
}

// Forget drops the state of patients on partitions this processor lost.
func (c *Clinical) Forget(partitions []int32) {
	c.store.Forget(partitions)
	c.stream.Invalidate()
}

// Begin starts a transaction's batch.
func (c *Clinical) Begin() {
	c.store.Begin()
	c.pending = c.pending[:0]
}

// Flush returns the changelog records of the patients changed in this
// transaction.
func (c *Clinical) Flush() ([]*kgo.Record, error) { return c.store.Flush() }

// Committed makes the transaction's state the committed state and counts
// its alert events.
func (c *Clinical) Committed() {
	c.store.Commit()
	c.stream.Commit()
	c.metrics.alerts(c.pending)
	c.pending = c.pending[:0]
}

// Aborted drops the transaction's state: its records come again.
func (c *Clinical) Aborted() {
	c.store.Abort()
	c.stream.Abort()
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

// Handle applies one reading, acknowledgement, alarm silence or
// placement. First the record's partition's stream time moves to its
// arrival, if later, and every timer of the partition due by it fires
// (clinical.Stream), so where a timer fires among the records depends on
// the log alone. A record that cannot be decoded moves the clock too (the
// batch's Tick counts it), but fires nothing: its Handle returns only the
// error.
func (c *Clinical) Handle(r *kgo.Record) ([]*kgo.Record, error) {
	if schemas.IsRulesLoaded(r) {
		// The audit trail of rule changes, for the history sink. Its
		// timestamp is a processor's start, not stream time: it must not
		// move the partition's clock (it fired every timer at once).
		return nil, nil
	}
	if r.Topic == c.topics.Acks || r.Topic == c.topics.Placements {
		in, err := DecodeInput(c.topics, r)
		if err != nil {
			// It moves the clock all the same: the next record, or
			// Tick, fires what came due by it.
			c.stream.Advance(r.Partition, r.Timestamp)
			return nil, err
		}
		return c.records(c.stream.Apply(&in))
	}
	// A reading, most records: applied from the stack (an Input would
	// carry it to the heap, a measured allocation per record).
	rd, err := c.decode(r)
	if err != nil {
		c.stream.Advance(r.Partition, r.Timestamp)
		return nil, err
	}
	return c.records(c.stream.Reading(r.Partition, r.Timestamp, &rd))
}

// DecodeInput decodes a record of the clinical handler's topics for
// clinical.Stream.Apply: a record of the acks topic, a placement, or a
// reading. A replay reads the topics back through it, so it applies what
// the processor applied (Handle takes its readings from Predecode).
func DecodeInput(topics kafka.Topics, r *kgo.Record) (clinical.Input, error) {
	in := clinical.Input{Partition: r.Partition, Arrival: r.Timestamp}
	switch r.Topic {
	case topics.Acks:
		rec, err := schemas.DecodeAcksRecord(r)
		if err != nil {
			return in, fmt.Errorf("decode a record of the acks topic: %w", err)
		}
		in.Acks = &rec
	case topics.Placements:
		pl, err := schemas.DecodePlacement(r)
		if err != nil {
			return in, fmt.Errorf("decode placement: %w", err)
		}
		in.Placement = &pl
	default:
		rd, err := schemas.DecodeReading(r)
		if err != nil {
			return in, err
		}
		in.Reading = &rd
	}
	return in, nil
}

// Due reports whether a patient's timer is due by clock(partition).
func (c *Clinical) Due(clock func(partition int32) time.Time) bool { return c.stream.Due(clock) }

// Tick fires every timer due by clock(partition) of the patient's
// partition, for the patients no record has touched lately: a device that
// went quiet, an alert nobody acknowledged. It runs inside a transaction,
// like Handle.
func (c *Clinical) Tick(clock func(partition int32) time.Time) ([]*kgo.Record, error) {
	return c.records(c.stream.Tick(clock))
}

func (c *Clinical) records(alerts []schemas.Alert) ([]*kgo.Record, error) {
	if c.metrics != nil {
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
