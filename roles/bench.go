package roles

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/monitorme/monitorme/roles/bench"
)

func benchCmd(g *globals) *cobra.Command {
	cfg := bench.DefaultConfig()
	kcfg := bench.DefaultKafkaConfig()
	persist, onKafka := true, false
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure ingest, processor and end-to-end throughput and alert latency on an embedded broker",
		Long: `bench starts an embedded broker (persisted to a temporary directory, as
monitorme dev is) and, in this one process, measures: producer and HTTP ingest
throughput with acks=all, exactly-once processor throughput over a pre-loaded
topic, end-to-end throughput (HTTP ingest with the processor running), and
reading-to-alert latency at a steady rate. It prints a table.

With --kafka it measures a real cluster instead (make bench-kafka starts
three Apache Kafka brokers): an at-least-once copy, the threshold and the
clinical processor over the same pre-loaded readings, with CPU per reading
of the processor and of the brokers (--broker-pids), and reading-to-alert
latency at each --rates for each --commit-intervals.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if onKafka {
				if len(kcfg.Brokers) == 0 {
					return usage(fmt.Errorf("--kafka needs --brokers (make bench-kafka starts three)"))
				}
				if cmd.Flags().Changed("latency-for") {
					kcfg.LatencyFor = cfg.LatencyFor
				}
				return bench.RunKafka(cmd.Context(), kcfg, cmd.OutOrStdout())
			}
			if err := cfg.Validate(); err != nil {
				return usage(err)
			}
			if persist {
				dir, err := os.MkdirTemp("", "monitorme-bench-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				cfg.DataDir = dir
			}
			fmt.Fprintf(cmd.OutOrStdout(), "monitorme bench: %d readings per run, batches of %d, %d concurrent senders, %d partitions, broker persisted: %v\n\n",
				cfg.Readings, cfg.Batch, cfg.Concurrency, cfg.Partitions, persist)
			_, err := bench.Run(cmd.Context(), cfg, cmd.OutOrStdout())
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Readings, "readings", cfg.Readings, "readings per throughput run")
	f.IntVar(&cfg.Batch, "batch", cfg.Batch, "readings per produce call and per HTTP request")
	f.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "concurrent producers / HTTP clients")
	f.IntVar(&cfg.LatencyRate, "latency-rate", cfg.LatencyRate, "readings per second in the latency run")
	f.DurationVar(&cfg.LatencyFor, "latency-for", cfg.LatencyFor, "length of the latency run (with --kafka: of each latency row, default 30s)")
	f.Int32Var(&cfg.Partitions, "partitions", cfg.Partitions, "partitions per topic")
	f.BoolVar(&persist, "persist", persist, "persist the broker to a temporary data dir, as dev does (false: in memory)")
	f.IntSliceVar(&cfg.RealisticRates, "realistic-rates", cfg.RealisticRates, "readings per second of the realistic path's runs (none: skip it)")
	f.IntVar(&cfg.RealisticCriticalEvery, "realistic-critical-every", cfg.RealisticCriticalEvery, "every n-th reading of the realistic path is a critical SpO2 of a new patient, timed to the station (0: none)")
	f.BoolVar(&cfg.RealisticOnly, "realistic-only", false, "run the realistic path alone")
	f.StringVar(&cfg.ProfileDir, "profile-dir", "", "write each realistic rate's CPU profile and, at its end, heap profile to this directory (realistic-<rate>.pprof, realistic-<rate>.heap.pprof)")
	f.DurationVar(&cfg.RealisticFor, "realistic-for", cfg.RealisticFor, "length of each realistic run")
	f.IntVar(&cfg.RestartPatients, "restart-patients", cfg.RestartPatients, "patients in the restart run")
	f.IntVar(&cfg.RestartSnapshots, "restart-snapshots", cfg.RestartSnapshots, "state snapshots per patient in the changelog of the restart run")
	f.BoolVar(&onKafka, "kafka", onKafka, "measure the real cluster at --brokers instead of an embedded broker")
	f.StringSliceVar(&kcfg.Brokers, "brokers", nil, "with --kafka: the cluster's bootstrap brokers")
	f.IntSliceVar(&kcfg.BrokerPIDs, "broker-pids", nil, "with --kafka: the brokers' process ids on this machine, for their CPU time")
	f.IntVar(&kcfg.Readings, "kafka-readings", kcfg.Readings, "with --kafka: pre-loaded readings of the throughput rows")
	f.IntSliceVar(&kcfg.Rates, "rates", kcfg.Rates, "with --kafka: readings per second of the latency rows")
	f.DurationVar(&kcfg.WarmUp, "warm-up", kcfg.WarmUp, "with --kafka: how long each latency row runs at its rate before it measures")
	f.DurationVar(&kcfg.Linger, "producer-linger", kcfg.Linger, "with --kafka: the platform producer's linger in the latency rows")
	f.DurationSliceVar(&kcfg.CommitIntervals, "commit-intervals", kcfg.CommitIntervals, "with --kafka: processor commit intervals the latency rows compare")
	return cmd
}
