package clickhouse

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	blockproto "github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/monitorme/monitorme/schemas"
)

// fakeConn is a server that answers PrepareBatch with a block of the
// table's declared types and keeps what was sent. The embedded Conn is
// nil: any other call panics, so the test sees every use.
type fakeConn struct {
	driver.Conn
	tb      *Table
	queries []string
	sent    []*blockproto.Block
	closed  int
}

type fakeBatch struct {
	driver.Batch
	c     *fakeConn
	block *blockproto.Block
}

type fakeColumn struct{ col column.Interface }

func (f fakeColumn) Append(v any) error              { _, err := f.col.Append(v); return err }
func (f fakeColumn) AppendRow(v any) error           { return f.col.AppendRow(v) }
func (b *fakeBatch) Column(i int) driver.BatchColumn { return fakeColumn{b.block.Columns[i]} }
func (b *fakeBatch) Send() error                     { b.c.sent = append(b.c.sent, b.block); return nil }
func (b *fakeBatch) Close() error                    { b.c.closed++; return nil }

func (c *fakeConn) PrepareBatch(_ context.Context, query string, _ ...driver.PrepareBatchOption) (driver.Batch, error) {
	c.queries = append(c.queries, query)
	block, err := emptyBlock(c.tb)
	return &fakeBatch{c: c, block: block}, err
}

func TestNativeInsertAppendsEveryColumn(t *testing.T) {
	tables := Tables(fixtureTopics)
	vitals := &tables[0]
	rows := vitals.NewRows()
	for i := range 3 {
		rd := schemas.Reading{PatientID: "P1", DeviceID: "D1", Kind: schemas.SpO2, Value: 90 + float64(i), Unit: "%", TS: at.Add(time.Duration(i) * time.Second), Seq: uint64(i)}
		rec, _ := schemas.ReadingRecord(fixtureTopics.Vitals, &rd)
		rec.Timestamp = rd.TS
		if err := rows.Add(rec); err != nil {
			t.Fatal(err)
		}
	}
	conn := &fakeConn{tb: vitals}
	if err := (Native{Conn: conn}).Insert(context.Background(), vitals, "tok", rows); err != nil {
		t.Fatal(err)
	}
	if want := "INSERT INTO vitals (patient_id, kind, ts, device_id, seq, value, unit, received_at)"; len(conn.queries) != 1 || conn.queries[0] != want {
		t.Fatalf("queries %q, want %q", conn.queries, want)
	}
	if len(conn.sent) != 1 || conn.sent[0].Rows() != 3 || conn.closed != 1 {
		t.Fatalf("sent %d blocks, closed %d", len(conn.sent), conn.closed)
	}
	if v := conn.sent[0].Columns[5].Row(2, false); v != 92.0 {
		t.Fatalf("value of row 3: %v", v)
	}

	// A column the sink fills with the wrong Go type is refused by name,
	// and the batch is closed unsent.
	wrong := *vitals
	wrong.Columns = append([]Column(nil), vitals.Columns...)
	wrong.Columns[4].Type = "String" // seq
	conn = &fakeConn{tb: &wrong}
	err := (Native{Conn: conn}).Insert(context.Background(), &wrong, "tok", rows)
	if err == nil || !strings.Contains(err.Error(), "column seq") || len(conn.sent) != 0 || conn.closed != 1 {
		t.Fatalf("err %v, sent %d, closed %d", err, len(conn.sent), conn.closed)
	}
}
