package roles

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/monitorme/monitorme/internal/warehouse"
	chschema "github.com/monitorme/monitorme/schemas/clickhouse"
)

// needClickHouse is the usage error of a role that cannot run without
// ClickHouse.
func needClickHouse(f *roleFlags) func() error {
	return func() error {
		if !f.wc.Enabled() {
			return errors.New("clickhouse-addr: required (or MONITORME_CLICKHOUSE_ADDR), e.g. --clickhouse-addr 127.0.0.1:9000")
		}
		return nil
	}
}

func sinkCmd(g *globals) *cobra.Command {
	f := defaultRoleFlags("127.0.0.1:8083")
	cmd := &cobra.Command{
		Use:   "sink",
		Short: "Write vitals, alerts and acknowledgements to ClickHouse, effectively once",
		Long: `sink consumes the vitals, alerts and acknowledgements topics with
read_committed and inserts them into ClickHouse in per-partition batches
(--sink-max-rows or --sink-flush-interval, whichever comes first), each
with the deduplication token topic-partition-first-last. Offsets are
committed only after an insert succeeded; while ClickHouse is down the sink
retries with backoff and reads nothing more. Run ` + "`monitorme migrate`" + ` first.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.runRole(cmd, g, "monitorme-sink", []func() error{needClickHouse(f), f.wc.Validate, f.skc.Validate},
				func(ctx context.Context, p *platform) error {
					if err := p.withClickHouse(ctx, f, false); err != nil {
						return err
					}
					return p.withSink(f)
				},
				func(p *platform) {
					p.log.Info("history sink starting", "group", f.skc.Group, "brokers", f.kc.Brokers, "clickhouse", f.wc.Addr, "database", f.wc.Database)
				})
		},
	}
	f.common(cmd)
	f.wc.RegisterFlags(cmd.Flags())
	f.skc.RegisterFlags(cmd.Flags())
	return cmd
}

func migrateCmd(g *globals) *cobra.Command {
	wc := warehouse.DefaultConfig()
	s := chschema.DefaultSettings()
	dryRun := false
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the ClickHouse history schema",
		Long: fmt.Sprintf(`migrate creates the database, then applies the schema versions the server
has not had (this binary has %d), recording each in schema_migrations.
Every statement is idempotent: running it again changes nothing. It refuses
a ClickHouse server older than %d.%d. The TTL flags take effect when a table
is created; docs/analysts.md says how to change retention later.
--dry-run prints the statements instead, and needs no server.`, chschema.Latest(), chschema.MinServer[0], chschema.MinServer[1]),
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := s.Validate(); err != nil {
				return usage(err)
			}
			if dryRun {
				ms, err := chschema.Migrations(s)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				for _, m := range ms {
					fmt.Fprintf(out, "-- schema version %d: %s\n", m.Version, m.Name)
					fmt.Fprintf(out, "%s;\n\n", strings.Join(m.Statements, ";\n\n"))
				}
				return nil
			}
			if err := errors.Join(wc.Validate(), needClickHouse(&roleFlags{wc: wc})()); err != nil {
				return usage(err)
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			from, to, err := warehouse.Migrate(cmd.Context(), wc, s, log)
			if err != nil {
				return err
			}
			if from == to {
				fmt.Fprintf(cmd.OutOrStdout(), "ClickHouse database %s is at schema version %d: nothing to do\n", wc.Database, to)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "ClickHouse database %s: schema version %d -> %d\n", wc.Database, from, to)
			}
			return nil
		},
	}
	wc.RegisterFlags(cmd.Flags())
	s.RegisterFlags(cmd.Flags())
	cmd.Flags().BoolVar(&dryRun, "dry-run", dryRun, "print the statements, rendered with the TTL flags, and connect to nothing")
	return cmd
}
