package api

import (
	"bytes"
	"os"
	"testing"
)

// docs/api.md is what the OpenAPI document says. Run `make docs` after
// changing api/openapi.json or a message schema.
func TestAPIReferenceIsCurrent(t *testing.T) {
	var b bytes.Buffer
	if err := APIReference(&b); err != nil {
		t.Fatal(err)
	}
	const path = "../docs/api.md"
	if os.Getenv("MONITORME_WRITE_DOCS") != "" {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(have, b.Bytes()) {
		t.Fatalf("docs/api.md is not what the OpenAPI document says (%v): run make docs", err)
	}
}
