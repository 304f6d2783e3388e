// Package authtest is test plumbing for code behind authentication: a
// token file of new tokens and an authenticator reading it. It is apart
// from testkit because auth imports internal/web, whose tests use testkit.
package authtest

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/monitorme/monitorme/internal/auth"
)

// Tokens writes a token file with one new token per entry (its SHA256
// filled in) and returns the file, an authenticator reading it, and the
// tokens in the entries' order.
func Tokens(tb testing.TB, entries ...auth.TokenEntry) (file string, a *auth.Authenticator, tokens []string) {
	tb.Helper()
	file = filepath.Join(tb.TempDir(), "tokens.yaml")
	for _, e := range entries {
		tok := auth.NewToken()
		e.SHA256 = auth.Hash(tok)
		if err := auth.AppendToken(file, e); err != nil {
			tb.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	cfg := auth.DefaultConfig()
	cfg.TokenFile = file
	a, err := auth.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	return file, a, tokens
}
