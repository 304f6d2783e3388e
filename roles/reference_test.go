package roles

import (
	"bytes"
	"testing"

	"github.com/monitorme/monitorme/internal/testkit"
)

// docs/cli.md is what the commands say of themselves. Run `make docs`
// after changing a command or a flag.
func TestCLIReferenceIsCurrent(t *testing.T) {
	var b bytes.Buffer
	if err := CLIReference(&b); err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, "../docs/cli.md", b.Bytes())
}
