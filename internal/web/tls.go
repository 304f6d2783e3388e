package web

// HTTPS for the HTTP server: a certificate and key from files, TLS 1.2 or
// later, and the files read again when they change (cert-manager and
// similar rotate them in place), without dropping a connection: each new
// handshake takes the certificate in force.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// TLSFiles names the server's certificate chain and key (PEM). Empty:
// plaintext, as `monitorme dev` serves on loopback.
type TLSFiles struct {
	Cert, Key string
	// Check is how often, at most, a handshake looks whether the files
	// changed; 0 means 10 s.
	Check time.Duration
}

// Enabled says whether the server serves HTTPS.
func (f TLSFiles) Enabled() bool { return f.Cert != "" || f.Key != "" }

// certReloader holds the certificate in force and reloads it when the
// files' modification times change. A file that fails to load keeps the
// previous certificate (and is logged), so a half-written rotation never
// takes the server down.
type certReloader struct {
	files TLSFiles
	log   *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	mod     [2]time.Time
	checked time.Time
}

func newCertReloader(f TLSFiles, log *slog.Logger) (*certReloader, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("http-tls-cert and http-tls-key: give both or neither")
	}
	if f.Check <= 0 {
		f.Check = 10 * time.Second
	}
	r := &certReloader{files: f, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) modTimes() ([2]time.Time, error) {
	var m [2]time.Time
	for i, name := range []string{r.files.Cert, r.files.Key} {
		fi, err := os.Stat(name)
		if err != nil {
			return m, err
		}
		m[i] = fi.ModTime()
	}
	return m, nil
}

func (r *certReloader) load() error {
	mod, err := r.modTimes()
	if err != nil {
		return fmt.Errorf("http tls: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(r.files.Cert, r.files.Key)
	if err != nil {
		return fmt.Errorf("http tls: %w", err)
	}
	r.cert, r.mod = &cert, mod
	return nil
}

// get is tls.Config.GetCertificate.
func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= r.files.Check {
		r.checked = now
		if mod, err := r.modTimes(); err == nil && mod != r.mod {
			if err := r.load(); err != nil {
				r.log.Warn("the HTTPS certificate files changed but do not load; keeping the previous certificate", "err", err)
			} else {
				r.log.Info("HTTPS certificate reloaded", "cert", r.files.Cert)
			}
		}
	}
	return r.cert, nil
}

// CheckTLS loads the files once: a role refuses to start on a certificate
// it cannot serve.
func CheckTLS(f TLSFiles) error {
	if !f.Enabled() {
		return nil
	}
	_, err := newCertReloader(f, slog.New(slog.DiscardHandler))
	return err
}

// tlsListener wraps ln to serve HTTPS with the files' certificate.
func tlsListener(ln net.Listener, f TLSFiles, log *slog.Logger) (net.Listener, error) {
	r, err := newCertReloader(f, log)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get,
		NextProtos: []string{"http/1.1"}}), nil
}
