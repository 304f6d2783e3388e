package testkit

import (
	"context"
	"log/slog"
	"net"
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

// FreeAddr returns a loopback address no one listens on (for a process
// that must be told its address before it starts).
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
