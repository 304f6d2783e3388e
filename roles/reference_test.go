package roles

import (
	"bytes"
	"os"
	"testing"
)

// docs/cli.md is what the commands say of themselves. Run `make docs`
// after changing a command or a flag.
func TestCLIReferenceIsCurrent(t *testing.T) {
	var b bytes.Buffer
	if err := CLIReference(&b); err != nil {
		t.Fatal(err)
	}
	const path = "../docs/cli.md"
	if os.Getenv("MONITORME_WRITE_DOCS") != "" {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(have, b.Bytes()) {
		t.Fatalf("docs/cli.md is not what the commands say (%v): run make docs", err)
	}
}
