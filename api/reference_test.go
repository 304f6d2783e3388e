package api

import (
	"bytes"
	"testing"

	"github.com/monitorme/monitorme/internal/testkit"
)

// docs/api.md is what the OpenAPI document says. Run `make docs` after
// changing api/openapi.json or a message schema.
func TestAPIReferenceIsCurrent(t *testing.T) {
	var b bytes.Buffer
	if err := APIReference(&b); err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, "../docs/api.md", b.Bytes())
}
