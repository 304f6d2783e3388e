package testkit

import (
	"net"
	"testing"
)

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
