package roles

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/inspect"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/warehouse"
	"github.com/monitorme/monitorme/processors"
	"github.com/monitorme/monitorme/schemas"
)

// replayCmd re-runs the clinical engine over a past range, with no side
// effects unless --to-topic names a sandbox topic.
func replayCmd(g *globals) *cobra.Command {
	kc := kafka.DefaultConfig()
	var o inspect.ReplayOptions
	var from, to, rulesFile, against, format, toTopic string
	diff, failOnDiff, toClickHouse := false, false, false
	wc := warehouse.DefaultConfig()
	tolerance := 2 * time.Minute
	o.Warmup = 30 * time.Minute
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Re-run the clinical engine over a past range (no side effects), and diff its alarms with what was recorded or with other rules",
		Long: `replay reads the vitals and acknowledgements of a past range and runs the
clinical engine over them in process, on event time: its timers (signal
lost, escalation) fire by the records' timestamps as they would have. It
produces nothing and commits nothing.

  monitorme replay --from 2026-11-30T22:00:00Z --to 2026-12-01T06:00:00Z --ward icu --diff
  monitorme replay --from @-8h --to now --rules-file candidate.yaml --diff --fail-on-diff
  monitorme replay --from -8h --to now --rules-file a.yaml --against-rules-file b.yaml --diff --format markdown

Without --diff it prints the replayed alert events. --diff compares them
with the alert events recorded in alerts.v1 (or with --against-rules-file's
run): alarms added, removed and shifted per patient and condition, the
alarm burden per ward and per hour, and the median time to alarm.
--fail-on-diff exits 3 when they differ. --to-topic writes the replayed
alert events to a sandbox topic (never the live alerts topic). A warm-up
window (--warmup) before --from is replayed first, so that persistence
delays and NEWS2 start from the right state. The range is held in memory.

--to-clickhouse rebuilds history instead: the range of the vitals, alerts
and acks topics is inserted into ClickHouse as the sink inserts it, and the
rollup of each day touched is rebuilt from the deduplicated readings.

  monitorme replay --to-clickhouse --from 2026-11-30 --to 2026-12-01 --clickhouse-addr ch:9000`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var errs []error
			parse := func(name, v string) time.Time {
				if v == "now" {
					return now
				}
				t, err := inspect.ParseTime(v, now)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", name, err))
				}
				return t
			}
			if from == "" || to == "" {
				errs = append(errs, errors.New("from and to: both required (RFC 3339, a date, unix ms, -8h, or now for --to)"))
			} else {
				o.From, o.To = parse("from", from), parse("to", to)
				if len(errs) == 0 && !o.To.After(o.From) {
					errs = append(errs, errors.New("to: must be after --from"))
				}
			}
			if o.Warmup < 0 {
				errs = append(errs, errors.New("warmup: must not be negative"))
			}
			if format != "text" && format != "markdown" && format != "jsonl" && format != "table" {
				errs = append(errs, fmt.Errorf("format: %q, want text, markdown or jsonl (with --diff), table or jsonl (without)", format))
			}
			if failOnDiff && !diff {
				errs = append(errs, errors.New("fail-on-diff: needs --diff"))
			}
			if against != "" && !diff {
				errs = append(errs, errors.New("against-rules-file: needs --diff"))
			}
			if toTopic != "" && toTopic == kc.Topics.Alerts {
				errs = append(errs, fmt.Errorf("to-topic: %s is the live alerts topic; name a sandbox topic", toTopic))
			}
			if toClickHouse {
				if diff || toTopic != "" || rulesFile != "" {
					errs = append(errs, errors.New("to-clickhouse: rebuilds history from the topics; it takes no --diff, --to-topic or --rules-file"))
				}
				if !wc.Enabled() {
					errs = append(errs, errors.New("to-clickhouse: needs --clickhouse-addr"))
				}
				errs = append(errs, wc.Validate())
			}
			errs = append(errs, kc.Validate())
			rules, err := loadRules(rulesFile)
			errs = append(errs, err)
			var other clinical.Config
			if against != "" {
				other, err = loadRules(against)
				errs = append(errs, err)
			}
			if err := errors.Join(errs...); err != nil {
				return usage(err)
			}
			if toClickHouse {
				conn, err := warehouse.Open(cmd.Context(), wc)
				if err != nil {
					return err
				}
				defer conn.Close()
				if err := warehouse.RequireSchema(cmd.Context(), conn); err != nil {
					return err
				}
				return rebuildHistory(cmd.Context(), kc, conn, o.From, o.To, cmd.OutOrStdout())
			}
			o.Progress = progress(cmd.ErrOrStderr())
			replayed, err := inspect.Replay(cmd.Context(), kc, rules, o)
			if err != nil {
				return err
			}
			if toTopic != "" {
				if err := writeSandbox(cmd.Context(), kc, toTopic, replayed); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "monitorme replay: %d alert events written to %s\n", len(replayed), toTopic)
			}
			out := cmd.OutOrStdout()
			if !diff {
				f := format
				if f == "text" {
					f = "table"
				}
				pr, err := inspect.NewPrinter(out, f, isTerminal(out))
				if err != nil {
					return usage(err)
				}
				for i := range replayed {
					a := replayed[i]
					if err := pr.Print(inspect.Event{Topic: "replay", Timestamp: a.TS, Key: a.PatientID, Type: "alert", Alert: &a}); err != nil {
						return err
					}
				}
				return nil
			}
			before, beforeName := []schemas.Alert(nil), "recorded "+kc.Topics.Alerts
			if against != "" {
				o.Progress = progress(cmd.ErrOrStderr())
				if before, err = inspect.Replay(cmd.Context(), kc, other, o); err != nil {
					return err
				}
				beforeName = "rules " + against
			} else if before, err = inspect.Recorded(cmd.Context(), kc, rules, o); err != nil {
				var expired *inspect.ExpiredError
				if !errors.As(err, &expired) {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "monitorme replay: note: %v\n", err)
			}
			d := inspect.Compare(before, replayed, rules.Ward, tolerance)
			d.Before, d.After = beforeName, "replay with "+rulesName(rulesFile)
			if format == "table" {
				format = "text"
			}
			if err := d.Write(out, format); err != nil {
				return err
			}
			if failOnDiff && d.Differs() {
				return &DiffError{Summary: fmt.Sprintf("%d alarm episode(s) differ (%s -> %s)", len(d.Changes), d.Before, d.After)}
			}
			return nil
		},
	}
	kc.RegisterFlags(cmd.Flags())
	cmd.Flags().StringVar(&from, "from", "", "start of the range: RFC 3339, a date, unix ms, or a duration before now (-8h)")
	cmd.Flags().StringVar(&to, "to", "", "end of the range (exclusive), as --from, or now")
	cmd.Flags().DurationVar(&o.Warmup, "warmup", o.Warmup, "replayed before --from, its alarms not reported, so that the engine starts from the right state")
	cmd.Flags().StringSliceVar(&o.Patients, "patient", nil, "only these patients (repeat); only their partitions are read")
	cmd.Flags().StringVar(&o.Ward, "ward", "", "only the patients of this ward (by the rules file)")
	processors.RulesFileFlag(cmd.Flags(), &rulesFile, "the rules to replay with")
	cmd.Flags().StringVar(&against, "against-rules-file", "", "compare with a replay under these rules instead of the recorded alerts")
	cmd.Flags().BoolVar(&diff, "diff", false, "compare the replayed alarms with the recorded ones (or --against-rules-file's)")
	cmd.Flags().BoolVar(&failOnDiff, "fail-on-diff", false, "exit 3 when the alarms differ (gate a rules change in CI)")
	cmd.Flags().DurationVar(&tolerance, "match-within", tolerance, "alarms of a patient and condition this close are the same episode (shifted, not added and removed)")
	cmd.Flags().StringVar(&format, "format", "text", "text, markdown or jsonl with --diff; table or jsonl without")
	cmd.Flags().BoolVar(&toClickHouse, "to-clickhouse", false, "rebuild history instead: re-sink [--from, --to) of the topics into ClickHouse with the sink's deduplication tokens, then rebuild the rollup of the days touched (effectively once)")
	wc.RegisterFlags(cmd.Flags())
	cmd.Flags().StringVar(&toTopic, "to-topic", "", "also write the replayed alert events to this sandbox topic (created if missing; never the live alerts topic)")
	return cmd
}

