package warehouse

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	chschema "github.com/monitorme/monitorme/schemas/clickhouse"
)

// DB is the part of a ClickHouse connection migrations use; a
// clickhouse-go driver.Conn is one.
type DB interface {
	Exec(ctx context.Context, query string, args ...any) error
	Select(ctx context.Context, dest any, query string, args ...any) error
}

// The migrations' own bookkeeping, run by `make test-sql` as well.
const (
	ServerVersionSQL = `SELECT version() AS v`
	// MigrationsTableSQL records each schema version applied: the
	// version a server is at is the highest row.
	MigrationsTableSQL = `CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version`
	SchemaVersionSQL  = `SELECT toUInt32(max(version)) AS v FROM schema_migrations`
	RecordVersionSQL  = `INSERT INTO schema_migrations (version, name) VALUES ({version:UInt32}, {name:String})`
	createDatabaseSQL = `CREATE DATABASE IF NOT EXISTS `
)

// Migrate creates the database if need be and applies the schema files
// the server has not had, recording each version. It refuses a server
// older than the schema supports, and a schema newer than this binary's.
// Every statement is idempotent, so a migration cut short is applied again
// whole by the next run.
func Migrate(ctx context.Context, c Config, s chschema.Settings, log *slog.Logger) (from, to int, err error) {
	// The database may not exist yet, and a connection cannot name one
	// that does not: create it from the server's default database.
	root, err := open(ctx, c, "")
	if err != nil {
		return 0, 0, err
	}
	defer root.Close()
	if err := CheckServer(ctx, root); err != nil {
		return 0, 0, err
	}
	if err := root.Exec(ctx, createDatabaseSQL+c.Database); err != nil {
		return 0, 0, fmt.Errorf("create database %s: %w", c.Database, err)
	}
	conn, err := Open(ctx, c)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	return Apply(ctx, conn, s, log)
}

// CheckServer refuses a server older than the schema supports.
func CheckServer(ctx context.Context, db DB) error {
	var v []struct {
		V string `ch:"v"`
	}
	if err := db.Select(ctx, &v, ServerVersionSQL); err != nil || len(v) != 1 {
		return fmt.Errorf("reading the ClickHouse server version: %v", err)
	}
	return chschema.CheckServer(v[0].V)
}

// SchemaVersion is the highest version applied to db, 0 for none.
func SchemaVersion(ctx context.Context, db DB) (int, error) {
	var v []struct {
		V uint32 `ch:"v"`
	}
	if err := db.Select(ctx, &v, SchemaVersionSQL); err != nil {
		return 0, fmt.Errorf("reading the schema version: %w", err)
	}
	if len(v) == 0 {
		return 0, nil
	}
	return int(v[0].V), nil
}

// Apply applies the migrations db has not had, in order.
func Apply(ctx context.Context, db DB, s chschema.Settings, log *slog.Logger) (from, to int, err error) {
	ms, err := chschema.Migrations(s)
	if err != nil {
		return 0, 0, err
	}
	if err := db.Exec(ctx, MigrationsTableSQL); err != nil {
		return 0, 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	from, err = SchemaVersion(ctx, db)
	if err != nil {
		return 0, 0, err
	}
	if from > len(ms) {
		return from, from, fmt.Errorf("the database is at schema version %d, newer than this monitorme's %d: run a newer monitorme", from, len(ms))
	}
	for _, m := range ms[from:] {
		for i, st := range m.Statements {
			if err := db.Exec(ctx, st); err != nil {
				return from, m.Version - 1, fmt.Errorf("schema version %d (%s), statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		params := map[string]string{"version": strconv.Itoa(m.Version), "name": m.Name}
		if err := db.Exec(withParams(ctx, params), RecordVersionSQL); err != nil {
			return from, m.Version - 1, fmt.Errorf("recording schema version %d: %w", m.Version, err)
		}
		log.Info("applied schema version", "version", m.Version, "name", m.Name, "statements", len(m.Statements))
	}
	return from, len(ms), nil
}

// RequireSchema refuses a database the binary's schema is not applied to:
// the sink and the API would fail on the first insert or query instead,
// with a less helpful error.
func RequireSchema(ctx context.Context, db DB) error {
	v, err := SchemaVersion(ctx, db)
	if err != nil {
		return fmt.Errorf("%w (has `monitorme migrate` run?)", err)
	}
	if latest := chschema.Latest(); v < latest {
		return fmt.Errorf("the database is at schema version %d, this monitorme needs %d: run `monitorme migrate` first", v, latest)
	}
	return nil
}
