package processors

// The rules file on disk: read once, and the one --rules-file flag.

import (
	"bytes"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/monitorme/monitorme/clinical"
)

// LoadRulesFile reads a rules file over clinical.DefaultConfig.
func LoadRulesFile(path string) (clinical.Config, error) {
	cfg, _, err := ReadRulesFile(path)
	return cfg, err
}

// ReadRulesFile reads a rules file once: the rules over
// clinical.DefaultConfig, and the bytes they were parsed from (what the
// audit trail hashes).
func ReadRulesFile(path string) (clinical.Config, []byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return clinical.Config{}, nil, fmt.Errorf("rules file: %w", err)
	}
	cfg, err := clinical.LoadRules(path, bytes.NewReader(raw))
	return cfg, raw, err
}

// RulesFileFlag registers --rules-file, the one flag every role that
// reads a rules file takes (process, api, replay), its help saying what
// the rules are for there. Before (issue 27), each role registered its
// own, with its own words.
func RulesFileFlag(fs *pflag.FlagSet, p *string, purpose string) {
	fs.StringVar(p, "rules-file", *p, "YAML file of per-ward and per-patient clinical rules (docs/rules.md): "+purpose+"; empty: the built-in defaults")
}
