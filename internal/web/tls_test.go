package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/internal/testkit"
)

// writeCert writes a self-signed certificate for 127.0.0.1 named cn, and
// its key, to dir; it returns the certificate.
func writeCert(t *testing.T, dir, cn string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// The server serves HTTPS from files, TLS 1.2 or later only, and serves a
// rotated certificate to new connections without a restart.
func TestHTTPSFromFilesWithReload(t *testing.T) {
	dir := t.TempDir()
	first := writeCert(t, dir, "first")
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

	second := writeCert(t, dir, "second")
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
