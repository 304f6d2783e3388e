package roles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/monitorme/monitorme/internal/version"
)

// UsageError is a bad flag, environment variable or setting: exit code 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usage(err error) error {
	if err == nil {
		return nil
	}
	return &UsageError{Err: err}
}

// DiffError says that a replay found its alarms differ (--fail-on-diff):
// exit code 3, so a rules change can be gated in CI.
type DiffError struct{ Summary string }

func (e *DiffError) Error() string { return "the alarms differ: " + e.Summary }

// Main runs the command line and returns the exit code: 0 success, 1 a
// runtime failure, 2 a usage error, 3 differences (replay --fail-on-diff).
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, stdout, stderr)
}

// Run is Main with the shutdown signal as a context.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	// cobra finds an unknown subcommand before any of ours runs, so its
	// error is not a UsageError yet.
	if strings.HasPrefix(err.Error(), "unknown command ") {
		err = usage(fmt.Errorf("%w (see monitorme --help)", err))
	}
	fmt.Fprintln(stderr, "monitorme:", err)
	var ue *UsageError
	var de *DiffError
	switch {
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &de):
		return 3
	}
	return 1
}

type globals struct {
	logLevel  string
	logFormat string
	stdout    io.Writer
	stderr    io.Writer
}

func (g *globals) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, usage(fmt.Errorf("log-level: %q, want debug, info, warn or error", g.logLevel))
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(g.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.stderr, opts)), nil
	}
	return nil, usage(fmt.Errorf("log-format: %q, want text or json", g.logFormat))
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{logLevel: "info", logFormat: "text", stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "monitorme",
		Short: "MonitorMe: vital-sign event platform for hospital wards",
		Long: `MonitorMe ingests bedside vital-sign readings into Kafka-protocol topics,
raises alerts exactly once, and serves live and historical queries.

Every flag can also be set as MONITORME_<FLAG> in the environment, with
dashes as underscores (e.g. MONITORME_BROKERS=a:9092,b:9092); a flag on the
command line wins.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return usage(bindEnv(cmd.Flags()))
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", g.logLevel, "debug, info, warn or error; patient values are logged only at debug")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", g.logFormat, "text or json")
	root.SetVersionTemplate("monitorme {{.Version}}\n")
	root.AddCommand(devCmd(g), ingestCmd(g), processCmd(g), apiCmd(g), sinkCmd(g), migrateCmd(g), simulateCmd(g), topicsCmd(g), benchCmd(g), tokenCmd(), aclsCmd(g), tailCmd(g), replayCmd(g), versionCmd())
	return root
}

func versionCmd() *cobra.Command {
	asJSON := false
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this build",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version.Get()
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(v)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "monitorme", v)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", asJSON, "print {\"version\", \"revision\", \"go_version\"} as JSON")
	return cmd
}

// bindEnv sets every flag not given on the command line from its
// MONITORME_ variable.
func bindEnv(fs *pflag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := "MONITORME_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if sv, isSlice := f.Value.(pflag.SliceValue); isSlice {
			if err := sv.Replace(strings.Split(v, ",")); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
			f.Changed = true
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
		}
		f.Changed = true
	})
	return errors.Join(errs...)
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	return usage(cobra.NoArgs(cmd, args))
}
