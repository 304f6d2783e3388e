package processors

// The interfaces a handler implements for the transaction loop: Handler
// for every record, and what a stateful, timed or pre-decoding handler
// adds.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Handler turns one consumed record into the records to produce for it.
// An error marks the record as poison: it is written to the dead-letter
// topic, in the same transaction, instead of stopping the partition.
type Handler interface {
	Handle(rec *kgo.Record) ([]*kgo.Record, error)
}

// Stateful is a Handler that keeps per-patient state. The processor calls
// Restore for newly assigned vitals partitions before any of their records
// is fetched, Forget for partitions it loses, and brackets every
// transaction: Begin before the first record, Flush after the last (its
// records, the state changelog, are produced in the same transaction), then
// Committed or Aborted. State changed by an aborted transaction must be
// dropped: its records will be processed again.
type Stateful interface {
	Handler
	Restore(ctx context.Context, partitions []int32) error
	Forget(partitions []int32)
	Begin()
	Flush() ([]*kgo.Record, error)
	Committed()
	Aborted()
}

// Timed is a Stateful handler with timers on the processor clock (silence,
// escalation). Due says whether any would fire by clock; Tick fires them,
// inside a transaction like Handle. clock gives the processor clock of a
// vitals partition: see Processor.
type Timed interface {
	Stateful
	Due(clock func(partition int32) time.Time) bool
	Tick(clock func(partition int32) time.Time) ([]*kgo.Record, error)
}

// Predecoder is a Handler that can decode a transaction's records ahead of
// Handle, on every core: decoding is a pure function of one record, while
// Handle must apply the records in order. Handle is then called with the
// same records, in the same order. Predecode may return before it has
// decoded them all, so that Handle overlaps with it; Handle then waits for
// the record it is given.
type Predecoder interface {
	Predecode(recs []*kgo.Record)
}

// resumer is a Timed handler that is told when monitoring of a partition
// resumed, so that silence before it is not blamed on a device.
type resumer interface {
	Resume(resumedAt func(partition int32) time.Time)
}

// Inputs, when a handler implements it, names the topics it consumes in
// place of the vitals topic alone. They must be co-partitioned with the
// vitals topic (provisioning checks it): the processor assigns them with
// the range balancer, which gives one member partition p of every topic.
type Inputs interface {
	Inputs() []string
}
