package roles

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The tree reads top to bottom (doc.go): the binary, the roles, the
// components (and inspect, the developers' reading tools), internal/,
// schemas/. No arrow may run back up: nothing under
// internal/ or schemas/ depends on a component or on the roles, and the
// sink and the API read records through schemas, not through the
// processors or producers that write them.
func TestNoImportRunsBackUpTheTree(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "github.com/monitorme/monitorme/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/monitorme/monitorme/"
	components := []string{"producers", "processors", "sinks", "api", "inspect", "roles"}
	components = append(components[:len(components):len(components)], "statestore")
	forbidden := func(pkg string) []string {
		switch {
		case strings.HasPrefix(pkg, mod+"internal/"), strings.HasPrefix(pkg, mod+"schemas"):
			return components
		case strings.HasPrefix(pkg, mod+"sinks/"), strings.HasPrefix(pkg, mod+"api"):
			return []string{"producers", "processors", "roles"}
		case strings.HasPrefix(pkg, mod+"producers"), strings.HasPrefix(pkg, mod+"processors"):
			return []string{"sinks", "api", "inspect", "roles"}
		case strings.HasPrefix(pkg, mod+"inspect"):
			// The developers' tools read records through schemas and
			// replay through the engine (clinical), never write.
			return []string{"producers", "sinks", "api", "roles"}
		case strings.HasPrefix(pkg, mod+"clinical"):
			return append(components, "statestore", "internal")
		case strings.HasPrefix(pkg, mod+"statestore"):
			return components
		}
		return nil
	}
	checked := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		pkg := fields[0]
		bad := forbidden(pkg)
		if bad == nil {
			continue
		}
		checked++
		for _, dep := range fields[1:] {
			for _, b := range bad {
				if dep == mod+b || strings.HasPrefix(dep, mod+b+"/") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d packages: the listing is not the tree", checked)
	}
}

// echo stays at the HTTP edge: only these packages import it, so that a
// move to another framework (echo v5) touches them alone (README,
// "Layout"). The roles wire it through internal/web.
var echoEdge = []string{"internal/web", "internal/auth", "api", "producers", "station"}

func TestEchoStaysAtTheHTTPEdge(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/monitorme/monitorme/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/monitorme/monitorme/"
	users := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, "github.com/labstack/echo") {
				continue
			}
			users++
			if !slices.Contains(echoEdge, strings.TrimPrefix(fields[0], mod)) {
				t.Errorf("%s imports %s; only %v may", fields[0], imp, echoEdge)
			}
		}
	}
	if users == 0 {
		t.Fatal("no package imports echo: the listing is not the tree")
	}
}

// The clinical engine is pure: it imports no Kafka client, no network,
// no file system and no telemetry (only schemas, for the records' types,
// and YAML, for the rules file's text), and reads no clock: every time it
// uses is an argument. To change how NEWS2 scores, open clinical/; its
// tests need no broker.
func TestTheClinicalEngineIsPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, "github.com/monitorme/monitorme/clinical").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := []string{"github.com/monitorme/monitorme/schemas", "go.yaml.in/yaml/v3"}
	imports := strings.Fields(string(out))
	if !slices.Contains(imports, "time") {
		t.Fatalf("imports %v: the listing is not the package", imports)
	}
	for _, imp := range imports {
		std := !strings.Contains(strings.Split(imp, "/")[0], ".")
		impure := imp == "os" || strings.HasPrefix(imp, "os/") || imp == "net" || strings.HasPrefix(imp, "net/") ||
			imp == "io/fs" || imp == "log" || imp == "log/slog" || imp == "runtime" || imp == "sync"
		if std && impure || !std && !slices.Contains(allowed, imp) {
			t.Errorf("clinical imports %s", imp)
		}
	}
	clock := regexp.MustCompile(`time\.(Now|Since|Until|After|AfterFunc|Tick|NewTimer|NewTicker|Sleep)\(`)
	for f, b := range sources(t, 10, "../clinical") {
		if m := clock.Find(b); m != nil {
			t.Errorf("%s reads a clock of its own: %s", f, m)
		}
	}
}

// sources are the non-test Go files of dirs, by path; fewer than atLeast
// means the listing is not the tree, and fails the test.
func sources(t *testing.T, atLeast int, dirs ...string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = b
		}
	}
	if len(out) < atLeast {
		t.Fatalf("%d files in %v: the listing is not the tree", len(out), dirs)
	}
	return out
}

// The commands and the benchmark get their Kafka clients from
// internal/kafka (Config.NewClient), so none reaches a broker without the
// TLS and SASL every role uses: roles/bench once built ten raw clients
// that took only the seed brokers.
func TestRolesGetTheirClientsFromInternalKafka(t *testing.T) {
	raw := regexp.MustCompile(`kgo\.NewClient\(`)
	for f, b := range sources(t, 10, ".", "bench") {
		for _, loc := range raw.FindAllIndex(b, -1) {
			t.Errorf("%s:%d builds a raw client; take it from kafka.Config.NewClient", f, 1+strings.Count(string(b[:loc[0]]), "\n"))
		}
	}
}

// A reader finds a behaviour in a file of a size one reads: no non-test
// file of the processors, the roles or the API is over 500 lines
// (processors' processor.go, clinical.go, store.go and rulesfile.go, roles.go,
// bench.go and live.go were 600 to 750).
func TestNoFileOver500Lines(t *testing.T) {
	for f, b := range sources(t, 30, "../processors", ".", "bench", "../api") {
		if n := strings.Count(string(b), "\n"); n > 500 {
			t.Errorf("%s has %d lines: split it by concern", f, n)
		}
	}
}
