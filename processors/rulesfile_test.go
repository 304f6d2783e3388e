package processors

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// A rules file that is not there is an error the processor stops on,
// naming the file.
func TestRulesFileMissing(t *testing.T) {
	if _, err := LoadRulesFile("does-not-exist.yaml"); err == nil || !os.IsNotExist(errUnwrap(err)) {
		t.Fatalf("missing file: %v", err)
	}
}

func errUnwrap(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// The audit trail's hash is of the rules in force: the bytes LoadRules
// parsed, read once. Before (issue 27), RulesLoaded read the file again,
// so a file changed after start was hashed, not the rules applied.
func TestRulesLoadedHashesTheRulesParsed(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rules.yaml")
	first := []byte("defaults:\n  conditions:\n    spo2_low: {limit: 88}\n")
	if err := os.WriteFile(file, first, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.RulesFile = file
	if err := cfg.LoadRules(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("defaults: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ev, err := cfg.RulesLoaded()
	sum := sha256.Sum256(first)
	if err != nil || ev.SHA256 != hex.EncodeToString(sum[:]) || ev.Source != file {
		t.Fatalf("rules-loaded %+v, %v; want the hash of the file as parsed", ev, err)
	}
}