func loadRules(file string) (clinical.Config, error) {
	if file == "" {
		return clinical.DefaultConfig(), nil
	}
	return processors.LoadRulesFile(file)
}

func rulesName(file string) string {
	if file == "" {
		return "the built-in rules"
	}
	return "rules " + file
}

// progress draws a bar with rate and ETA on a terminal, nothing when
// stderr is piped.
func progress(w io.Writer) func(done, total int64) {
	if !isTerminal(w) {
		return nil
	}
	var bar *progressbar.ProgressBar
	return func(done, total int64) {
		if total <= 0 {
			return // still reading
		}
		if bar == nil {
			bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("replaying"),
				progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("records"),
				progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
		}
		_ = bar.Set64(done)
	}
}

// writeSandbox writes the replayed alert events to topic, created like
// the alerts topic if missing.
func writeSandbox(ctx context.Context, kc kafka.Config, topic string, alerts []schemas.Alert) error {
	cl, err := kc.NewClient("replay", kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, -1, -1, nil, topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create %s: %w", topic, kc.Explain(err))
	}
	var recs []*kgo.Record
	for i := range alerts {
		r, err := schemas.AlertRecord(topic, &alerts[i])
		if err != nil {
			return err
		}
		recs = append(recs, r)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return kc.Explain(err)
	}
	return nil
}
