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
// into ClickHouse as the sink does: each partition's records in batches,
// each inserted with the sink's deduplication token
// (topic-partition-first-last) and settings. Rows ClickHouse already holds
// collapse on their identity (ReplacingMergeTree); a batch cut exactly as
// the sink cut it is dropped whole. The rollup would count the readings
// again, so each day the range touches is then rebuilt from the
// deduplicated readings (docs/analysts.md): history rebuilt effectively once.
func rebuildHistory(ctx context.Context, kc kafka.Config, conn driver.Conn, from, to time.Time, out io.Writer) error {
	ins := sinkch.Native{Conn: conn}
	r := inspect.Range{From: inspect.Bound{Kind: inspect.AtTime, Time: from}, To: &inspect.Bound{Kind: inspect.AtTime, Time: to}}
	for _, t := range sinkch.Tables(kc.Topics) {
		type batch struct {
			rows        sinkch.Rows
			first, last int64
		}
		batches := map[int32]*batch{}
		inserted, dead := 0, 0
		flush := func(p int32, b *batch) error {
			if b.rows.Len() == 0 {
				return nil
			}
			if err := ins.Insert(ctx, &t, sinkch.Token(t.Topic, p, b.first, b.last), b.rows); err != nil {
				return fmt.Errorf("insert into %s: %w", t.Name, err)
			}
			inserted += b.rows.Len()
			b.rows.Reset()
			return nil
		}
		err := inspect.ReadRecords(ctx, kc, inspect.Options{Topic: t.Topic, Range: r}, func(rec *kgo.Record) error {
			b := batches[rec.Partition]
			if b == nil {
				b = &batch{rows: t.NewRows(), first: rec.Offset}
				batches[rec.Partition] = b
			}
			if b.rows.Len() == 0 {
				b.first = rec.Offset
			}
			if err := b.rows.Add(rec); err != nil {
				dead++ // the sink dead-letters it; a rebuild skips it
				return nil
			}
			b.last = rec.Offset
			if b.rows.Len() >= rebuildBatch {
				return flush(rec.Partition, b)
			}
			return nil
		})
		var expired *inspect.ExpiredError
		if errors.As(err, &expired) {
			fmt.Fprintf(out, "note: %v: rebuilt from what the topic holds\n", err)
		} else if err != nil {
			return err
		}
		for p, b := range batches {
			if err := flush(p, b); err != nil {
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
