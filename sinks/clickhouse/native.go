package clickhouse

import (
	"context"
	"fmt"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Native is the Inserter of a running platform: clickhouse-go's batch API
// over the native protocol, a column at a time.
type Native struct{ Conn driver.Conn }

// Insert sends rows as one block with the batch's deduplication token.
// deduplicate_blocks_in_dependent_materialized_views makes the rollup's
// view honour the token too: without it a retried batch is dropped from
// vitals but counted twice in vitals_1m.
func (n Native) Insert(ctx context.Context, t *Table, token string, rows Rows) error {
	ctx = chgo.Context(ctx, chgo.WithSettings(InsertSettings(token)))
	b, err := n.Conn.PrepareBatch(ctx, "INSERT INTO "+t.Name+" ("+t.ColumnNames()+")")
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", t.Name, err)
	}
	// Close ends an INSERT that was not sent, so the connection goes back
	// to the pool usable.
	defer b.Close()
	for i, col := range rows.Columns() {
		if err := b.Column(i).Append(col); err != nil {
			return fmt.Errorf("insert into %s, column %s: %w", t.Name, t.Columns[i].Name, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into %s: %w", t.Name, err)
	}
	return nil
}

// InsertSettings are the settings of every batch insert. `make test-sql`
// inserts its fixtures with the same ones.
func InsertSettings(token string) chgo.Settings {
	return chgo.Settings{
		"insert_deduplication_token":                         token,
		"insert_deduplicate":                                 1,
		"deduplicate_blocks_in_dependent_materialized_views": 1,
		// A batch is already large and once a second; async inserts
		// would move the deduplication out of the token's reach.
		"async_insert": 0,
	}
}
