package roles

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/inspect"
	"github.com/monitorme/monitorme/internal/kafka"
	chschema "github.com/monitorme/monitorme/schemas/clickhouse"
	sinkch "github.com/monitorme/monitorme/sinks/clickhouse"
)

// rebuildBatch is how many of a partition's rows one insert holds.
const rebuildBatch = 50_000

// rebuildHistory re-sinks [from, to) of the vitals, alerts and acks topics
// into ClickHouse as the sink does: each partition's records in the
// sink's batches (sinkch.Batch), each inserted with its deduplication
// token (topic-partition-first-last) and settings. Rows ClickHouse already holds
// collapse on their identity (ReplacingMergeTree); a batch cut exactly as
// the sink cut it is dropped whole. The rollup would count the readings
// again, so each day the range touches is then rebuilt from the
// deduplicated readings (docs/analysts.md): history rebuilt effectively once.
func rebuildHistory(ctx context.Context, kc kafka.Config, conn driver.Conn, from, to time.Time, out io.Writer) error {
	ins := sinkch.Native{Conn: conn}
	r := inspect.Range{From: inspect.Bound{Kind: inspect.AtTime, Time: from}, To: &inspect.Bound{Kind: inspect.AtTime, Time: to}}
	for _, t := range sinkch.Tables(kc.Topics) {
		batches := map[int32]*sinkch.Batch{}
		inserted, dead := 0, 0
		flush := func(b *sinkch.Batch) error {
			if b.Rows.Len() > 0 {
				if err := ins.Insert(ctx, &t, b.Token(), b.Rows); err != nil {
					return fmt.Errorf("insert into %s: %w", t.Name, err)
				}
				inserted += b.Rows.Len()
			}
			b.Reset()
			return nil
		}
		err := inspect.ReadRecords(ctx, kc, inspect.Options{Topic: t.Topic, Range: r}, func(rec *kgo.Record) error {
			b := batches[rec.Partition]
			if b == nil {
				b = sinkch.NewBatch(&t, rec.Partition, t.NewRows())
				batches[rec.Partition] = b
			}
			if err := b.Add(rec); err != nil {
				dead++ // the sink dead-letters it; a rebuild skips it
			}
			if b.Records() >= rebuildBatch {
				return flush(b)
			}
			return nil
		})
		var expired *inspect.ExpiredError
		if errors.As(err, &expired) {
			fmt.Fprintf(out, "note: %v: rebuilt from what the topic holds\n", err)
		} else if err != nil {
			return err
		}
		for _, b := range batches {
			if err := flush(b); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "%-17s %8d rows from %s", t.Name, inserted, t.Topic)
		if dead > 0 {
			fmt.Fprintf(out, " (%d unreadable records skipped, as the sink dead-letters them)", dead)
		}
		fmt.Fprintln(out)
	}
	for day := from.UTC().Truncate(24 * time.Hour); day.Before(to); day = day.Add(24 * time.Hour) {
		d := day.Format(time.DateOnly)
		if err := conn.Exec(ctx, "ALTER TABLE vitals_1m DROP PARTITION '"+d+"'"); err != nil {
			return fmt.Errorf("rollup of %s: %w", d, err)
		}
		if err := conn.Exec(chgo.Context(ctx, chgo.WithParameters(chgo.Parameters{"day": d})), chschema.RebuildRollupDaySQL); err != nil {
			return fmt.Errorf("rollup of %s: %w", d, err)
		}
		fmt.Fprintf(out, "vitals_1m         rebuilt for %s from the deduplicated readings\n", d)
	}
	return nil
}
