package roles

// The role commands: dev (every component on an embedded broker),
// ingest, process, api, simulate and topics, each wiring a platform
// (roles.go) from its flags.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/monitorme/monitorme/internal/auth"
	"github.com/monitorme/monitorme/internal/broker"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/processors"
	"github.com/monitorme/monitorme/producers"
)

func devCmd(g *globals) *cobra.Command {
	f := defaultRoleFlags("127.0.0.1:8080")
	bc := broker.DefaultConfig()
	noSim := false
	memLimit := "1GiB"
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole platform in one process on an embedded broker, with simulated patients",
		Long: `dev starts an embedded Kafka-protocol broker (persisted in --data-dir), creates
the topics, and runs the ingest API, the alert processor, the query API and a
simulated ward in one process. With --brokers it uses those brokers instead
of the embedded one. Ctrl-C ends the open transaction, flushes the producer
and exits 0; a restart on the same data dir keeps every reading and alert.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The broker starts before start() runs, so its settings and
			// everything else are checked here first.
			// Authentication is on unless --insecure: this run's admin
			// token (printed once below) and the simulator's device
			// token live in memory only.
			var adminToken, simToken string
			if !f.ac.Insecure {
				adminToken, simToken = auth.NewToken(), auth.NewToken()
				f.ac.Issued = map[string]auth.Principal{
					adminToken: {Subject: "dev-admin", Roles: []auth.Role{auth.Admin}, Method: "token"},
					simToken:   {Subject: "dev-simulator", Roles: []auth.Role{auth.Device}, Method: "token"},
				}
			}
			if err := errors.Join(bc.Validate(), f.checkHTTPAddr(), f.sc.Validate(), f.kc.Validate(), f.prc.Validate(), f.pc.Validate(), f.ic.Validate(), f.lc.Validate(),
				f.wc.Validate(), f.skc.Validate(), f.schema.Validate(), f.ac.Validate(), f.prc.LoadRules(), applyMemoryLimit(memLimit)); err != nil {
				return usage(err)
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			started := time.Now()
			embedded := !cmd.Flags().Changed("brokers")
			var b *broker.Broker
			if embedded {
				if b, err = broker.Start(bc, log); err != nil {
					return err
				}
				defer b.Close()
				f.kc.Brokers = b.Addrs()
			}
			p, err := f.start(cmd.Context(), g, "monitorme-dev")
			if err != nil {
				return err
			}
			defer p.close()
			if err := p.withClickHouse(cmd.Context(), f, true); err != nil {
				return err
			}
			if err := errors.Join(p.withIngest(f), p.withProcessor(f), p.withLive(f)); err != nil {
				return err
			}
			if err := p.recordRules(cmd.Context(), f); err != nil {
				return err
			}
			if p.ch != nil {
				if err := p.withSink(f); err != nil {
					return err
				}
			}
			base := "http://" + p.ln.Addr().String()
			if !noSim {
				p.sim, err = producers.NewSimulator(f.sc, &producers.HTTPSender{URL: base, Token: simToken}, log.With("component", "simulator"))
				if err != nil {
					return usage(err)
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "MonitorMe dev is starting (it says below when alarms are live)")
			if embedded {
				fmt.Fprintf(out, "  broker       %s (embedded, data in %s)\n", f.kc.Brokers[0], bc.DataDir)
			} else {
				fmt.Fprintf(out, "  brokers      %v\n", f.kc.Brokers)
			}
			fmt.Fprintf(out, "  station      %s/   (the nurse-station page)\n", base)
			fmt.Fprintf(out, "  ingest       POST %s/v1/vitals\n", base)
			fmt.Fprintf(out, "  patients     %s/v1/patients\n", base)
			fmt.Fprintf(out, "  alerts       %s/v1/alerts   open alarms %s/v1/alarms   ack POST %s/v1/alerts/{id}/ack\n", base, base, base)
			fmt.Fprintf(out, "  rules        %s/v1/patients/{id}/rules   alarm burden %s/v1/alarms/summary\n", base, base)
			fmt.Fprintf(out, "  live stream  %s/v1/stream\n", base)
			if p.ch != nil {
				fmt.Fprintf(out, "  history      %s/v1/patients/{id}/vitals?step=5m  %s/v1/patients/{id}/alerts (ClickHouse %v, database %s)\n", base, base, f.wc.Addr, f.wc.Database)
			} else {
				fmt.Fprintln(out, "  history      off: no ClickHouse configured (--clickhouse-addr); the history endpoints answer 501")
			}
			fmt.Fprintf(out, "  OpenAPI      %s/v1/openapi.json\n", base)
			fmt.Fprintf(out, "  metrics      %s/metrics   health %s/healthz %s/readyz\n", base, base, base)
			if adminToken != "" {
				fmt.Fprintf(out, "  API token    %s\n", adminToken)
				fmt.Fprintln(out, "               admin, made for this run and printed once; every /v1 route needs it (or --insecure)")
				fmt.Fprintf(out, "  try          curl -H 'Authorization: Bearer %s' %s/v1/patients\n", adminToken, base)
			} else {
				fmt.Fprintln(out, "  !!! INSECURE  the API has no authentication (--insecure): anyone who reaches it may do anything !!!")
			}
			if !noSim {
				fmt.Fprintf(out, "  simulator    %d patients at %gx\n", f.sc.Patients, f.sc.Speed)
			}
			fmt.Fprintln(out, "Ctrl-C to stop.")
			readyCtx, stopReady := context.WithCancel(cmd.Context())
			var said sync.WaitGroup
			said.Go(func() { p.sayReady(readyCtx, out, started) })
			err = p.run(cmd.Context())
			stopReady()
			said.Wait()
			fmt.Fprintln(out, "MonitorMe dev stopped.")
			return err
		},
	}
	f.common(cmd)
	f.apiSecurity(cmd)
	bc.RegisterFlags(cmd.Flags())
	f.pc.RegisterFlags(cmd.Flags())
	f.ic.RegisterFlags(cmd.Flags())
	f.prc.RegisterFlags(cmd.Flags())
	f.lc.RegisterFlags(cmd.Flags())
	f.sc.RegisterFlags(cmd.Flags())
	f.wc.RegisterFlags(cmd.Flags())
	f.skc.RegisterFlags(cmd.Flags())
	f.schema.RegisterFlags(cmd.Flags())
	cmd.Flags().BoolVar(&noSim, "no-simulator", noSim, "do not run the simulated ward")
	cmd.Flags().StringVar(&memLimit, "memory-limit", memLimit, "soft limit of the process's memory (Go's GOMEMLIMIT, which overrides it): the GC works harder near it and ingest answers 503 while the live heap is over nine tenths of it; 0: none")
	return cmd
}

func ingestCmd(g *globals) *cobra.Command {
	f := defaultRoleFlags("127.0.0.1:8080")
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "Serve POST /v1/vitals, producing readings with acks=all and idempotence",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.runRole(cmd, g, "monitorme-ingest", []func() error{f.pc.Validate, f.ic.Validate},
				func(_ context.Context, p *platform) error { return p.withIngest(f) },
				func(p *platform) {
					p.log.Info("ingest listening", "addr", p.ln.Addr().String(), "brokers", f.kc.Brokers)
				})
		},
	}
	f.common(cmd)
	f.apiSecurity(cmd)
	f.pc.RegisterFlags(cmd.Flags())
	f.ic.RegisterFlags(cmd.Flags())
	return cmd
}

func processCmd(g *globals) *cobra.Command {
	f := defaultRoleFlags("127.0.0.1:8081")
	cmd := &cobra.Command{
		Use:   "process",
		Short: "Compute alerts from vitals exactly once (consumer group + transactions)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.runRole(cmd, g, "monitorme-process", []func() error{f.prc.Validate, f.prc.LoadRules},
				func(ctx context.Context, p *platform) error {
					if err := p.withProcessor(f); err != nil {
						return err
					}
					return p.recordRules(ctx, f)
				},
				func(p *platform) {
					p.log.Info("processor starting", "group", f.prc.Group, "brokers", f.kc.Brokers, "http", p.ln.Addr().String())
				})
		},
	}
	f.common(cmd)
	f.prc.RegisterFlags(cmd.Flags())
	return cmd
}

func apiCmd(g *globals) *cobra.Command {
	f := defaultRoleFlags("127.0.0.1:8082")
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Serve the query API: patients, latest vitals, alerts, acknowledgements, rules, alarm burden, live stream",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.runRole(cmd, g, "monitorme-api", []func() error{f.lc.Validate, f.pc.Validate, f.wc.Validate, f.prc.LoadRules},
				func(ctx context.Context, p *platform) error {
					if err := p.withClickHouse(ctx, f, false); err != nil {
						return err
					}
					return p.withLive(f)
				},
				func(p *platform) {
					if p.ch == nil {
						p.log.Info("history off: no ClickHouse configured (--clickhouse-addr); the history endpoints answer 501")
					}
					p.log.Info("api listening", "addr", p.ln.Addr().String(), "brokers", f.kc.Brokers)
				})
		},
	}
	f.common(cmd)
	f.apiSecurity(cmd)
	f.lc.RegisterFlags(cmd.Flags())
	f.pc.RegisterFlags(cmd.Flags())
	f.wc.RegisterFlags(cmd.Flags())
	processors.RulesFileFlag(cmd.Flags(), &f.prc.RulesFile, "what GET /v1/patients/{id}/rules shows")
	return cmd
}

func simulateCmd(g *globals) *cobra.Command {
	sc := producers.DefaultSimConfig()
	target := "http://127.0.0.1:8080"
	tokenFile := ""
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Simulate a ward of bedside monitors posting to an ingest API",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkTarget(target); err != nil {
				return usage(err)
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			token, err := readToken(tokenFile)
			if err != nil {
				return usage(err)
			}
			sim, err := producers.NewSimulator(sc, &producers.HTTPSender{URL: target, Token: token}, log)
			if err != nil {
				return usage(err)
			}
			log.Info("simulating", "patients", sc.Patients, "speed", sc.Speed, "target", target)
			return sim.Run(cmd.Context())
		},
	}
	sc.RegisterFlags(cmd.Flags())
	cmd.Flags().StringVar(&target, "target", target, "base URL of the ingest API")
	cmd.Flags().StringVar(&tokenFile, "token-file", tokenFile, "file holding the device token to post with (or set "+tokenEnv+"); never a flag value")
	return cmd
}

// tokenEnv holds an API token for the commands that call the API.
const tokenEnv = "MONITORME_TOKEN"

// readToken returns the API token from file, else from the environment,
// else "" (an API without authentication).
func readToken(file string) (string, error) {
	if file == "" {
		return os.Getenv(tokenEnv), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("token-file %s: want one token on one line", file)
	}
	return tok, nil
}

// checkTarget refuses a --target that is not an http(s) URL with a host:
// the simulator would otherwise retry it for ever.
func checkTarget(target string) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("target: %q is not the URL of an ingest API, e.g. http://127.0.0.1:8080", target)
	}
	return nil
}

func topicsCmd(g *globals) *cobra.Command {
	kc := kafka.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "Create missing topics and check existing ones, then exit",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			if err := kc.Validate(); err != nil {
				return usage(err)
			}
			adm, err := provision(cmd.Context(), &kc, telemetry.Nop(), log)
			if err != nil {
				return err
			}
			defer adm.Close()
			for _, s := range kc.Specs() {
				fmt.Fprintf(cmd.OutOrStdout(), "%s ok\n", s.Name)
			}
			return nil
		},
	}
	kc.RegisterFlags(cmd.Flags())
	return cmd
}

// applyMemoryLimit sets the process's soft memory limit from
// --memory-limit, unless GOMEMLIMIT set one (the Go runtime applied it
// already). Ingest sheds load while the live heap is near it
// (producers.Backlog), so an overload answers 503s instead of growing the
// process without bound.
func applyMemoryLimit(s string) error {
	if os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	n, err := producers.ParseSize(s)
	if err != nil {
		return fmt.Errorf("memory-limit: %w", err)
	}
	if n == 0 {
		return nil
	}
	if n < 64<<20 {
		return fmt.Errorf("memory-limit: %q, want 0 (none) or at least 64MiB", s)
	}
	debug.SetMemoryLimit(n)
	return nil
}
