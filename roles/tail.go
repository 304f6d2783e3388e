package roles

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/monitorme/monitorme/inspect"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/warehouse"
)

// tailCmd reads a topic as decoded events, the way `rpk topic consume`
// does with offsets, for developers asking what a patient's monitor sent.
func tailCmd(g *globals) *cobra.Command {
	kc := kafka.DefaultConfig()
	var opts inspect.Options
	offset, format, color, source := "end", "table", "auto", "auto"
	wc := warehouse.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "tail TOPIC",
		Short: "Print a topic's records as decoded events (vitals, alerts, acks, state, dlq, or a topic name)",
		Long: `tail reads a MonitorMe topic and prints its records decoded: readings,
alert events, acknowledgements, silences, rules loaded, dead letters with
their error headers. TOPIC is a role name (vitals, alerts, acks, state, dlq)
or a topic name. Offsets are taken as rpk topic consume -o takes them:

  -o start | end | 47 | -100 (the last 100 of each partition)
  -o @2026-12-01T02:10:00Z:2026-12-01T02:40:00Z | @-1h | @-1h:-30m | @2026-12-01

resolved per partition (by timestamp for times). Without -f it stops at the
range's end; with -f it follows. read_committed unless --read-uncommitted
(to see aborted transactions). --patient reads only that patient's partition.

  monitorme tail vitals --patient P17 -o @2026-12-01T02:10:00Z:2026-12-01T02:40:00Z
  monitorme tail alerts --priority high -f
  monitorme tail dlq -o -20 --format json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usage(fmt.Errorf("tail takes one topic: %s, or a topic name", strings.Join(inspect.Roles, ", ")))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := inspect.ParseRange(offset, time.Now())
			errs := []error{err, kc.Validate()}
			if opts.Limit < 0 {
				errs = append(errs, fmt.Errorf("num: %d, want 0 (no limit) or more", opts.Limit))
			}
			if color != "auto" && color != "always" && color != "never" {
				errs = append(errs, fmt.Errorf("color: %q, want auto, always or never", color))
			}
			switch {
			case source != "auto" && source != "kafka" && source != "clickhouse":
				errs = append(errs, fmt.Errorf("source: %q, want auto, kafka or clickhouse", source))
			case source == "clickhouse" && (!wc.Enabled() || opts.Filter.Patient == "" || r.From.Kind != inspect.AtTime || (args[0] != "vitals" && args[0] != "alerts")):
				errs = append(errs, errors.New("source clickhouse: needs --clickhouse-addr, --patient, a time range (-o @<from>:<to>) and the vitals or alerts topic"))
			}
			if wc.Enabled() {
				errs = append(errs, wc.Validate())
			}
			role := args[0]
			if !slices.Contains(inspect.Roles, role) {
				role = ""
			}
			errs = append(errs, opts.Filter.Check(role))
			useColor := color == "always" || (color == "auto" && isTerminal(cmd.OutOrStdout()))
			pr, perr := inspect.NewPrinter(cmd.OutOrStdout(), format, useColor)
			errs = append(errs, perr)
			if err := errors.Join(errs...); err != nil {
				return usage(err)
			}
			opts.Range, opts.Topic = r, inspect.TopicOf(kc.Topics, args[0])
			history := func() error {
				conn, err := warehouse.Open(cmd.Context(), wc)
				if err != nil {
					return err
				}
				defer conn.Close()
				to := time.Now()
				if r.To != nil && r.To.Kind == inspect.AtTime {
					to = r.To.Time
				}
				return inspect.ReadHistory(cmd.Context(), warehouse.History{DB: conn}, args[0], opts.Filter.Patient, r.From.Time, to, opts.Filter, opts.Limit, pr.Print)
			}
			if source == "clickhouse" {
				return history()
			}
			// auto reads Kafka first, and ClickHouse only for a range the
			// topic no longer holds (when it can: a patient, a time range,
			// vitals or alerts); it prints nothing until it knows which.
			var held []inspect.Event
			emit := pr.Print
			canFallBack := source == "auto" && wc.Enabled() && opts.Filter.Patient != "" && r.From.Kind == inspect.AtTime && !opts.Follow &&
				(args[0] == "vitals" || args[0] == "alerts")
			if canFallBack {
				emit = func(ev inspect.Event) error { held = append(held, ev); return nil }
			}
			err = inspect.Read(cmd.Context(), kc, opts, emit)
			if errors.Is(err, inspect.ErrUnknownTopic) {
				return usage(err)
			}
			var expired *inspect.ExpiredError
			if errors.As(err, &expired) {
				if canFallBack {
					fmt.Fprintf(cmd.ErrOrStderr(), "monitorme tail: note: %v; reading the range from ClickHouse instead\n", err)
					return history()
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "monitorme tail: note: %v; older history is in ClickHouse (--source clickhouse with --clickhouse-addr and --patient)\n", err)
				err = nil
			}
			for _, ev := range held {
				if perr := pr.Print(ev); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	kc.RegisterFlags(cmd.Flags())
	cmd.Flags().StringVarP(&offset, "offset", "o", offset, "where to start (and stop): start, end, N, -N, @<time>[:<time>]")
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep reading new records")
	cmd.Flags().IntVarP(&opts.Limit, "num", "n", 0, "stop after this many events (0: no limit)")
	cmd.Flags().BoolVar(&opts.Uncommitted, "read-uncommitted", false, "read aborted transactions' records too (debugging exactly-once)")
	cmd.Flags().StringVar(&format, "format", format, "table, json, jsonl, or a Go template over the event ('{{.Offset}} {{.Reading.Value}}')")
	cmd.Flags().StringVar(&color, "color", color, "colour alarms in the table: auto (on a terminal), always, never")
	cmd.Flags().StringVar(&source, "source", source, "kafka, clickhouse (the history tables: needs --patient and a time range), or auto: Kafka, and ClickHouse for a range older than the topic holds")
	wc.RegisterFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.Filter.Patient, "patient", "", "only this patient (reads only its partition)")
	cmd.Flags().StringVar(&opts.Filter.Kind, "kind", "", "only this vital (heart_rate, spo2, ...)")
	cmd.Flags().StringVar(&opts.Filter.Device, "device", "", "only this device")
	cmd.Flags().StringVar(&opts.Filter.Condition, "condition", "", "only alerts of this condition")
	cmd.Flags().StringVar(&opts.Filter.Priority, "priority", "", "only alerts of this priority (high, medium, low)")
	cmd.Flags().StringVar(&opts.Filter.State, "state", "", "only alert events in this state (raised, escalated, acknowledged, resolved, ...)")
	return cmd
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
