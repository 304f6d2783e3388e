package clickhouse

// One partition's rows of one table between two offsets: what one insert
// holds, under the deduplication token of its offsets. The sink cuts its
// batches by size, time and a predecessor's pending mark; a history
// rebuild (monitorme replay --to-clickhouse) cuts them by size alone, with
// the same type, so a batch it cuts as the sink did carries the same
// token and ClickHouse drops it whole.

import "github.com/twmb/franz-go/pkg/kgo"

// Batch is one partition's records of one table, from offset First to
// Last, as rows.
type Batch struct {
	Table     *Table
	Partition int32
	Rows      Rows
	// First and Last are the offsets of the first and last record added
	// (readable or not: the token covers the offsets the batch spans);
	// Epoch the last one's leader epoch, for the commit.
	First, Last int64
	Epoch       int32
	records     int
}

// NewBatch returns an empty batch of t's rows of partition p, in rows
// (t.NewRows() or a reused one, empty).
func NewBatch(t *Table, p int32, rows Rows) *Batch {
	return &Batch{Table: t, Partition: p, Rows: rows}
}

// Add adds a record. One the table cannot read returns the error and adds
// no row, but the batch spans its offset all the same: the sink
// dead-letters it, a rebuild skips it.
func (b *Batch) Add(r *kgo.Record) error {
	if b.records == 0 {
		b.First = r.Offset
	}
	b.records++
	b.Last, b.Epoch = r.Offset, r.LeaderEpoch
	return b.Rows.Add(r)
}

// Records is how many records the batch spans, rows and unreadable ones.
func (b *Batch) Records() int { return b.records }

// Token is the batch's deduplication token, topic-partition-first-last.
func (b *Batch) Token() string { return Token(b.Table.Topic, b.Partition, b.First, b.Last) }

// Reset empties the batch for the partition's next records.
func (b *Batch) Reset() {
	b.Rows.Reset()
	b.records = 0
}
