// Package clickhouse is MonitorMe's ClickHouse schema: the DDL files of
// this directory, in version order, rendered with the operator's retention
// settings. `monitorme migrate` applies them to a server; `make test-sql`
// runs the same rendered statements on chDB, the ClickHouse engine in
// process, so the SQL shipped is the SQL tested.
package clickhouse

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

//go:embed *.sql
var files embed.FS

// MinServer is the oldest ClickHouse release the schema is written for:
// the 24.8 LTS (DateTime64 codecs, SimpleAggregateFunction, the
// non-replicated deduplication window, insert_deduplication_token).
var MinServer = [2]int{24, 8}

// Settings are the operator's choices the DDL leaves open.
type Settings struct {
	VitalsTTLDays int // raw readings
	AlertsTTLDays int // alert events and acknowledgements
	RollupTTLDays int // the per-minute rollup
}

// DefaultSettings keeps raw vitals 30 days, and alerts and the rollup a
// year.
func DefaultSettings() Settings {
	return Settings{VitalsTTLDays: 30, AlertsTTLDays: 365, RollupTTLDays: 365}
}

// RegisterFlags adds the retention flags of `monitorme migrate`.
func (s *Settings) RegisterFlags(fs *pflag.FlagSet) {
	fs.IntVar(&s.VitalsTTLDays, "vitals-ttl-days", s.VitalsTTLDays, "days ClickHouse keeps raw vitals (table TTL, set when the table is created)")
	fs.IntVar(&s.AlertsTTLDays, "alerts-ttl-days", s.AlertsTTLDays, "days ClickHouse keeps alert events and acknowledgements")
	fs.IntVar(&s.RollupTTLDays, "rollup-ttl-days", s.RollupTTLDays, "days ClickHouse keeps the per-minute vitals rollup")
}

// Validate refuses retention no hospital means: none, or beyond a century.
func (s Settings) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"vitals-ttl-days", s.VitalsTTLDays}, {"alerts-ttl-days", s.AlertsTTLDays}, {"rollup-ttl-days", s.RollupTTLDays}} {
		if f.v < 1 || f.v > 36500 {
			return fmt.Errorf("%s: %d, want 1 to 36500", f.name, f.v)
		}
	}
	return nil
}

func (s Settings) values() map[string]string {
	return map[string]string{
		"vitals_ttl_days": strconv.Itoa(s.VitalsTTLDays),
		"alerts_ttl_days": strconv.Itoa(s.AlertsTTLDays),
		"rollup_ttl_days": strconv.Itoa(s.RollupTTLDays),
	}
}

// Migration is one DDL file: version N from NNN_name.sql.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

var (
	fileName    = regexp.MustCompile(`^(\d{3})_([a-z0-9_]+)\.sql$`)
	placeholder = regexp.MustCompile(`\$\{([a-z0-9_]+)\}`)
)

// Migrations returns every migration, in version order, rendered with s.
// Versions run from 1 without a gap, so a schema version in the server
// names exactly the files applied.
func Migrations(s Settings) ([]Migration, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	vals := s.values()
	var out []Migration
	for i, name := range names {
		m := fileName.FindStringSubmatch(name)
		if m == nil {
			return nil, fmt.Errorf("schema file %s: want NNN_name.sql", name)
		}
		v, _ := strconv.Atoi(m[1])
		if v != i+1 {
			return nil, fmt.Errorf("schema file %s: version %d, want %d (versions run from 1 without a gap)", name, v, i+1)
		}
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		stmts, err := statements(string(b), vals)
		if err != nil {
			return nil, fmt.Errorf("schema file %s: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: m[2], Statements: stmts})
	}
	return out, nil
}

// Latest is the schema version the binary's files reach.
func Latest() int {
	names, _ := fs.Glob(files, "*.sql")
	return len(names)
}

// statements drops whole-line comments, fills the placeholders and splits
// on the semicolons that end a line. The files are ours: no statement has
// a semicolon at a line's end inside a string.
func statements(text string, vals map[string]string) ([]string, error) {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			lines = append(lines, l)
		}
	}
	var missing []string
	body := placeholder.ReplaceAllStringFunc(strings.Join(lines, "\n"), func(p string) string {
		name := placeholder.FindStringSubmatch(p)[1]
		v, ok := vals[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("unknown placeholder(s) %s", strings.Join(missing, ", "))
	}
	var out []string
	for _, st := range strings.Split(body, ";\n") {
		if st = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(st), ";")); st != "" {
			out = append(out, st)
		}
	}
	return out, nil
}

// CheckServer refuses a server older than MinServer, naming both.
func CheckServer(version string) error {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return fmt.Errorf("ClickHouse server version %q: cannot read it", version)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("ClickHouse server version %q: cannot read it", version)
	}
	if major < MinServer[0] || major == MinServer[0] && minor < MinServer[1] {
		return fmt.Errorf("ClickHouse server %s is older than %d.%d, the oldest MonitorMe's schema supports (DateTime64 codecs, "+
			"insert_deduplication_token, the non-replicated deduplication window): upgrade the server", version, MinServer[0], MinServer[1])
	}
	return nil
}
