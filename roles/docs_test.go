package roles

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/monitorme/monitorme/api"
)

var (
	codeSpan = regexp.MustCompile("(?s)```.*?```|`[^`\n]+`")
	// A command line runs monitorme: at the start of a line of code (after
	// a prompt or a path), or after a shell's &&, || or ; — not "-n
	// monitorme", a namespace.
	command   = regexp.MustCompile(`(?:^|&&|\|\||;|\()\s*(?:\$ )?(?:[\w./-]*/)?monitorme((?: +[^\s|;&#\\]+)*)`)
	word      = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	routeText = regexp.MustCompile(`/v1/[A-Za-z0-9_{}.:%-]*(?:/[A-Za-z0-9_{}.:%*-]+)*`)
)

// Every `monitorme …` command and flag written in code in README.md and
// docs/, and every /v1/… route named anywhere in them, exists: a reader
// who copies one gets what it says, not "unknown command" or a 404. Before
// (issue 26), nothing checked it, and the README still said that Helm
// charts, Kafka TLS/SASL and API authentication were not built.
func TestDocsNameWhatExists(t *testing.T) {
	files, _ := filepath.Glob("../docs/*.md")
	files = append(files, "../README.md")
	root := newRoot(io.Discard, io.Discard)
	root.InitDefaultVersionFlag() // cobra adds --version when it runs
	var doc struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	var routes [][]string
	for p := range doc.Paths {
		routes = append(routes, strings.Split(p, "/"))
	}
	commands, flags, paths := 0, 0, 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		name := filepath.Base(f)
		for _, span := range codeSpan.FindAllString(text, -1) {
			if strings.HasPrefix(span, "```") {
				_, span, _ = strings.Cut(span, "\n") // the fence and its language
				span = strings.TrimSuffix(span, "```")
			} else {
				span = strings.Trim(span, "`")
			}
			for _, line := range strings.Split(span, "\n") {
				for _, m := range command.FindAllStringSubmatch(line, -1) {
					c, nf := checkCommand(t, root, name, strings.Fields(m[1]))
					commands += c
					flags += nf
				}
			}
		}
		for _, r := range routeText.FindAllString(text, -1) {
			r = strings.TrimRight(r, ".:")
			if !knownRoute(routes, r) {
				t.Errorf("%s names %s, which no route serves", name, r)
			}
			paths++
		}
	}
	t.Logf("%d files: %d commands, %d flags, %d routes checked", len(files), commands, flags, paths)
	if commands == 0 || paths == 0 {
		t.Fatal("found nothing to check: the patterns are wrong")
	}
}

// checkCommand walks the words after "monitorme": subcommands while they
// name one, then the flags of the command reached.
func checkCommand(t *testing.T, root *cobra.Command, file string, words []string) (commands, flags int) {
	t.Helper()
	cmd := root
	args := false // an argument ends the subcommands
	for _, w := range words {
		if strings.HasPrefix(w, "--") {
			name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
			name = strings.TrimRight(name, ",.)`'\"")
			if name == "" || name == "help" || strings.ContainsAny(name, "<>[]$") {
				continue
			}
			if cmd.Flags().Lookup(name) == nil && cmd.InheritedFlags().Lookup(name) == nil {
				t.Errorf("%s: `%s … %s`: %s has no flag --%s", file, cmd.CommandPath(), w, cmd.CommandPath(), name)
			}
			flags++
			continue
		}
		if args || !word.MatchString(w) || !cmd.HasSubCommands() {
			args = true
			continue // an argument, a flag's value, a placeholder
		}
		sub, _, err := cmd.Find([]string{w})
		if err != nil || sub == cmd {
			t.Errorf("%s: `%s %s`: no such command", file, cmd.CommandPath(), w)
			args = true
			continue
		}
		cmd = sub
		commands++
	}
	return commands, flags
}

// knownRoute matches r against the document's paths, a {param} segment
// matching any one.
func knownRoute(routes [][]string, r string) bool {
	r, _, _ = strings.Cut(r, "?")
	segs := strings.Split(r, "/")
	for _, route := range routes {
		if len(route) != len(segs) && !(len(route) > 0 && route[len(route)-1] == "*") {
			continue
		}
		ok := true
		for i, s := range route {
			if i >= len(segs) {
				ok = false
				break
			}
			if s == "*" {
				break
			}
			if s != segs[i] && !(strings.HasPrefix(s, "{") && segs[i] != "") {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
