package clickhouse

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/schemas"
)

// A batch's token spans every offset it read, an unreadable record's
// too (the sink dead-letters it, a rebuild skips it: both must cut the
// same token), and starts again after a reset.
func TestBatchTokenSpansTheOffsetsRead(t *testing.T) {
	tables := Tables(kafka.DefaultConfig().Topics)
	tb := &tables[0]
	b := NewBatch(tb, 3, tb.NewRows())
	rd := schemas.Reading{PatientID: "P1", DeviceID: "D1", Kind: schemas.HeartRate, Value: 80, Unit: "/min", TS: time.Now().UTC(), Seq: 1}
	good, err := schemas.ReadingRecord(tb.Topic, &rd)
	if err != nil {
		t.Fatal(err)
	}
	bad := &kgo.Record{Topic: tb.Topic, Value: []byte("{")}
	for i, r := range []*kgo.Record{bad, good, bad} {
		c := *r
		c.Offset = int64(10 + i)
		err := b.Add(&c)
		if (err != nil) != (r == bad) {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if b.Token() != Token(tb.Topic, 3, 10, 12) || b.Records() != 3 || b.Rows.Len() != 1 {
		t.Fatalf("token %s, %d records, %d rows", b.Token(), b.Records(), b.Rows.Len())
	}
	b.Reset()
	c := *good
	c.Offset = 13
	if err := b.Add(&c); err != nil || b.Token() != Token(tb.Topic, 3, 13, 13) || b.Rows.Len() != 1 {
		t.Fatalf("after a reset: %s, %d rows, %v", b.Token(), b.Rows.Len(), err)
	}
}
