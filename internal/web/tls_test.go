package web

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/internal/testcert"
	"github.com/monitorme/monitorme/internal/testkit"
)

// The server serves HTTPS from files, TLS 1.2 or later only, and serves a
// rotated certificate to new connections without a restart.
func TestHTTPSFromFilesWithReload(t *testing.T) {
	dir := t.TempDir()
	_, _, first, _ := testcert.SelfSigned(t, dir, "first")
	files := TLSFiles{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"), Check: 50 * time.Millisecond}
	if err := CheckTLS(files); err != nil {
		t.Fatal(err)
	}
	if err := CheckTLS(TLSFiles{Cert: files.Cert}); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}
	e := New(slog.New(slog.DiscardHandler), telemetry.Nop())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	to := DefaultTimeouts()
	to.TLS = files
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ServeWith(ctx, e, ln, to); close(done) }()
	defer func() { cancel(); <-done }()
	url := "https://" + ln.Addr().String() + "/healthz"

	get := func(trust *x509.Certificate, maxVersion uint16) (*http.Response, error) {
		pool := x509.NewCertPool()
		pool.AddCert(trust)
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: maxVersion}, DisableKeepAlives: true}}
		return cl.Get(url)
	}
	resp, err := get(first, 0)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTPS: %v %v", resp, err)
	}
	resp.Body.Close()
	if resp, err := get(first, tls.VersionTLS11); err == nil {
		resp.Body.Close()
		t.Fatal("a TLS 1.1 client was served")
	}

	_, _, second, _ := testcert.SelfSigned(t, dir, "second")
	// A modification time the first files could not have had, however
	// coarse the file system's clock.
	later := time.Now().Add(time.Minute)
	for _, f := range []string{files.Cert, files.Key} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 5*time.Second, "the rotated certificate served", func() bool {
		resp, err := get(second, 0)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}
